r"""``TimeConstant``: a learnable (or fixed) membrane time constant, per layer or per neuron.

Holds the unconstrained raw parameter of :mod:`lightning_snn.functional.tau` and returns the decay
:math:`\beta(\text{raw}) \in (0, 1)`: PLIF's :math:`\beta = 1 - \sigma(w)` (Fang et al. 2021) or the
log form :math:`\beta = \mathrm{clamp}(e^{-dt/\tau}, \alpha_{min}, \alpha_{max})` (Moro et al. 2024).
The raw parameter is declared with the role ``"tau"`` (:mod:`lightning_snn.roles`), so optimisers give
it the τ learning rate whatever the attribute that holds the ``TimeConstant`` is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lightning_snn.functional.tau import check_tau_bounds, decay_from_raw, raw_from_tau, tau_from_decay

#: Default bounds in units of dt. The log form's bounds are paper A's decay clip, α ∈ [0.1, 0.99]. PLIF's lower
#: bound 1.01 keeps β ≥ 0.0099; ``tau_min`` lowers it (any value > dt), e.g. to 1.001 for DCLS's τ = 1.005 steps.
DEFAULT_BOUNDS = {"plif": (1.01, 1e4), "log": (1 / math.log(10.0), 1 / -math.log(0.99))}

TauInit = float | Sequence[float] | torch.Tensor


class TimeConstant(nn.Module):
    """τ per layer (``per_neuron=False``, a scalar) or per neuron (a vector of ``n_neurons``)."""

    parameter_roles = {"raw": "tau"}

    def __init__(
        self,
        n_neurons: int,
        tau: TauInit = 2.0,
        learn: bool = True,
        per_neuron: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        tau_min: float | None = None,
        tau_max: float | None = None,
    ) -> None:
        super().__init__()
        if parametrisation not in DEFAULT_BOUNDS:
            raise ValueError(
                f"Unknown tau parametrisation {parametrisation!r}; expected one of {sorted(DEFAULT_BOUNDS)}."
            )
        lo, hi = DEFAULT_BOUNDS[parametrisation]
        self.parametrisation, self.dt = parametrisation, float(dt)
        self.tau_min = float(tau_min) if tau_min is not None else lo * dt
        self.tau_max = float(tau_max) if tau_max is not None else hi * dt
        check_tau_bounds(parametrisation, self.dt, self.tau_min, self.tau_max)
        init = torch.as_tensor(tau, dtype=torch.get_default_dtype()).detach().clone()
        if init.dim() > 1 or (init.dim() == 1 and init.numel() not in (1, n_neurons)):
            raise ValueError(
                f"tau must be a scalar or a vector of n_neurons={n_neurons} values, got shape {tuple(init.shape)}."
            )
        if init.dim() == 1 and init.numel() == n_neurons and n_neurons > 1:
            per_neuron = True
        init = init.reshape(()) if init.numel() == 1 else init
        if per_neuron and init.dim() == 0:
            init = init.expand(n_neurons).clone()
        if not ((init > self.tau_min) & (init < self.tau_max)).all():
            raise ValueError(
                f"Initial tau {init.tolist()} must lie strictly inside (tau_min, tau_max) = "
                f"({self.tau_min:.4g}, {self.tau_max:.4g}) for the {parametrisation!r} form with dt={dt}. "
                "Move tau inside, or pass tau_min / tau_max (e.g. tau_min=1.001 admits DCLS's τ = 1.005 steps, "
                "β ≈ 0.005; in a network: neuron: {tau_min: 1.001})."
            )
        raw = raw_from_tau(init, parametrisation, self.dt)
        if learn:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)
        self.n_neurons, self.per_neuron, self.learn = n_neurons, per_neuron, learn

    def decay(self) -> torch.Tensor:
        """β, shape ``()`` or ``(n_neurons,)``, differentiable in ``raw``."""
        return decay_from_raw(self.raw, self.parametrisation, self.dt, self.tau_min, self.tau_max)

    def forward(self) -> torch.Tensor:
        return self.decay()

    @property
    def value(self) -> torch.Tensor:
        """The current τ (detached), in the units of ``dt``."""
        with torch.no_grad():
            return tau_from_decay(self.decay(), self.dt, self.parametrisation)

    def extra_repr(self) -> str:
        t = self.value
        shown = f"{t.item():.4g}" if t.dim() == 0 else f"mean {t.mean().item():.4g} over {t.numel()}"
        return f"tau={shown}, {self.parametrisation}, learn={self.learn}, dt={self.dt}"
