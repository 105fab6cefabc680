r"""A faster CPU training path for learnable delays: the same Gaussian-kernel convolution as
:func:`~lightning_snn.layers.delay_fft.gaussian_delay_fft`, with fewer and larger matrix products.

The function is unchanged (DCLS ``version="gauss"``, Khalfaoui-Hassani et al. 2023; Hammouamri et al. 2024):

.. math::
    y_o[t] = \sum_i \sum_{j=0}^{D-1} w_{oi}\,\hat g_{oi}[j]\, x_i[t-j], \qquad
    \hat g_{oi}[j] = \frac{g_{oi}[j]}{\sum_{j'} g_{oi}[j'] + 10^{-7}}, \qquad
    g_{oi}[j] = \exp\!\Big(-\tfrac12 \big(\tfrac{j - d_{oi}}{|\sigma| + 0.27}\big)^2\Big)

(``g`` set to 0 where the exponent is below -60, as in :mod:`~lightning_snn.layers.delay_fft`). Three things
make it faster on a CPU:

1. **The taps in one compiled pass** (Numba, vectorised over synapses, ``exp`` by range reduction and a
   polynomial in float64), instead of about ten element-wise PyTorch passes over the ``(D, O, I)`` kernel.
2. **The kernel spectrum as matmuls** ``(3F, D) @ (D, I·O)`` whose three row blocks are
   :math:`\mathrm{Re}\,\hat k`, :math:`\mathrm{Im}\,\hat k` and :math:`\mathrm{Re}\,\hat k + \mathrm{Im}\,\hat k`
   (``F = n//2 + 1``, ``n`` = :func:`~lightning_snn.layers.delay_fft.fft_size` of ``T + D - 1``), computed
   16 rows at a time and used at once (a whole ``(3F, I, O)`` spectrum is ~100 MB at 700 x 256: the page
   faults of allocating it every step cost more than its matmuls). The input's DFT is a matmul with the
   same rows.
3. **The complex product by three real matmuls** (Gauss's trick), run as one batched ``bmm`` over
   ``3F`` frequencies: with :math:`P_1 = X_r K_r`, :math:`P_2 = X_i K_i`, :math:`P_3 = (X_r + X_i)(K_r + K_i)`,
   :math:`Y_r = P_1 - P_2` and :math:`Y_i = P_3 - P_1 - P_2`; the inverse transform of ``Y`` is a single
   matmul ``(T, 3F) @ (3F, B·O)`` that folds those sums in and keeps only the ``T`` outputs needed.

Equal to :func:`~lightning_snn.layers.delay_fft.gaussian_delay_fft` in value and in the gradients for weight,
delay and input, to float rounding (``tests/test_delay_paths.py``). Used for float32/float64 CPU tensors when
Numba is importable and not disabled (``LIGHTNING_SNN_NUMBA=0``); see :func:`available`.
"""

from __future__ import annotations

import functools
import math
import os

import torch

from lightning_snn.layers.delay_fft import DCLS_SIGMA_FLOOR, fft_size, gaussian_delay_fft

try:  # optional accelerator, a runtime dependency of the package
    import numba
    import numpy as np
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None

#: Synapses per block of the taps kernels (a block's taps stay in the L1/L2 cache). The kernels run on one
#: thread: they are ~10 % of a training step, and a parallel Numba kernel takes ~3x longer to compile
#: (on every fresh install or CI run: the on-disk cache is per checkout).
_BLOCK = 512


def available(tensor: torch.Tensor) -> bool:
    """True when this path can run on ``tensor``: a float32/float64 CPU tensor, Numba importable and enabled."""
    return (
        numba is not None
        and os.environ.get("LIGHTNING_SNN_NUMBA", "1") != "0"
        and tensor.device.type == "cpu"
        and tensor.dtype in (torch.float32, torch.float64)
    )


