r"""Functional core of learnable synaptic delays: the Gaussian delay kernel and its causal application.

A synapse :math:`i \to o` with weight :math:`w_{oi}`, delay position :math:`d_{oi} \in [0, D-1]` and
width :math:`\sigma` has the kernel over delays :math:`j = 0..D-1` (DCLS ``version="gauss"``,
Khalfaoui-Hassani et al. 2023; Hammouamri et al. 2024)

.. math::
    k_{oi}[j] = w_{oi}\,\frac{g_{oi}[j]}{\sum_{j'} g_{oi}[j'] + 10^{-7}}, \qquad
    g_{oi}[j] = \exp\!\Big(-\tfrac12 \big(\tfrac{j - d_{oi}}{|\sigma| + 0.27}\big)^2\Big)

(the ``+0.27`` floor and the normalisation are DCLS's, so values match ``Dcls1d`` exactly), and the
layer computes the causal convolution over time

.. math::  y_o[t] = \sum_i \sum_{j=0}^{D-1} k_{oi}[j]\, x_i[t - j], \qquad x[t<0] = 0 .

:func:`causal_fft_conv` evaluates it in the frequency domain: one real FFT of the input and of the
kernels, one complex matmul per frequency (``(B, I) @ (I, O)``), one inverse FFT. Its cost grows like
``T log T`` instead of ``T·D`` for a direct convolution (what DCLS runs), see ``benchmarks/delay_speed.py``.
"""

from __future__ import annotations

import math

import torch

#: DCLS adds this to ``abs(σ)`` in ``ConstructKernel1d.forward_vgauss``; the Gaussian is never narrower.
DCLS_SIGMA_FLOOR = 0.27


def _gaussian_taps(delay: torch.Tensor, sigma: torch.Tensor | float, max_delay: int) -> torch.Tensor:
    """Normalised Gaussian weights ``(max_delay, O, I)`` over the delay taps ``j``."""
    j = torch.arange(max_delay, device=delay.device, dtype=delay.dtype)[:, None, None]
    width = torch.as_tensor(sigma, device=delay.device, dtype=delay.dtype).abs() + DCLS_SIGMA_FLOOR
    z = -0.5 * ((j - delay) / width) ** 2
    # exp(z) below e^-60 is zeroed: it changes nothing visible, and float32 denormals are ~50x slower.
    # (z < -60, not z > -60: a NaN z, from a NaN σ or delay, stays NaN instead of becoming a silent 0.)
    g = torch.where(z < -60.0, torch.zeros_like(z), z.exp())
    return g / (g.sum(0, keepdim=True) + 1e-7)


def gaussian_delay_kernel(
    weight: torch.Tensor, delay: torch.Tensor, sigma: torch.Tensor | float, max_delay: int
) -> torch.Tensor:
    """Kernel ``(O, I, max_delay)`` indexed by delay ``j`` (``k[..., j]`` multiplies ``x[t - j]``)."""
    return (weight * _gaussian_taps(delay, sigma, max_delay)).permute(1, 2, 0)


def one_hot_delay_kernel(weight: torch.Tensor, delay: torch.Tensor, max_delay: int) -> torch.Tensor:
    """The σ → 0 limit: ``k[o, i, j] = w[o, i]`` if ``j == delay[o, i]`` else 0 (``delay`` integer)."""
    onehot = torch.nn.functional.one_hot(delay.long(), max_delay).to(weight.dtype)
    return weight[..., None] * onehot


