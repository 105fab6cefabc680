r"""The fused LIF's forward loop (:mod:`lightning_snn.functional.lif_scan`) as one compiled CPU pass (Numba).

Same equations and the same outputs (``H`` and the spikes, written into ``(T, B, N)`` buffers) as the
PyTorch loop there, which pays ~6 kernel launches per time step; here each batch row keeps its N
membranes in a small array and walks through time once, branch-free over N so the loop vectorises
(≈1 ms for T=100, B=64, N=256 on one core against ≈5 ms for the PyTorch loop).

Measured and *not* kept (see ``docs/speed.md``): a compiled backward (memory-bound, no faster than the
PyTorch adjoint loop) and ``prange`` threads (several times slower on a busy 2-core machine). The
kernel is serial, so it is safe with forked data-loader workers and any Numba threading layer.

Numba is optional: without it, or with ``LIGHTNING_SNN_NUMBA=0``, ``available()`` is False and the
PyTorch loop runs. The kernel is compiled on first use (a few seconds) and cached on disk.
"""
from __future__ import annotations

import os

import torch

try:  # optional accelerator
    import numba
    import numpy as np
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None

def available() -> bool:
    """True when the compiled CPU kernels can be used (numba imports and is not disabled)."""
    return numba is not None and os.environ.get("LIGHTNING_SNN_NUMBA", "1") != "0"


if numba is not None:

    @numba.njit(cache=True)
    def _forward(x, beta, scale, thr, decay_input, hard, rest, h, spikes):
        """Fill ``h`` (T, B, N) with the charged membrane H and ``spikes`` with ``H >= θ``.

        β, ``scale = 1 - β``, θ have length N; ``rest`` is an array of x's dtype, so float32 stays
        float32 (the rounding of the reference loop). Branch-free so the inner loop vectorises."""
        steps, batch, n = x.shape
        r = rest[0]
        one = scale.dtype.type(1.0)
        for bi in range(batch):
            v = np.zeros(n, x.dtype)  # V - rest
            for t in range(steps):
                for k in range(n):
                    drive = scale[k] * x[t, bi, k] if decay_input else x[t, bi, k]
                    hh = r + beta[k] * v[k] + drive
                    s = one if hh >= thr[k] else 0 * one  # H - θ >= 0
                    h[t, bi, k] = hh
                    spikes[t, bi, k] = s
                    v[k] = (hh - r) * (one - s) if hard else hh - thr[k] * s


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


def _param(t: torch.Tensor, dtype: torch.dtype, n: int):
    """A ``()`` or ``(N,)`` parameter as a length-N array (no per-element modulo in the kernels)."""
    return _np(t.to(dtype).reshape(-1).expand(n))


def forward(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg) -> tuple:
    """``(H, spikes)``, both (T, B, N), for the float32/float64 CPU input ``x`` (B may be several dims)."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    n = x.shape[-1]
    x3 = _np(x).reshape(x.shape[0], -1, n)
    h, spikes = torch.empty(x.shape, dtype=x.dtype), torch.empty(x.shape, dtype=x.dtype)
    _forward(x3, _param(decay, x.dtype, n), _param(1.0 - decay, x.dtype, n), _param(threshold, x.dtype, n),
             cfg.decay_input, cfg.reset == "hard", np.array([rest], dtype=x3.dtype),
             h.numpy().reshape(x3.shape), spikes.numpy().reshape(x3.shape))
    return h, spikes