if numba is not None:
    #: 2^-k for the exponent part of :func:`_taps_forward`'s exp (a table lookup vectorises; ``ldexp`` does not).
    _POW2 = np.array([2.0**-k for k in range(100)], np.float64)

    @numba.njit(cache=True, fastmath=True)
    def _taps_forward(weight, delay, inv_width, taps_out, kernel_out):  # pragma: no cover - compiled
        """Normalised taps ``ĝ`` into ``taps_out`` ``(D, S)`` and ``w·ĝ`` into ``kernel_out``, for ``S``
        synapses with finite positions ``delay`` ``(S,)`` and ``1/width`` ``inv_width``. Branch-free over
        synapses so it vectorises: ``exp(z)`` for ``z`` in [-60, 0] as ``2^m·p(r)``, ``z = m ln 2 + r``,
        ``|r| <= ln(2)/2``, ``p`` the degree-8 Taylor polynomial (relative error < 1e-9, in float64)."""
        taps, size = taps_out.shape
        for block in range((size + _BLOCK - 1) // _BLOCK):
            s0 = block * _BLOCK
            n = min(size, s0 + _BLOCK) - s0
            total = np.zeros(n, np.float64)
            for j in range(taps):
                for q in range(n):
                    u = (j - np.float64(delay[s0 + q])) * inv_width
                    z = -0.5 * u * u
                    zc = max(z, -61.0)
                    m = np.floor(zc * 1.4426950408889634 + 0.5)
                    r = zc - m * 0.6931471805599453
                    p = 1.0 + r * (
                        1.0
                        + r
                        * (
                            0.5
                            + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 + r / 40320)))))
                        )
                    )
                    e = p * _POW2[int(-m)] if z >= -60.0 else 0.0  # below e^-60: 0, as in delay_fft
                    taps_out[j, s0 + q] = e
                    total[q] += e
            for q in range(n):
                total[q] = 1.0 / (total[q] + 1e-7)
            for j in range(taps):
                for q in range(n):
                    v = taps_out[j, s0 + q] * total[q]
                    taps_out[j, s0 + q] = v
                    kernel_out[j, s0 + q] = v * weight[s0 + q]

    @numba.njit(cache=True, fastmath=True)
    def _taps_backward(grad, taps_in, weight, delay, inv_width, grad_weight, grad_delay):  # pragma: no cover
        r"""From ``grad`` = dL/d(w·ĝ) ``(D, S)``: :math:`\partial_w = \sum_j G_j \hat g_j` and
        :math:`\partial_d = (w/s)\,(\sum_j G_j \hat g_j u_j - \bar u\,\partial_w)`,
        :math:`\bar u = \sum_j \hat g_j u_j`, :math:`u_j = (j - d)/s`."""
        taps, size = taps_in.shape
        inv = inv_width
        for block in range((size + _BLOCK - 1) // _BLOCK):
            s0 = block * _BLOCK
            n = min(size, s0 + _BLOCK) - s0
            gw = np.zeros(n, grad.dtype)
            gu = np.zeros(n, grad.dtype)
            ubar = np.zeros(n, grad.dtype)
            for j in range(taps):
                for q in range(n):
                    u = (j - delay[s0 + q]) * inv
                    gg = grad[j, s0 + q] * taps_in[j, s0 + q]
                    gw[q] += gg
                    gu[q] += gg * u
                    ubar[q] += taps_in[j, s0 + q] * u
            for q in range(n):
                grad_weight[s0 + q] = gw[q]
                grad_delay[s0 + q] = weight[s0 + q] * inv * (gu[q] - ubar[q] * gw[q])


@functools.lru_cache(maxsize=32)
def _dft_rows(taps: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``(3F, taps)``: rows ``cos``, ``-sin`` and ``cos - sin`` of ``2π f j / n`` for ``f < F = n//2 + 1``."""
    j = torch.arange(taps, dtype=torch.float64)
    f = torch.arange(n // 2 + 1, dtype=torch.float64)
    angle = (2 * math.pi / n) * torch.outer(f, j).remainder(n)
    cos, sin = angle.cos(), angle.sin()
    return torch.cat([cos, -sin, cos - sin]).to(dtype)


@functools.lru_cache(maxsize=32)
def _inverse_rows(steps: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    r"""``(T, 3F)`` mapping ``[P_1; P_2; P_3]`` to the first ``T`` samples of the inverse real DFT of
    :math:`Y = (P_1 - P_2) + i (P_3 - P_1 - P_2)`: ``[A_r - A_i, -A_r - A_i, A_i]`` with
    :math:`y[t] = \sum_f A_r[t, f] Y_r[f] + A_i[t, f] Y_i[f]` (``irfft``'s weights: 1, 2, ..., 2, 1 over f)."""
    freqs = n // 2 + 1
    t = torch.arange(steps, dtype=torch.float64)
    f = torch.arange(freqs, dtype=torch.float64)
    angle = (2 * math.pi / n) * torch.outer(t, f).remainder(n)
    weight = torch.full((freqs,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    a_r = angle.cos() * weight / n
    a_i = -angle.sin() * weight / n
    return torch.cat([a_r - a_i, -a_r - a_i, a_i], dim=1).to(dtype)


class GaussianTaps(torch.autograd.Function):
    """The kernel ``w·ĝ`` laid out ``(D, A·C)`` from ``weight``/``delay`` of one shape ``(A, C)`` (the taps of
    the module docstring, one compiled pass), with the backward of
    :class:`~lightning_snn.layers.delay_fft.GaussianDelayTaps` (same formulas, one compiled pass)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, delay: torch.Tensor, inv_width: float, taps: int) -> torch.Tensor:
        w = weight.detach().contiguous().reshape(-1)
        d = delay.detach().to(weight.dtype).contiguous().reshape(-1)
        g = torch.empty(taps, w.numel(), dtype=weight.dtype)
        kernel = torch.empty_like(g)
        _taps_forward(w.numpy(), d.numpy(), inv_width, g.numpy(), kernel.numpy())
        ctx.save_for_backward(w, d, g)
        ctx.inv_width, ctx.shape = inv_width, weight.shape
        return kernel

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        w, d, g = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weight, grad_delay = torch.empty_like(w), torch.empty_like(w)
        inv = g.new_tensor(ctx.inv_width).numpy()[()]  # the kernel's dtype, so float32 stays float32
        arrays = (grad.numpy(), g.numpy(), w.numpy(), d.numpy(), inv, grad_weight.numpy(), grad_delay.numpy())
        _taps_backward(*arrays)
        return grad_weight.view(ctx.shape), grad_delay.view(ctx.shape), None, None


#: Rows of the kernel spectrum computed at once: ``_CHUNK·O·I`` floats (11 MB for 700 x 256) stay in the
#: cache and below glibc's mmap threshold (a fresh 100 MB spectrum per step costs more in page faults
#: than its matmuls).
_CHUNK = 16


class SpectralProduct(torch.autograd.Function):
    """``P[r] = x3[r] @ S[r]`` for the ``3F`` rows ``r`` of the kernel spectrum ``S = dft @ kernel``
    (``(3F, I, O)``, never held whole: built and used ``_CHUNK`` rows at a time, and rebuilt in the
    backward pass only when ``x3`` needs a gradient). ``x3`` ``(3F, B, I)``, ``kernel`` ``(D, I·O)``."""

    @staticmethod
    def forward(ctx, x3: torch.Tensor, kernel: torch.Tensor, dft: torch.Tensor, out_features: int) -> torch.Tensor:
        rows, batch, in_features = x3.shape
        products = x3.new_empty(rows, batch, out_features)
        for r in range(0, rows, _CHUNK):
            spectrum = (dft[r : r + _CHUNK] @ kernel).view(-1, in_features, out_features)
            torch.bmm(x3[r : r + _CHUNK], spectrum, out=products[r : r + _CHUNK])
        ctx.save_for_backward(x3, kernel, dft)
        ctx.out_features = out_features
        return products

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x3, kernel, dft = ctx.saved_tensors
        rows, _, in_features = x3.shape
        grad = grad.contiguous()
        grad_x3 = torch.empty_like(x3) if ctx.needs_input_grad[0] else None
        grad_kernel = torch.zeros_like(kernel) if ctx.needs_input_grad[1] else None
        for r in range(0, rows, _CHUNK):
            g = grad[r : r + _CHUNK]
            if grad_x3 is not None:
                spectrum = (dft[r : r + _CHUNK] @ kernel).view(-1, in_features, ctx.out_features)
                torch.bmm(g, spectrum.transpose(1, 2), out=grad_x3[r : r + _CHUNK])
            if grad_kernel is not None:
                grad_spectrum = torch.bmm(x3[r : r + _CHUNK].transpose(1, 2), g)  # (chunk, I, O)
                grad_kernel.addmm_(dft[r : r + _CHUNK].t(), grad_spectrum.flatten(1))
        return grad_x3, grad_kernel, None, None


def spectral_delay_conv(x: torch.Tensor, kernel: torch.Tensor, max_delay: int, out_features: int) -> torch.Tensor:
    """``y[t, b, o] = Σ_i Σ_j kernel[j, i·O + o] x[t - j, b, i]`` for ``x`` ``(T, B, I)`` and ``kernel``
    ``(D, I·O)``: the length-``n`` DFT of the zero-padded ``x`` (one matmul, same rows as the kernel's),
    :class:`SpectralProduct` (Gauss's three products per frequency), the inverse DFT (one matmul)."""
    steps, batch, in_features = x.shape
    n = fft_size(steps + max_delay - 1)
    x3 = (_dft_rows(steps, n, x.dtype) @ x.reshape(steps, -1)).view(-1, batch, in_features)
    products = SpectralProduct.apply(x3, kernel, _dft_rows(max_delay, n, x.dtype), out_features)
    return (_inverse_rows(steps, n, x.dtype) @ products.flatten(1)).view(steps, batch, out_features)


def gaussian_delay_spectral(
    x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor, sigma: torch.Tensor | float, max_delay: int
) -> torch.Tensor:
    """The same values and gradients as :func:`~lightning_snn.layers.delay_fft.gaussian_delay_fft`
    (``weight``/``delay`` ``(O, I)``, ``x`` ``(T, B, I)``, σ not differentiated), by the path of the module
    docstring. CPU only (check :func:`available` first)."""
    width = abs(float(sigma)) + DCLS_SIGMA_FLOOR
    if not (math.isfinite(width) and bool(torch.isfinite(delay).all())):  # NaN stays NaN: the reference path
        return gaussian_delay_fft(x, weight, delay, sigma, max_delay)
    inv_width = 1.0 / width
    kernel = GaussianTaps.apply(weight.t(), delay.t(), inv_width, max_delay)  # (D, I·O): spectra (I, O), NN bmm
    return spectral_delay_conv(x, kernel.to(x.dtype), max_delay, weight.shape[0])
