r"""Leaky integrate-and-fire dynamics over a whole sequence (pure functions, time-major).

For every step t (SpikingJelly's charge / fire / reset order, PLIF equation of Fang et al. 2021):

.. math::
    H[t] &= V_r + \beta\,(V[t-1] - V_r) + c\,X[t], \qquad c = 1-\beta \text{ if decay\_input else } 1 \\
    S[t] &= \Theta(H[t] - \theta) \\
    V[t] &= \begin{cases} H[t] - \theta\,\hat S[t] & \text{soft reset} \\
                          H[t]\,(1-\hat S[t]) + V_r\,\hat S[t] & \text{hard reset}\end{cases}

with :math:`V[-1] = V_r` (or :math:`V_r + v_0` for a given initial state ``v0``, when streaming),
:math:`V_r` = ``v_reset`` for the hard reset and 0 for the soft one, and
:math:`\hat S = \mathrm{sg}(S)` when ``detach_reset`` (Yang 2020 discusses keeping the path), else S.
β has shape ``()`` (one τ per layer) or ``(N,)`` (one per neuron); θ likewise.

``lif_reference`` is the plain-autograd loop every faster path is tested against.

**Non-finite values.** Every path (``lif_reference``, the fused PyTorch loop that CUDA runs, the
compiled CPU kernel) follows one rule, without a host sync: :math:`S[t] = \Theta(u) + 0 \cdot u` with
:math:`u = H[t] - \theta`, so a spike is NaN wherever :math:`u` is NaN or ±inf. A NaN or ±inf input, a
NaN τ (β) or a non-finite θ therefore makes the affected neurons' spikes NaN from that step on (the
reset carries the NaN into V), never a silent 0 or 1: the loss becomes NaN and
:class:`~lightning_snn.callbacks.NonFiniteGuard` stops the run. Gradients of such outputs are NaN or
meaningless. In the debug mode :func:`lightning_snn.validation.nan_checks`,
:class:`~lightning_snn.neurons.lif.LearnableLIF` raises a ``ValueError`` naming itself instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lightning_snn.functional.surrogates import Surrogate


class LIFConfig(NamedTuple):
    """Static (non-tensor) settings of the LIF dynamics."""

    reset: str = "hard"  # "hard" | "soft"
    v_reset: float = 0.0
    decay_input: bool = True
    detach_reset: bool = True
    surrogate: Surrogate = Surrogate("atan")


RESETS = ("hard", "soft")


def lif_step(
    x: torch.Tensor,
    v: torch.Tensor,
    decay: torch.Tensor,
    threshold: torch.Tensor,
    cfg: LIFConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``(x[t], V[t-1]) -> (S[t], V[t])``."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    drive = (1.0 - decay) * x if cfg.decay_input else x
    h = rest + decay * (v - rest) + drive
    s = cfg.surrogate(h - threshold)
    s_reset = s.detach() if cfg.detach_reset else s
    if cfg.reset == "soft":
        v = h - threshold * s_reset
    else:
        v = h * (1.0 - s_reset) + rest * s_reset
    return s, v


def lif_reference(
    x: torch.Tensor,
    decay: torch.Tensor,
    threshold: torch.Tensor,
    cfg: LIFConfig = LIFConfig(),
    return_membrane: bool = False,
    v0: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Run the LIF over ``x`` of shape ``(T, B, N)``; return spikes (and V after reset) ``(T, B, N)``.

    ``v0`` ``(B, N)`` is the initial membrane relative to rest, :math:`V[-1] - V_r` (``None``: at rest)."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    v = torch.full_like(x[0], rest) if v0 is None else v0 + rest
    spikes, membrane = [], []
    for x_t in x.unbind(0):  # unbind, not x[t]: indexing a grad-requiring tensor makes backward O(T^2)
        s, v = lif_step(x_t, v, decay, threshold, cfg)
        spikes.append(s)
        membrane.append(v)
    if return_membrane:
        return torch.stack(spikes), torch.stack(membrane)
    return torch.stack(spikes)


def leaky_integrate(
    x: torch.Tensor, decay: torch.Tensor, decay_input: bool = True, v0: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Non-spiking leaky integrator readout: :math:`V[t] = \beta V[t-1] + c X[t]`, ``(T, B, N)``, from
    :math:`V[-1] = 0` or ``v0`` ``(B, N)``."""
    drive = (1.0 - decay) * x if decay_input else x
    v = torch.zeros_like(x[0]) if v0 is None else v0
    out = []
    for d_t in drive.unbind(0):
        v = decay * v + d_t
        out.append(v)
    return torch.stack(out)
