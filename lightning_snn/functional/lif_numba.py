r"""The fused LIF's loops (:mod:`lightning_snn.functional.lif_scan`) as compiled CPU passes (Numba).

Same equations and outputs as the PyTorch loops there (an initial membrane ``v0`` in, the last one
out, and ``dL/dv0`` from the backward pass, for streaming in chunks), which pay ~6 (forward) and ~12 (backward)
kernel launches per time step. Here each batch row (``prange``: one per thread) keeps its N
membranes (or adjoints) in a small array and walks through time once, forwards or backwards; the
inner loop over N has no branch left, so it vectorises. The backward kernel is specialised
(constant-folded) per configuration (reset, detach, decay_input, which gradients, surrogate) and
compiled on its first use (1-3 s), then cached on disk like the forward kernel. Its surrogate
derivative is the registry's own definition (:data:`~lightning_snn.functional.surrogates.SURROGATES`),
compiled as it is.

Numba's OpenMP pool shares libgomp with PyTorch: every call uses ``torch.get_num_threads()`` threads
and restores PyTorch's setting afterwards. Numba is optional: without it, or with
``LIGHTNING_SNN_NUMBA=0``, ``available()`` is False and the PyTorch loops run.
"""

from __future__ import annotations

import functools
import os
import types

import torch

from lightning_snn.functional.surrogates import definition

try:  # optional accelerator
    import numba
    import numpy as np
    from numba.extending import register_jitable
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None


def available() -> bool:
    """True when the compiled CPU kernels can be used (numba imports and is not disabled)."""
    return numba is not None and os.environ.get("LIGHTNING_SNN_NUMBA", "1") != "0"


if numba is not None:

    @numba.njit(cache=True, parallel=True)
    def _forward(x, beta, scale, thr, decay_input, hard, rest, v0, h, spikes, v_end):
        """Fill ``h`` (T, B, N) with the charged membrane H and ``spikes`` with ``H >= θ`` (NaN where
        H - θ is not finite: the rule of :mod:`lightning_snn.functional.lif`), starting from the
        membrane ``v0`` (B, N) (relative to rest) and writing the last one into ``v_end`` (B, N).

        β, ``scale = 1 - β``, θ have length N; ``rest`` is an array of x's dtype, so float32 stays
        float32 (the rounding of the reference loop). Branch-free so the inner loop vectorises."""
        steps, batch, n = x.shape
        r = rest[0]
        one = scale.dtype.type(1.0)
        zero = one - one
        for bi in numba.prange(batch):
            v = v0[bi].copy()  # V - rest
            for t in range(steps):
                for k in range(n):
                    drive = scale[k] * x[t, bi, k] if decay_input else x[t, bi, k]
                    hh = r + beta[k] * v[k] + drive
                    u = hh - thr[k]
                    # Θ(u), plus u·0: NaN where u is NaN or ±inf (the shared non-finite rule), else +0
                    s = (one if u >= zero else zero) + u * zero
                    h[t, bi, k] = hh
                    spikes[t, bi, k] = s
                    v[k] = (hh - r) * (one - s) if hard else hh - thr[k] * s
            v_end[bi] = v


def _run(kernel, *args) -> None:
    """Run ``kernel`` on as many threads as PyTorch uses, and leave PyTorch's setting as it was.

    Numba's OpenMP pool shares libgomp with PyTorch and resets its thread count when it starts:
    restoring it keeps ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` in force (DDP, data loaders)."""
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(*args)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


def _param(t: torch.Tensor, dtype: torch.dtype, n: int):
    """A ``()`` or ``(N,)`` parameter as a length-N array (no per-element modulo in the kernels)."""
    return _np(t.to(dtype).reshape(-1).expand(n))


def _state(v: torch.Tensor | None, shape: tuple, dtype: torch.dtype):
    """A ``(B, N)`` state as a contiguous array of ``dtype`` (zeros for ``None``)."""
    if v is None:
        return np.zeros(shape, dtype=np.float32 if dtype == torch.float32 else np.float64)
    return _np(v.to(dtype).expand(shape))


def forward(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg, v0=None, return_state=False):
    """``(H, spikes)``, both (T, B, N), for the float32/float64 CPU input ``x`` (B may be several dims);
    with ``return_state`` also the last membrane ``V - rest`` (B, N). ``v0`` (B, N): the initial one."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    n = x.shape[-1]
    x3 = _np(x).reshape(x.shape[0], -1, n)
    h, spikes = torch.empty(x.shape, dtype=x.dtype), torch.empty(x.shape, dtype=x.dtype)
    v_end = torch.empty(x.shape[1:], dtype=x.dtype)
    _run(
        _forward,
        x3,
        _param(decay, x.dtype, n),
        _param(1.0 - decay, x.dtype, n),
        _param(threshold, x.dtype, n),
        cfg.decay_input,
        cfg.reset == "hard",
        np.array([rest], dtype=x3.dtype),
        _state(v0, x.shape[1:], x.dtype).reshape(x3.shape[1:]),
        h.numpy().reshape(x3.shape),
        spikes.numpy().reshape(x3.shape),
        v_end.numpy().reshape(x3.shape[1:]),
    )
    return (h, spikes, v_end) if return_state else (h, spikes)


def _jitable_copy(fn):
    """``fn`` made callable from Numba code, as a copy: a kernel closing over it then pickles its code
    into Numba's on-disk cache key (closure values), so editing a definition recompiles the kernels
    instead of loading stale ones (a reference to the original would pickle as its name only)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    return register_jitable(inline="always")(copy)


