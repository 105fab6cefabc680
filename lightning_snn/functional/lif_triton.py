r"""The fused LIF and leaky integrator as Triton kernels: one pass over time per direction on CUDA.

Same equations, outputs and gradients as the PyTorch loops of :mod:`lightning_snn.functional.lif_scan`
(which call these functions when :func:`supports` says so) and the reference
:func:`~lightning_snn.functional.lif.lif_reference`:

.. math::
    H_t = V_r + \beta (V_{t-1} - V_r) + c X_t,\quad S_t = \Theta(H_t - \theta),\quad
    V_t = H_t - \theta \hat S_t \;\text{(soft)}\;\text{or}\; H_t (1 - \hat S_t) + V_r \hat S_t \;\text{(hard)}

(PLIF, Fang et al. 2021). The PyTorch loop launches ~6 (forward) and ~12 (backward) kernels per time
step; here one program per block of ``(B·N)`` lanes keeps the membrane (or the adjoint) in registers
and walks through time once (the kernel bodies: :mod:`~lightning_snn.functional.lif_triton_kernels`).
The forward pass writes ``H`` (float32, or float64 for float64 input) and the spikes (in the input's
dtype); the backward pass reads ``H`` back and recomputes the spikes and resets from it, so nothing
else is stored per step (plus ``X`` itself, not a copy, when ``decay_input`` and β needs a gradient).
Half-precision inputs (float16, bfloat16) are loaded as they are and integrated in float32.

**The surrogate** is the registry's own derivative (:data:`~lightning_snn.functional.surrogates.SURROGATES`):
the function ``g(u, c1, c2, one)`` is jitted as written, with Python's ``abs`` bound to ``tl.abs``;
its constants, the reset potential and the configuration are compile-time constants.

**Selection.** :func:`supports`: ``triton`` is installed, ``LIGHTNING_SNN_TRITON`` is not ``"0"``, the
surrogate is a registry :class:`~lightning_snn.functional.surrogates.Surrogate`, the dtype is a float
one, and the tensor is on CUDA -- or on the CPU while ``TRITON_INTERPRET=1`` (Triton's interpreter,
which is how the kernels are tested without a GPU). Kernels are built on first use per mode
(:func:`kernels`), since Triton reads ``TRITON_INTERPRET`` when a function is jitted.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import types

import torch

from lightning_snn.functional.surrogates import Surrogate, definition

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Steps whose loads are in flight at once (``tl.range(num_stages=...)``): hides the memory latency of the
# sequential loop over T. A guess until measured on a GPU (benchmarks/gpu_check.py).
_STAGES = 3


def available() -> bool:
    """True when ``triton`` is installed and ``LIGHTNING_SNN_TRITON`` is not ``"0"`` (imports nothing)."""
    return os.environ.get("LIGHTNING_SNN_TRITON", "1") != "0" and _installed()


@functools.cache
def _installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True while ``TRITON_INTERPRET=1``: kernels then run in Triton's interpreter, on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def supports(x: torch.Tensor, cfg=None) -> bool:
    """Whether the Triton kernels run for ``x`` (and, for the LIF, the config ``cfg``); see the module docstring."""
    if cfg is not None and not isinstance(cfg.surrogate, Surrogate):
        return False
    on_device = x.device.type == "cuda" or (x.device.type == "cpu" and interpreting())
    return on_device and x.dtype in _FLOAT_DTYPES and available()


def _triton_derivative(derivative, absolute, tl):
    """A copy of a registry derivative whose ``abs`` is the jitted ``absolute`` (Triton compiles no builtin
    ``abs``); ``tl`` is added to its globals, where the interpreter looks for it."""
    scope = {**derivative.__globals__, "abs": absolute, "tl": tl}
    return types.FunctionType(
        derivative.__code__, scope, derivative.__name__, derivative.__defaults__, derivative.__closure__
    )


@functools.cache
def kernels(interpret: bool) -> types.SimpleNamespace:
    """The four kernels jitted (``interpret``: for Triton's interpreter) and a jitted-derivative cache."""
    del interpret  # the cache key: triton.jit reads TRITON_INTERPRET itself
    import triton
    import triton.language as tl

    from lightning_snn.functional import lif_triton_kernels as k

    absolute = triton.jit(k.absolute)

    @functools.cache
    def derivative(name: str):
        return triton.jit(_triton_derivative(definition(name).derivative, absolute, tl))

    return types.SimpleNamespace(
        lif_forward=triton.jit(k.lif_forward_kernel),
        lif_backward=triton.jit(k.lif_backward_kernel),
        leaky_forward=triton.jit(k.leaky_forward_kernel),
        leaky_backward=triton.jit(k.leaky_backward_kernel),
        derivative=derivative,
    )


def _launch(kernel, m: int, *args, **constexprs) -> None:
    """One program per ``BLOCK`` lanes of ``m``, on the device of the first argument (Triton launches on the
    current one); fused multiply-adds off, so the rounding is PyTorch's."""
    block = min(128, max(16, 1 << (m - 1).bit_length()))
    device = args[0].device
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        kernel[((m + block - 1) // block,)](
            *args, STAGES=_STAGES, BLOCK=block, num_warps=4, enable_fp_fusion=False, **constexprs
        )


def _lanes(t: torch.Tensor, dtype: torch.dtype, n: int) -> torch.Tensor:
    """A ``()`` or ``(N,)`` parameter as a contiguous length-N vector of ``dtype`` (device ops only)."""
    return t.detach().to(dtype).reshape(-1).expand(n).contiguous()


def _state_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rest(cfg) -> float:
    return float(cfg.v_reset) if cfg.reset == "hard" else 0.0


def lif_forward(x: torch.Tensor, beta: torch.Tensor, thr: torch.Tensor, cfg, v0: torch.Tensor | None = None):
    """``(H, spikes, v_end)``: ``H`` (T, B, N) in the state dtype, spikes in ``x``'s dtype, the last membrane
    ``V - V_r`` (B, N) in the state dtype; ``v0`` (B, N) the initial one (``None``: rest)."""
    k = kernels(interpreting())
    dtype, n, m = _state_dtype(x.dtype), x.shape[-1], x[0].numel()
    x = x.contiguous()
    h = torch.empty(x.shape, dtype=dtype, device=x.device)
    spikes = torch.empty_like(x)
    v_end = torch.empty(x.shape[1:], dtype=dtype, device=x.device)
    v0c = h if v0 is None else v0.detach().to(dtype).expand(x.shape[1:]).contiguous()
    _launch(
        k.lif_forward, m, x, _lanes(beta, dtype, n), _lanes(thr, dtype, n), v0c, h, spikes, v_end, x.shape[0], m, n,
        REST=_rest(cfg), DECAY_INPUT=bool(cfg.decay_input), HARD=cfg.reset == "hard", HAS_V0=v0 is not None,
    )  # fmt: skip
    return h, spikes, v_end


def lif_backward(
    h, grad_spikes, x, beta, thr, cfg, need_beta: bool, need_thr: bool, v0=None, grad_v_end=None, x_dtype=None
) -> tuple:
    """``(grad_x (T, B, N) in x_dtype, β sums (B', N), θ sums (B', N), dL/dv0 (B, N))``, sums per lane in the
    state dtype (``None`` when not needed); ``x`` is needed only for β with ``decay_input``."""
    k = kernels(interpreting())
    spec = definition(cfg.surrogate.name)
    c1, c2 = spec.constants(float(cfg.surrogate.alpha))
    steps, n, m = h.shape[0], h.shape[-1], h[0].numel()
    lanes = h.shape[1:]
    gx = torch.empty(h.shape, dtype=x_dtype or h.dtype, device=h.device)
    acc_beta = torch.empty(lanes, dtype=h.dtype, device=h.device) if need_beta else None
    acc_thr = torch.empty(lanes, dtype=h.dtype, device=h.device) if need_thr else None
    grad_v0 = torch.empty(lanes, dtype=h.dtype, device=h.device)
    _launch(
        k.lif_backward, m,
        h, grad_spikes.contiguous(), h if x is None else x.contiguous(), _lanes(beta, h.dtype, n),
        _lanes(thr, h.dtype, n), h if v0 is None else v0.to(h.dtype).expand(lanes).contiguous(),
        h if grad_v_end is None else grad_v_end.expand(lanes).contiguous(), gx,
        h if acc_beta is None else acc_beta, h if acc_thr is None else acc_thr, grad_v0, steps, m, n,
        G=k.derivative(cfg.surrogate.name), REST=_rest(cfg), C1=float(c1), C2=float(c2),
        DECAY_INPUT=bool(cfg.decay_input), HARD=cfg.reset == "hard", DETACH=bool(cfg.detach_reset),
        NEED_BETA=bool(need_beta), NEED_THR=bool(need_thr), HAS_V0=v0 is not None, HAS_G_END=grad_v_end is not None,
    )  # fmt: skip
    per_lane = (-1, n)
    return (
        gx,
        None if acc_beta is None else acc_beta.reshape(per_lane),
        None if acc_thr is None else acc_thr.reshape(per_lane),
        grad_v0,
    )


def leaky_forward(x: torch.Tensor, beta: torch.Tensor, decay_input: bool, v0: torch.Tensor | None = None):
    """``V`` (T, B, N) in the state dtype: ``V_t = β V_{t-1} + c X_t`` from ``v0`` (``None``: 0)."""
    k = kernels(interpreting())
    dtype, n, m = _state_dtype(x.dtype), x.shape[-1], x[0].numel()
    x = x.contiguous()
    v = torch.empty(x.shape, dtype=dtype, device=x.device)
    v0c = v if v0 is None else v0.detach().to(dtype).expand(x.shape[1:]).contiguous()
    _launch(
        k.leaky_forward, m, x, _lanes(beta, dtype, n), v0c, v, x.shape[0], m, n,
        DECAY_INPUT=bool(decay_input), HAS_V0=v0 is not None,
    )  # fmt: skip
    return v


def leaky_backward(grad_v, v, x, beta, decay_input: bool, need_beta: bool, v0=None, x_dtype=None) -> tuple:
    """``(grad_x in x_dtype, β sums (B', N) or None, dL/dv0 (B, N))`` of :func:`leaky_forward`."""
    k = kernels(interpreting())
    steps, n, m = v.shape[0], v.shape[-1], v[0].numel()
    gx = torch.empty(v.shape, dtype=x_dtype or v.dtype, device=v.device)
    acc_beta = torch.empty(v.shape[1:], dtype=v.dtype, device=v.device) if need_beta else None
    grad_v0 = torch.empty(v.shape[1:], dtype=v.dtype, device=v.device)
    _launch(
        k.leaky_backward, m,
        grad_v.contiguous(), v, v if x is None else x.contiguous(), _lanes(beta, v.dtype, n),
        v if v0 is None else v0.to(v.dtype).expand(v.shape[1:]).contiguous(), gx,
        v if acc_beta is None else acc_beta, grad_v0, steps, m, n,
        DECAY_INPUT=bool(decay_input), NEED_BETA=bool(need_beta), HAS_V0=v0 is not None,
    )  # fmt: skip
    return gx, None if acc_beta is None else acc_beta.reshape(-1, n), grad_v0
