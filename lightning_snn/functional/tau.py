r"""Membrane time-constant parametrisations (pure functions).

A neuron stores an unconstrained raw parameter and derives its decay :math:`\beta` (the factor that
multiplies the membrane each step) from it, so τ can never leave its bounds whatever the optimiser does.

``"plif"`` (Fang et al. 2021):
    :math:`k = \mathrm{clamp}(\sigma(w), dt/\tau_{max}, dt/\tau_{min})`, :math:`\tau = dt/k`,
    :math:`\beta = 1 - k`, with :math:`w_0 = -\ln(\tau_0/dt - 1)`.
``"log"`` (Moro et al. 2024):
    raw :math:`r = \ln\tau`, :math:`\beta = \alpha = \mathrm{clamp}(e^{-dt/\tau}, \alpha_{min}, \alpha_{max})`,
    with :math:`[\alpha_{min}, \alpha_{max}] = [e^{-dt/\tau_{min}}, e^{-dt/\tau_{max}}]`.

The clamps are :class:`~lightning_snn.functional.clamp.InwardClamp`: a τ pushed past a bound keeps
the gradient that would bring it back, so it never sticks there. Both accept a scalar (one τ per
layer) or a vector (one τ per neuron). With :math:`\tau_{min} > dt`
for PLIF and :math:`0 < \tau_{min} < \tau_{max} < \infty` for the log form, β stays strictly inside (0, 1).
"""

from __future__ import annotations

import math

import torch

from lightning_snn.functional.clamp import inward_clamp

PARAMETRISATIONS = ("plif", "log")


def check_tau_bounds(parametrisation: str, dt: float, tau_min: float, tau_max: float) -> None:
    """Raise ``ValueError`` unless the bounds keep β strictly inside (0, 1)."""
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(f"Unknown tau parametrisation {parametrisation!r}; expected one of {PARAMETRISATIONS}.")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}.")
    if parametrisation == "plif" and not tau_min > dt:
        raise ValueError(f"PLIF needs tau_min > dt (k = dt/tau < 1), got tau_min={tau_min}, dt={dt}.")
    if not 0 < tau_min < tau_max < math.inf:
        raise ValueError(f"Need 0 < tau_min < tau_max < inf, got tau_min={tau_min}, tau_max={tau_max}.")


def raw_from_tau(tau: torch.Tensor, parametrisation: str, dt: float = 1.0) -> torch.Tensor:
    """Invert the parametrisation at initialisation: the raw parameter that gives ``tau``."""
    tau = torch.as_tensor(tau, dtype=torch.get_default_dtype())
    if parametrisation == "plif":
        if (tau <= dt).any():
            raise ValueError(f"PLIF needs tau0 > dt (tau0/dt - 1 > 0), got tau0={tau.tolist()}, dt={dt}.")
        return -torch.log(tau / dt - 1.0)
    if parametrisation == "log":
        if (tau <= 0).any():
            raise ValueError(f"tau must be > 0, got {tau.tolist()}.")
        return torch.log(tau)
    raise ValueError(f"Unknown tau parametrisation {parametrisation!r}; expected one of {PARAMETRISATIONS}.")


def decay_from_raw(raw: torch.Tensor, parametrisation: str, dt: float, tau_min: float, tau_max: float) -> torch.Tensor:
    """The per-step membrane decay β ∈ (0, 1), differentiable in ``raw`` inside the bounds."""
    if parametrisation == "plif":
        k = inward_clamp(torch.sigmoid(raw), dt / tau_max, dt / tau_min)
        return 1.0 - k
    if parametrisation == "log":
        # The raw value is brought inside [ln τ_min, ln τ_max] first (with the inward gradient), then
        # α = exp(-dt·e^{-r}): far outside the bounds, exp(-dt/e^r)'s gradient is 0·inf = NaN (r < -45
        # or r > 88 in float32); at the bound it is finite. A NaN raw stays NaN (clamp keeps it).
        r = inward_clamp(raw, math.log(tau_min), math.log(tau_max))
        alpha = torch.exp(-dt * torch.exp(-r))
        return inward_clamp(alpha, math.exp(-dt / tau_min), math.exp(-dt / tau_max))
    raise ValueError(f"Unknown tau parametrisation {parametrisation!r}; expected one of {PARAMETRISATIONS}.")


def tau_from_decay(decay: torch.Tensor, dt: float, parametrisation: str) -> torch.Tensor:
    """τ implied by a decay: ``dt / (1 - β)`` for PLIF, ``-dt / ln β`` for the log form."""
    if parametrisation == "plif":
        return dt / (1.0 - decay)
    return -dt / torch.log(decay)
