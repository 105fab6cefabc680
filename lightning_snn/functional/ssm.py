r"""Diagonal state-space (S4D) kernels: initialisation, ZOH discretisation, FFT convolution, recurrence.

Continuous system per channel :math:`h` with :math:`N/2` complex modes (the other half are the complex
conjugates, so the output is real; Gu et al., "On the Parameterization and Initialization of Diagonal
State Space Models", NeurIPS 2022). P-SpikeSSM's authors (Bal & Sengupta, ICLR 2025) use the S4 DPLR
kernel instead (:mod:`lightning_snn.functional.s4_dplr`); S4D is this package's lighter alternative:

.. math::
    x'(t) = A x(t) + B u(t), \qquad y(t) = 2\,\mathrm{Re}(C x(t)) + D u(t),
    \qquad A = -e^{a_{re}} + i\,a_{im},\ B = 1.

Zero-order hold with step :math:`\Delta` gives :math:`\bar A = e^{\Delta A}`,
:math:`\bar B = (\bar A - 1)/A` and the recurrence (the streaming path, :func:`s4d_recurrence`)

.. math::
    x_t = \bar A x_{t-1} + u_t, \qquad y_t = 2\,\mathrm{Re}\big(\textstyle\sum_n \bar C_n x_{t,n}\big) + D u_t,
    \qquad \bar C = C \bar B,

whose unrolled form is the causal convolution :math:`y = K * u + D u` with the kernel
:math:`K_l = 2\,\mathrm{Re}\sum_n \bar C_n \bar A_n^{\,l}` (:func:`s4d_kernel`), applied in parallel
over time by FFT with zero padding to :math:`2T` (:func:`causal_fft_conv`, :math:`O(T \log T)`).

Initialisations of :math:`A` (:func:`s4d_a_init`): S4D-Lin :math:`A_n = -\tfrac12 + i\pi n` and S4D-Inv
:math:`A_n = -\tfrac12 + i\tfrac{N}{\pi}\big(\tfrac{N}{2n+1} - 1\big)`. The step is bounded by
parametrisation, :math:`\log\Delta = \log\Delta_{min} + \sigma(w)(\log\Delta_{max} - \log\Delta_{min})`,
so :math:`\Delta \in (\Delta_{min}, \Delta_{max})` (default :math:`[10^{-3}, 10^{-1}]`) throughout training.
"""

from __future__ import annotations

import math

import torch

A_INITS = ("lin", "inv")


def check_d_state(d_state: int) -> int:
    """Number of complex modes ``d_state // 2``; ``d_state`` must be a positive even number."""
    if not isinstance(d_state, int) or d_state < 2 or d_state % 2:
        raise ValueError(
            f"d_state={d_state!r} is invalid: the S4D parametrisation stores conjugate pairs, so d_state must be "
            "an even integer >= 2 (d_state/2 complex modes). Use e.g. d_state=64."
        )
    return d_state // 2


def check_dt_bounds(dt_min: float, dt_max: float) -> None:
    """Raise unless ``0 < dt_min < dt_max < inf`` (an infinite bound makes every output NaN)."""
    if not (dt_min > 0 and dt_max > 0 and math.isfinite(dt_min) and math.isfinite(dt_max)):
        raise ValueError(
            f"S4D dt bounds must be finite positive numbers; got dt_min={dt_min}, dt_max={dt_max} "
            "(the default is dt_min=0.001, dt_max=0.1)."
        )
    if not dt_min < dt_max:
        raise ValueError(
            f"dt bounds are inverted or empty: dt_min={dt_min} must be < dt_max={dt_max}. "
            f"Swap them (dt_min={min(dt_min, dt_max)}, dt_max={max(dt_min, dt_max)})."
        )


def s4d_a_init(n_channels: int, d_state: int, init: str = "lin") -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_a_real, a_imag)``, each ``(n_channels, d_state // 2)``, for S4D-Lin or S4D-Inv."""
    if init not in A_INITS:
        raise ValueError(f"Unknown S4D init {init!r}; expected one of {A_INITS}.")
    modes = check_d_state(d_state)
    n = torch.arange(modes, dtype=torch.get_default_dtype())
    if init == "lin":
        imag = math.pi * n
    else:
        imag = d_state / math.pi * (d_state / (2 * n + 1) - 1)
    log_a_real = torch.full((n_channels, modes), math.log(0.5))
    return log_a_real, imag.expand(n_channels, modes).clone()


def raw_from_dt(dt: torch.Tensor, dt_min: float, dt_max: float) -> torch.Tensor:
    """Inverse of :func:`dt_from_raw` (``dt`` strictly inside the bounds)."""
    frac = (torch.log(dt) - math.log(dt_min)) / (math.log(dt_max) - math.log(dt_min))
    return torch.logit(frac.clamp(1e-6, 1 - 1e-6))


def dt_from_raw(raw: torch.Tensor, dt_min: float, dt_max: float) -> torch.Tensor:
    r""":math:`\Delta = \exp(\log\Delta_{min} + \sigma(w)(\log\Delta_{max} - \log\Delta_{min}))`."""
    lo, hi = math.log(dt_min), math.log(dt_max)
    return torch.exp(lo + torch.sigmoid(raw) * (hi - lo))


def log_dt_uniform(n_channels: int, dt_min: float, dt_max: float, generator: torch.Generator | None = None):
    """Initial steps, log-uniform in ``[dt_min, dt_max]`` (the S4D init), one per channel."""
    check_dt_bounds(dt_min, dt_max)
    u = torch.rand(n_channels, generator=generator)
    return torch.exp(math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min)))