def fft_size(n: int) -> int:
    """Smallest ``2^a 3^b 5^c >= n``: lengths pocketfft handles fastest."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def kernel_spectrum(kernel_dio: torch.Tensor, n: int) -> torch.Tensor:
    """rFFT of length ``n`` of a kernel laid out ``(D, I, O)``, as ``(n//2 + 1, I, O)`` complex.

    A DFT matmul, not an FFT: with few taps ``D`` one ``(F, D) @ (D, I·O)`` product is far faster
    than ``I·O`` small FFTs, and its backward is one more matmul.
    """
    taps = kernel_dio.shape[0]
    j = torch.arange(taps, device=kernel_dio.device, dtype=torch.float64)
    f = torch.arange(n // 2 + 1, device=kernel_dio.device, dtype=torch.float64)
    angle = (2 * math.pi / n) * torch.outer(f, j).remainder(n)
    flat = kernel_dio.reshape(taps, -1)
    real = angle.cos().to(flat.dtype) @ flat
    imag = -(angle.sin().to(flat.dtype) @ flat)
    return torch.complex(real, imag).view(-1, *kernel_dio.shape[1:])


def causal_fft_conv_spectrum(x: torch.Tensor, spectrum: torch.Tensor, n: int) -> torch.Tensor:
    """Apply a kernel given by its spectrum ``(F, I, O)`` (from :func:`kernel_spectrum`) to ``x`` ``(T, B, I)``."""
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):  # FFTs of half tensors are not supported on every device
        x = x.float()
    xf = torch.fft.rfft(x, n=n, dim=0)  # (F, B, I)
    y = torch.fft.irfft(torch.bmm(xf, spectrum.to(xf.dtype)), n=n, dim=0)[: x.shape[0]]
    return y.to(dtype)


def causal_fft_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y[t, b, o] = Σ_i Σ_j kernel[o, i, j] x[t - j, b, i]`` for ``x`` ``(T, B, I)`` → ``(T, B, O)``."""
    n = fft_size(x.shape[0] + kernel.shape[-1] - 1)
    return causal_fft_conv_spectrum(x, kernel_spectrum(kernel.permute(2, 1, 0), n), n)


class GaussianDelayTaps(torch.autograd.Function):
    r"""``weight * taps`` laid out ``(D, I, O)``, from ``weight``, ``delay`` ``(I, O)`` and a fixed width.

    The same values as ``weight * _gaussian_taps(delay, σ, D)`` with a hand-written backward
    (about 3x faster than autograd's many element-wise passes). With :math:`\hat g_j = g_j / Z`,
    :math:`u_j = (j - d) / s` and :math:`\bar u = \sum_j \hat g_j u_j`:
    :math:`\partial k_j / \partial w = \hat g_j` and
    :math:`\partial k_j / \partial d = (w / s)\, \hat g_j (u_j - \bar u)`.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, delay: torch.Tensor, width: torch.Tensor, taps: int) -> torch.Tensor:
        j = torch.arange(taps, device=delay.device, dtype=delay.dtype)[:, None, None]
        z = ((j - delay) / width).square_().mul_(-0.5)
        g = torch.where(z < -60.0, 0.0, z.exp_())  # no float32 denormals; a NaN stays NaN (see _gaussian_taps)
        g = g.div_(g.sum(0, keepdim=True).add_(1e-7))
        ctx.save_for_backward(weight, delay, g, width)
        return g * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight, delay, g, width = ctx.saved_tensors
        j = torch.arange(g.shape[0], device=delay.device, dtype=delay.dtype)[:, None, None]
        u = (j - delay) / width
        grad_g = grad * g
        grad_weight = grad_g.sum(0)
        u_bar = (g * u).sum(0)
        grad_delay = (weight / width) * ((grad_g * u).sum(0) - u_bar * grad_weight)
        return grad_weight, grad_delay, None, None


def gaussian_delay_fft(
    x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor, sigma: torch.Tensor | float, max_delay: int
) -> torch.Tensor:
    """The training path of :class:`~lightning_snn.layers.delayed_linear.DelayedLinear`: Gaussian
    kernel built directly in the ``(D, I, O)`` layout (:class:`GaussianDelayTaps`), then
    :func:`causal_fft_conv_spectrum`. ``weight``/``delay`` are ``(O, I)``; σ is not differentiated
    (it stays a tensor: no host sync)."""
    n = fft_size(x.shape[0] + max_delay - 1)
    sigma = torch.as_tensor(sigma, device=delay.device, dtype=delay.dtype)
    width = sigma.detach().abs() + DCLS_SIGMA_FLOOR
    kernel = GaussianDelayTaps.apply(weight.t(), delay.t(), width, max_delay)  # (D, I, O)
    return causal_fft_conv_spectrum(x, kernel_spectrum(kernel, n), n)


def causal_direct_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Same result as :func:`causal_fft_conv` with ``F.conv1d`` (the way DCLS applies its kernel)."""
    taps = kernel.shape[-1]
    xb = torch.nn.functional.pad(x.permute(1, 2, 0), (taps - 1, 0))  # (B, I, T + D - 1)
    y = torch.nn.functional.conv1d(xb, kernel.flip(-1))  # cross-correlation: flip delay → tap index
    return y.permute(2, 0, 1)
