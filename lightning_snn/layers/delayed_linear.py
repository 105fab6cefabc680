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
delay ``D-1-k``. σ is not learned: it is a buffer that :class:`~lightning_snn.callbacks.delay_sigma.
DelaySigmaSchedule` decays from ``D/2`` to 0.23 (Mészáros et al. 2024). In eval mode (or with
``integer=True``) positions are rounded and σ → 0, so each synapse delivers
:math:`w_{oi} x_i[t - \mathrm{round}(d_{oi})]` (:func:`~lightning_snn.layers.integer_delay.integer_delay_linear`).

Backends for training: ``"fft"`` (ours, the same values computed by FFT convolution, faster; see
``benchmarks/delay_speed.py``) and ``"dcls"`` (the upstream ``Dcls1d`` kernel and ``conv1d``, the reference).
The weight always lives in ``self.dcls.weight`` ``(O, I, 1)``; positions in ``self.delay_position``
``(O, I)`` so the optimiser puts them in its delay group.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_snn.functional.clamp import InwardClamp
from lightning_snn.layers.delay_fft import gaussian_delay_fft
from lightning_snn.layers.integer_delay import IntegerDelayLinear, integer_delay_linear
from lightning_snn.neurons.lif import check_time_major

BACKENDS = ("fft", "dcls")


def _dcls1d(in_features: int, out_features: int, max_delay: int) -> nn.Module:
    try:
        from DCLS.construct.modules import Dcls1d
    except ImportError as err:  # pragma: no cover - dcls is a runtime dependency
        raise ImportError("DelayedLinear needs the DCLS package: pip install dcls") from err
    return Dcls1d(in_features, out_features, kernel_count=1, dilated_kernel_size=max_delay, version="gauss", bias=False)


class DelayedLinear(nn.Module):
    """Dense synapses with learnable delays (see the module docstring)."""

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
        if in_features < 1 or out_features < 1:
            raise ValueError(f"DelayedLinear needs in_features, out_features >= 1; got {in_features}, {out_features}.")
        if not isinstance(max_delay, int) or max_delay < 1:
            raise ValueError(
                f"DelayedLinear: max_delay must be an integer >= 1 (the number of delay taps; 1 = no delay), "
                f"got {max_delay!r}."
            )
        if backend not in BACKENDS:
            raise ValueError(f"DelayedLinear: unknown backend {backend!r}; expected one of {BACKENDS}.")
        sigma = max_delay / 2 if sigma is None else float(sigma)
        if sigma < 0:
            raise ValueError(f"DelayedLinear: sigma must be >= 0, got {sigma}.")
        self.in_features, self.out_features, self.max_delay = in_features, out_features, max_delay
        self.backend, self.integer_eval = backend, integer_eval
        self.dcls = _dcls1d(in_features, out_features, max_delay)
        # DCLS's own positions and widths are replaced by ours (see _dcls_forward): drop its parameters.
        del self.dcls.P, self.dcls.SIG
        self.dcls.P = self.dcls.SIG = None
        self.delay_position = nn.Parameter(torch.rand(out_features, in_features) * (max_delay - 1))
        self.register_buffer("sigma", torch.tensor(sigma))

    @property
    def weight(self) -> torch.Tensor:
        """``(out, in)`` view of ``self.dcls.weight``."""
        return self.dcls.weight[..., 0]

    def delay(self) -> torch.Tensor:
        """Constrained delay positions ``(out, in)`` in ``[0, max_delay - 1]`` (see :class:`InwardClamp`)."""
        return InwardClamp.apply(self.delay_position, 0.0, self.max_delay - 1.0)

    def set_sigma(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"DelayedLinear: sigma must be >= 0, got {value}.")
        self.sigma.fill_(float(value))

    def forward(self, x: torch.Tensor, integer: bool | None = None) -> torch.Tensor:
        """``(T, B, in)`` → ``(T, B, out)``; ``integer`` overrides the eval-mode integer-delay switch."""
        check_time_major(x, self.in_features, type(self).__name__)
        use_integer = (not self.training and self.integer_eval) if integer is None else integer
        if use_integer:
            return integer_delay_linear(x, self.weight, self.delay().detach().round().long())
        if self.backend == "dcls":
            return self._dcls_forward(x)
        return gaussian_delay_fft(x, self.weight, self.delay(), self.sigma, self.max_delay)

    def _dcls_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reference path: the upstream ``Dcls1d`` kernel on the input left-padded with D-1 zeros."""
        d = self.max_delay
        positions = (d - 1 - self.delay() - d // 2)[None, :, :, None]  # DCLS centre: tap P + D//2
        sig = self.sigma.expand_as(positions)
        xb = F.pad(x.permute(1, 2, 0), (d - 1, 0))
        return self.dcls._conv_forward(xb, self.dcls.weight, None, positions, sig).permute(2, 0, 1)

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