def zoh_discretize(
    log_a_real: torch.Tensor, a_imag: torch.Tensor, dt: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(A_bar, C_bar)``, complex ``(H, N/2)``: :math:`\bar A = e^{\Delta A}`, :math:`\bar C = C(\bar A - 1)/A`.

    ``c`` is complex ``(H, N/2)`` (or its real view ``(H, N/2, 2)``); ``dt`` is ``(H,)``.
    """
    if not c.is_complex():
        c = torch.view_as_complex(c.contiguous())
    a = torch.complex(-torch.exp(log_a_real), a_imag)
    dt_a = a * dt[:, None]
    a_bar = torch.exp(dt_a)
    return a_bar, c * (a_bar - 1) / a


def s4d_kernel(dt_a: torch.Tensor, c_bar: torch.Tensor, steps: int) -> torch.Tensor:
    r"""Real kernel ``(H, steps)``: :math:`K_l = 2\,\mathrm{Re}\sum_n \bar C_n e^{l\Delta A_n}`.

    ``dt_a`` is :math:`\Delta A` (complex ``(H, N/2)``). Powers are exact exponentials, but only
    :math:`O(\sqrt T)` of them: with :math:`l = qR + r`, :math:`K_{qR+r} = 2\,\mathrm{Re}\sum_n
    (\bar C_n e^{qR\Delta A_n})\, e^{r\Delta A_n}`, one batched complex matmul ``(H, Q, N/2) @ (H, N/2, R)``
    instead of :math:`H \cdot N/2 \cdot T` complex exponentials (a complex ``exp`` costs ~50 ns on a CPU).
    """
    if steps < 1:
        raise ValueError(f"Kernel length must be >= 1, got steps={steps}.")
    inner_len = math.isqrt(steps - 1) + 1  # R = ceil(sqrt(T))
    outer_len = -(-steps // inner_len)  # Q = ceil(T / R)
    real = dt_a.real.dtype
    inner = torch.exp(dt_a[..., None] * torch.arange(inner_len, device=dt_a.device, dtype=real))  # (H, N/2, R)
    outer_steps = torch.arange(outer_len, device=dt_a.device, dtype=real) * inner_len
    outer = c_bar[..., None] * torch.exp(dt_a[..., None] * outer_steps)  # (H, N/2, Q)
    kernel = torch.matmul(outer.transpose(-1, -2), inner)  # (H, Q, R)
    return 2 * kernel.real.reshape(dt_a.shape[0], -1)[:, :steps]


def causal_fft_conv(u: torch.Tensor, kernel: torch.Tensor, chunk_elements: int = 2**19) -> torch.Tensor:
    r""":math:`y_t = \sum_{l \le t} K_l u_{t-l}` for ``u`` ``(T, B, H)`` and ``kernel`` ``(H, T)``.

    Both are zero-padded to ``2T`` so the circular FFT convolution is the causal linear one. The FFT runs
    over the last axis of a ``(B, H, T)`` view, a few samples at a time (about ``chunk_elements`` values
    per chunk, so a chunk's spectra stay in cache: 3–4× faster than one big transform on a CPU).
    """
    steps, batch, channels = u.shape
    if kernel.shape != (channels, steps):
        raise ValueError(f"kernel shape {tuple(kernel.shape)} does not match input (T, B, H) = {tuple(u.shape)}.")
    dtype = u.dtype
    if dtype in (torch.float16, torch.bfloat16):  # FFTs of half tensors are not supported on every device
        u = u.float()
    n = 2 * steps
    k_f = torch.fft.rfft(kernel.to(u.dtype), n=n, dim=-1)  # (H, n/2+1)
    per_chunk = max(1, chunk_elements // (channels * n))
    chunks = [
        torch.fft.irfft(torch.fft.rfft(u[:, i : i + per_chunk].permute(1, 2, 0), n=n, dim=-1) * k_f, n=n, dim=-1)
        for i in range(0, batch, per_chunk)
    ]
    return torch.cat(chunks, 0)[..., :steps].permute(2, 0, 1).to(dtype)  # (T, B, H)


def s4d_step(
    u_t: torch.Tensor, state: torch.Tensor, a_bar: torch.Tensor, c_bar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step: :math:`x_t = \bar A x_{t-1} + u_t`, :math:`y_t = 2\,\mathrm{Re}(\bar C x_t)` (no D term).

    ``u_t`` ``(B, H)``, ``state`` complex ``(B, H, N/2)``; returns ``(y_t (B, H), new state)``.
    """
    state = a_bar * state + u_t[..., None]
    return 2 * (c_bar * state).real.sum(-1), state


def initial_state(batch: int, a_bar: torch.Tensor) -> torch.Tensor:
    """Zero state ``(B, H, N/2)`` with the dtype and device of ``a_bar``."""
    return torch.zeros(batch, *a_bar.shape, dtype=a_bar.dtype, device=a_bar.device)


def s4d_recurrence(
    u: torch.Tensor, a_bar: torch.Tensor, c_bar: torch.Tensor, state: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential reference of :func:`causal_fft_conv` with :func:`s4d_kernel`: ``(y (T, B, H), state)``."""
    if state is None:
        state = initial_state(u.shape[1], a_bar)
    outputs = []
    for u_t in u:
        y_t, state = s4d_step(u_t, state, a_bar, c_bar)
        outputs.append(y_t)
    return torch.stack(outputs).to(u.dtype), state
