r"""``HSNNReadout``: the leaky-integrator output layer of the hSNN code (Moro et al. 2024, paper A).

For the output synapse's current :math:`I` ``(T, B, N)``, as ``li_step`` and the normalisation of
``EIS-Hub/hSNN`` (``models.py:97-107``, ``training.py:76-80``, ``utils_normalization.py:122-143``):

.. math::
    \hat I = \gamma \frac{I - \mu_{B,T}}{\sqrt{\sigma^2_{B,T} + 10^{-5}}} + b, \qquad
    V[t] = \alpha V[t-1] + (1 - \alpha)\,\hat I[t], \qquad \alpha = e^{-dt/\tau_{out}}

The batch norm always uses the statistics of the current batch over its ``T·B`` rows, in training and in
evaluation, as theirs does (no running averages). :math:`\alpha` is fixed (their output α gets no update,
``training.py:236``). The output is the membrane ``(T, B, N)``, the network's readout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_snn import validation


class HSNNReadout(nn.Module):
    """Batch-normed leaky integrator with a frozen decay (see the module docstring)."""

    def __init__(self, n_neurons: int, tau: float = 5.0, dt: float = 1.0, batch_norm: bool = True) -> None:
        super().__init__()
        where = type(self).__name__
        self.n_neurons = validation.check_int(n_neurons, "n_neurons", where)
        for name, value in (("tau", tau), ("dt", dt)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}.")
        self.register_buffer("alpha", torch.tensor(math.exp(-dt / tau)))
        self.norm = nn.BatchNorm1d(self.n_neurons, eps=1e-5, track_running_stats=False) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output membrane ``(T, B, N)`` for the current ``x`` ``(T, B, N)``, from rest."""
        validation.check_layer_input(x, self.n_neurons, type(self).__name__)
        if self.norm is not None:
            x = self.norm(x.flatten(0, 1)).view_as(x)
        alpha = self.alpha.to(x.dtype)
        v = torch.zeros_like(x[0])
        out = []
        for x_t in x.unbind(0):
            v = alpha * v + (1 - alpha) * x_t
            out.append(v)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, alpha={self.alpha.item():.4f}, batch_norm={self.norm is not None}"
