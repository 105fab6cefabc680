r"""``DelayedLinear``: dense synapses with one learnable delay each (DCLS, Hammouamri et al. ICLR 2024).

For time-major input :math:`x` ``(T, B, I)``, weight :math:`w_{oi}` and delay position
:math:`d_{oi} = \mathrm{clamp}(p_{oi}, 0, D-1)` (the clamp is the parametrisation, with an inward-only gradient
outside the range, :class:`InwardClamp`; the raw parameter ``delay_position`` is never edited in place),

.. math::
    y_o[t] = \sum_i \sum_{j=0}^{D-1} w_{oi}\,\frac{g_{oi}[j]}{\sum_{j'} g_{oi}[j']}\, x_i[t-j], \qquad
    g_{oi}[j] = \exp\!\Big(-\tfrac12\big(\tfrac{j - d_{oi}}{|\sigma| + 0.27}\big)^2\Big)

with :math:`x[t<0]=0` (causal: ``y[t]`` depends on ``x[≤ t]`` only). This is ``Dcls1d(I, O,
kernel_count=1, dilated_kernel_size=D, version="gauss", bias=False)`` applied along time to the input
left-padded with ``D-1`` zeros, exactly as in ``Thvnvtos/SNN-delays``; DCLS's tap index ``k`` is the
delay ``D-1-k``. σ is not learned: it is a buffer that
:class:`~lightning_snn.callbacks.delay_sigma.DelaySigmaSchedule` decays from ``D/2`` to 0.23 (Mészáros et
al. 2024). In eval mode (or with
``integer=True``) positions are rounded and σ → 0, so each synapse delivers
:math:`w_{oi} x_i[t - \mathrm{round}(d_{oi})]` (:func:`~lightning_snn.layers.integer_delay.integer_delay_linear`:
event by event for sparse input on a CPU, else one matmul per distinct delay).

Backends for training: ``"fft"`` (ours, the same values computed in the frequency domain, faster, see
``benchmarks/delay_speed.py``: on the CPU with Numba
:func:`~lightning_snn.layers.delay_spectral.gaussian_delay_spectral`, elsewhere
:func:`~lightning_snn.layers.delay_fft.gaussian_delay_fft`, equal to float rounding) and ``"dcls"`` (the
reference: the kernel built by DCLS's own ``ConstructKernel1d``, the module inside ``Dcls1d``, applied with
``conv1d``, as ``Dcls1d`` does).
The layer owns its parameters whatever the backend: ``weight`` ``(O, I)`` and ``delay_position``
``(O, I)``, declared with the roles ``"weight"`` and ``"delay"``, and the buffer ``sigma`` declared
``"sigma"`` (:mod:`lightning_snn.roles`), so optimisers, :class:`~lightning_snn.callbacks.Rewiring` and
:class:`~lightning_snn.callbacks.DelaySigmaSchedule` need nothing specific to this layer. Checkpoints
of version 0.1, which kept the weight in ``dcls.weight`` ``(O, I, 1)``, load (the key is migrated).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.functional.clamp import InwardClamp
from lightning_snn.layers import delay_spectral
from lightning_snn.layers.delay_fft import gaussian_delay_fft
from lightning_snn.layers.integer_delay import IntegerDelayLinear, integer_delay_linear

BACKENDS = ("fft", "dcls")


def dcls_kernel(weight: torch.Tensor, delay: torch.Tensor, sigma: torch.Tensor, max_delay: int) -> torch.Tensor:
    """DCLS's Gaussian kernel ``(O, I, D)`` in tap order (``kernel[..., k]`` multiplies ``x[t - (D-1-k)]``).

    Built by ``DCLS.construct.modules.ConstructKernel1d(version="gauss")``, the kernel module of ``Dcls1d``,
    with DCLS's position convention: tap ``P + D//2`` is the centre, so ``P = D - 1 - d - D//2``.
    """
    try:
        from DCLS.construct.modules import ConstructKernel1d
    except ImportError as err:  # pragma: no cover - dcls is a runtime dependency
        raise ImportError("DelayedLinear(backend='dcls') needs the DCLS package: pip install dcls") from err
    out_features, in_features = weight.shape
    construct = ConstructKernel1d(out_features, in_features, 1, 1, (max_delay,), "gauss")
    positions = (max_delay - 1 - delay - max_delay // 2)[None, :, :, None]
    return construct(weight[..., None], positions, sigma.expand_as(positions))


def check_sigma(value: object) -> float:
    """σ as a float: a finite number >= 0 (a NaN σ would make the FFT path output exactly 0)."""
    sigma = validation.check_finite_number(value, "sigma", "DelayedLinear")
    if sigma < 0:
        raise ValueError(f"DelayedLinear: sigma must be a finite number >= 0, got {sigma}.")
    return sigma


class DelayedLinear(nn.Module):
    """Dense synapses with learnable delays (see the module docstring)."""

    parameter_roles = {"weight": "weight", "delay_position": "delay", "sigma": "sigma"}

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        sigma: float | None = None,
        backend: str = "fft",
        integer_eval: bool = True,
    ) -> None:
        super().__init__()
        in_features = validation.check_int(in_features, "in_features", "DelayedLinear")
        out_features = validation.check_int(out_features, "out_features", "DelayedLinear")
        if isinstance(max_delay, bool) or not isinstance(max_delay, int) or max_delay < 1:
            raise ValueError(
                f"DelayedLinear: max_delay must be an integer >= 1 (the number of delay taps; 1 = no delay), "
                f"got {max_delay!r}."
            )
        if backend not in BACKENDS:
            raise ValueError(f"DelayedLinear: unknown backend {backend!r}; expected one of {BACKENDS}.")
        sigma = max_delay / 2 if sigma is None else check_sigma(sigma)
        self.in_features, self.out_features, self.max_delay = in_features, out_features, max_delay
        self.backend, self.integer_eval = backend, integer_eval
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # Dcls1d's (and nn.Linear's) initialisation
        # Version 0.1 built a Dcls1d here, whose initialisation also drew DCLS's positions; drawing the
        # same numbers keeps every seed's initial network (and the published results) as they were.
        torch.empty(out_features, in_features, 1).normal_(0, 0.5)
        self.delay_position = nn.Parameter(torch.rand(out_features, in_features) * (max_delay - 1))
        self.register_buffer("sigma", torch.tensor(sigma))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        old = f"{prefix}dcls.weight"  # version 0.1 layout: the weight inside a Dcls1d, shape (O, I, 1)
        if old in state_dict and f"{prefix}weight" not in state_dict:
            state_dict[f"{prefix}weight"] = state_dict.pop(old)[..., 0]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def delay(self) -> torch.Tensor:
        """Constrained delay positions ``(out, in)`` in ``[0, max_delay - 1]`` (see :class:`InwardClamp`)."""
        return InwardClamp.apply(self.delay_position, 0.0, self.max_delay - 1.0)

    def set_sigma(self, value: float) -> None:
        """Set the kernel width σ (a finite number >= 0)."""
        self.sigma.fill_(check_sigma(value))

    def forward(self, x: torch.Tensor, integer: bool | None = None) -> torch.Tensor:
        """``(T, B, in)`` → ``(T, B, out)``; ``integer`` overrides the eval-mode integer-delay switch."""
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state, integer))
        return self._forward(x, integer)

    def initial_state(self, batch: int, dtype: torch.dtype | None = None, device=None) -> stream.DelayState:
        """From rest: ``max_delay - 1`` zero inputs ``(max_delay - 1, B, in)``."""
        shape = (self.max_delay - 1, batch, self.in_features)
        return stream.DelayState(torch.zeros(shape, dtype=dtype or self.weight.dtype, device=device))

    def forward_with_state(
        self, x: torch.Tensor, state: stream.DelayState | None = None, integer: bool | None = None
    ) -> tuple[torch.Tensor, stream.DelayState]:
        """``(y (T, B, out), DelayState)``: the chunk preceded by the last ``max_delay - 1`` inputs of the
        previous one (zeros from rest). Both paths (integer and Gaussian) have a kernel of ``max_delay``
        taps, so this equals one pass over the whole sequence (up to the FFT's rounding for the Gaussian
        path), and gradients flow into the carried inputs."""
        validation.check_layer_input(x, self.in_features, type(self).__name__)
        x = validation.match_dtype(x, self.weight.dtype)
        length = self.max_delay - 1
        window = stream.history_window(None if state is None else state.history, x, length)
        return self._forward(window, integer)[length:], stream.DelayState(stream.last_inputs(window, length))

    def _forward(self, x: torch.Tensor, integer: bool | None) -> torch.Tensor:
        validation.check_layer_input(x, self.in_features, type(self).__name__)
        x = validation.match_dtype(x, self.weight.dtype)
        use_integer = (not self.training and self.integer_eval) if integer is None else integer
        if use_integer:
            return integer_delay_linear(x, self.weight, self.delay().detach().round().long())
        if self.backend == "dcls":
            return self._dcls_forward(x)
        if delay_spectral.available(x) and delay_spectral.available(self.weight):
            return delay_spectral.gaussian_delay_spectral(x, self.weight, self.delay(), self.sigma, self.max_delay)
        return gaussian_delay_fft(x, self.weight, self.delay(), self.sigma, self.max_delay)

    def _dcls_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reference path: DCLS's kernel and ``conv1d`` on the input left-padded with D-1 zeros."""
        kernel = dcls_kernel(self.weight, self.delay(), self.sigma, self.max_delay)
        xb = F.pad(x.permute(1, 2, 0), (self.max_delay - 1, 0))
        return F.conv1d(xb, kernel).permute(2, 0, 1)

    def to_integer_delays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight[out, in], delay[out, in] as int64)``: rounded positions, the σ → 0 limit."""
        return self.weight.detach().clone(), self.delay().detach().round().long()

    def to_integer_layer(self) -> IntegerDelayLinear:
        """An :class:`IntegerDelayLinear` computing what this layer computes in eval mode."""
        weight, delay = self.to_integer_delays()
        return IntegerDelayLinear(weight, delay, self.max_delay)

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """Delays (vector), fraction at the bounds 0 or D-1, and σ, for ``TemporalStatsLogger``."""
        p = self.delay_position.detach()
        at_bounds = ((p <= 0) | (p >= self.max_delay - 1)).float().mean()
        return {
            "delay": self.delay().detach().flatten(),
            "delay_at_bounds": at_bounds,
            "delay_sigma": self.sigma.clone(),
        }

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, "
            f"backend={self.backend}, integer_eval={self.integer_eval}"
        )