@functools.cache
def _backward_kernel(decay_input: bool, hard: bool, detach: bool, need_beta: bool, need_thr: bool, derivative):
    """A backward kernel specialised (constant-folded) for one configuration: no branch left inside
    the inner loop over N, so it vectorises. ``derivative`` is a surrogate's ``g(u, c1, c2, one)``
    from the registry. Compiled on first use (1-3 s), then cached on disk."""
    g_of = _jitable_copy(derivative)

    @numba.njit(parallel=True, cache=True)  # cached on disk per configuration (closure values)
    def kernel(h, gs_all, x, beta, thr, consts, v0, grad_v_end, gx, acc_beta, acc_thr, grad_v0):
        steps, batch, n = h.shape
        rest, c1, c2 = consts[0], consts[1], consts[2]
        one = consts.dtype.type(1.0)
        zero = one - one
        for bi in numba.prange(batch):
            carry = grad_v_end[bi].copy()  # dL/dV_t arriving from step t+1 (β dL/dH_{t+1}), or from outside
            a_beta, a_thr = np.zeros(n, h.dtype), np.zeros(n, h.dtype)
            for tt in range(steps):
                t = steps - 1 - tt
                hr, gr, gxr, hp = h[t, bi], gs_all[t, bi], gx[t, bi], h[max(t - 1, 0), bi]
                xr = x[t, bi] if decay_input and need_beta else x[0, 0]
                w = one if t > 0 else zero  # v_{-1} = v0 (0 from rest)
                v0r = v0[bi]
                for k in range(n):
                    b, th, hh, c = beta[k], thr[k], hr[k], carry[k]
                    s = one if hh >= th else zero
                    gs = gr[k]
                    if not detach:  # the reset's own path: dV/dS = rest - H (hard) or -θ (soft)
                        gs = gs + c * ((rest - hh) if hard else -th)
                    g = g_of(hh - th, c1, c2, one)
                    if need_thr:
                        a_thr[k] -= gs * g if hard else gs * g + c * s
                    gh = (c * (one - s) if hard else c) + gs * g
                    gxr[k] = gh * (one - b) if decay_input else gh
                    if need_beta:
                        p = hp[k]
                        sp = one if p >= th else zero
                        v_prev = w * ((p - rest) * (one - sp) if hard else p - th * sp) + (one - w) * v0r[k]
                        a_beta[k] += gh * (v_prev - xr[k]) if decay_input else gh * v_prev
                    carry[k] = gh * b
            acc_beta[bi] = a_beta
            acc_thr[bi] = a_thr
            grad_v0[bi] = carry  # dL/dV_{-1} = β dL/dH_0

    return kernel


def backward(h, grad_spikes, x, decay, threshold, cfg, need_beta: bool, need_thr: bool) -> tuple:
    """``(grad_x (T, B, N), per-element β sums (B, N), per-element θ sums (B, N))``."""
    return backward_state(h, grad_spikes, x, decay, threshold, cfg, need_beta, need_thr)[:3]


def backward_state(
    h, grad_spikes, x, decay, threshold, cfg, need_beta: bool, need_thr: bool, v0=None, grad_v_end=None
) -> tuple:
    """:func:`backward` with an initial membrane ``v0`` (B, N) (relative to rest; ``None``: 0) and the
    gradient of the last membrane ``grad_v_end`` (B, N); returns also ``dL/dv0`` (B, N)."""
    n = h.shape[-1]
    h3 = h.numpy().reshape(h.shape[0], -1, n)
    gx = torch.empty_like(h)
    acc_beta, acc_thr = torch.empty(h3.shape[1:], dtype=h.dtype), torch.empty(h3.shape[1:], dtype=h.dtype)
    grad_v0 = torch.empty(h.shape[1:], dtype=h.dtype)
    xs = _np(x).reshape(h3.shape) if x is not None else np.zeros((1, 1, n), h3.dtype)
    spec = definition(cfg.surrogate.name)  # the single registry: an unknown name raises ValueError
    c1, c2 = spec.constants(float(cfg.surrogate.alpha))
    consts = np.array([cfg.v_reset if cfg.reset == "hard" else 0.0, c1, c2], dtype=h3.dtype)
    kernel = _backward_kernel(
        cfg.decay_input, cfg.reset == "hard", cfg.detach_reset, need_beta, need_thr, spec.derivative
    )
    _run(
        kernel,
        h3,
        _np(grad_spikes.to(h.dtype)).reshape(h3.shape),
        xs,
        _param(decay, h.dtype, n),
        _param(threshold, h.dtype, n),
        consts,
        _state(v0, h.shape[1:], h.dtype).reshape(h3.shape[1:]),
        _state(grad_v_end, h.shape[1:], h.dtype).reshape(h3.shape[1:]),
        gx.numpy().reshape(h3.shape),
        acc_beta.numpy(),
        acc_thr.numpy(),
        grad_v0.numpy().reshape(h3.shape[1:]),
    )
    return gx, acc_beta, acc_thr, grad_v0
