r"""``LaggedLIF`` and ``LaggedLeakyReadout``: the neurons of Mészáros, Knight & Nowotny 2024, exactly as
their code updates them (``mbalazs98/spatiotemporal`` layers.py:257-299).

Their LIF keeps the input of step :math:`t` in a synaptic variable that reaches the membrane one step
later, and compares the membrane with the threshold *before* updating it, so a spike appears two steps
after the input that caused it. For time-major input :math:`X` ``(T, B, N)``, from
:math:`V[0] = I[0] = 0`,

.. math::
    S[t] = \Theta(V[t] - \theta), \qquad
    V[t+1] = \big(\beta V[t] + I[t]\big)\,\big(1 - \mathrm{sg}(S[t])\big), \qquad I[t+1] = X[t],

with :math:`\beta = 1 - 1/\tau` (``LIF(tau=10.05)`` gives :math:`\beta \approx 0.90`, about 10 steps of
memory), :math:`\Theta(u) = [u > 0]` (strict) with the ATan surrogate gradient of slope α = 5, the reset
to 0 detached (``detach_reset=True``; ``False`` keeps the gradient through it), and no :math:`(1-\beta)`
factor on the input. The reset also drops the synaptic input that arrives at the spike step.

Their leaky-integrator readout (``LI``) has the one-step synaptic lag but no threshold:
:math:`V[t] = \beta V[t-1] + X[t-1]`, :math:`V[-1] = X[-1] = 0`; the recorded membrane is the output.

β comes from :class:`~lightning_snn.neurons.time_constant.TimeConstant` (PLIF form, :math:`\beta = 1 - dt/\tau`),
fixed by default as in the authors' code (``learn_tau=True`` learns it, with the role ``"tau"``).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.call_statistics import spike_rate
from lightning_snn.functional.surrogates import Surrogate
from lightning_snn.neurons.time_constant import TauInit, TimeConstant


def refuse_streaming(module: nn.Module) -> None:
    """Raise inside :meth:`~lightning_snn.models.network.Network.forward_with_state`: no state is carried here."""
    if stream.active() is not None:
        raise NotImplementedError(
            f"{type(module).__name__} does not carry its membrane and synaptic state between chunks, so streaming "
            "and truncated BPTT (Network.forward_with_state, tbptt_steps) would restart it from rest; train on "
            "whole sequences (tbptt_steps=None)."
        )


def lagged_lif(
    x: torch.Tensor, beta: torch.Tensor, threshold: float, surrogate: Surrogate, detach_reset: bool = True
) -> torch.Tensor:
    """Spikes ``(T, B, N)`` of the two-step-lag LIF for input ``x`` ``(T, B, N)`` (see the module docstring)."""
    mem = torch.zeros_like(x[0])
    syn = torch.zeros_like(x[0])
    spikes = []
    for x_t in x.unbind(0):
        out = surrogate.strict(mem - threshold)
        reset = out.detach() if detach_reset else out
        mem = (beta * mem + syn) * (1.0 - reset)
        syn = x_t
        spikes.append(out)
    return torch.stack(spikes)


def lagged_leaky_integrate(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Membrane ``(T, B, N)`` of the one-step-lag leaky integrator: ``V[t] = βV[t-1] + X[t-1]``."""
    shifted = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    mem = torch.zeros_like(x[0])
    out = []
    for x_t in shifted.unbind(0):
        mem = beta * mem + x_t
        out.append(mem)
    return torch.stack(out)


class LaggedLIF(nn.Module):
    """The LIF of Mészáros et al. 2024: spike two steps after its input (see the module docstring).

    :param n_neurons: layer width.
    :param tau: membrane time constant in steps (of ``dt``); β = 1 − dt/τ. The authors use 10.05.
    :param learn_tau: learn τ (the authors keep it fixed).
    :param threshold: θ (the authors' ``v_threshold = 1.0``).
    :param detach_reset: no gradient through the reset (the authors' ``detach_reset = True``).
    :param surrogate: surrogate-gradient name of :mod:`lightning_snn.functional.surrogates`.
    :param surrogate_alpha: its α (the authors' ATan uses 5).
    :param dt: the step, in the units of τ.
    :param tau_min: lower bound of τ (default 1.01·dt, see :class:`~lightning_snn.neurons.time_constant.TimeConstant`).
    """

    def __init__(
        self,
        n_neurons: int,
        tau: TauInit = 10.05,
        learn_tau: bool = False,
        threshold: float = 1.0,
        detach_reset: bool = True,
        surrogate: str = "atan",
        surrogate_alpha: float | None = 5.0,
        dt: float = 1.0,
        tau_min: float | None = None,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.n_neurons = validation.check_int(n_neurons, "n_neurons", where)
        threshold = validation.check_finite_number(threshold, "threshold", where)
        if not threshold > 0:
            raise ValueError(f"{where}: threshold must be > 0 (the rest potential is 0), got threshold={threshold}.")
        self.threshold, self.detach_reset = float(threshold), bool(detach_reset)
        self.surrogate = Surrogate(surrogate, surrogate_alpha)
        self.tau = TimeConstant(n_neurons, tau, learn_tau, False, "plif", dt, tau_min)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``(T, B, N)`` for input current ``x`` ``(T, B, N)``."""
        refuse_streaming(self)
        validation.check_layer_input(x, self.n_neurons, type(self).__name__)
        return lagged_lif(x, self.tau.decay().to(x.dtype), self.threshold, self.surrogate, self.detach_reset)

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """τ, for :class:`~lightning_snn.callbacks.TemporalStatsLogger`."""
        return {"tau": self.tau.value.flatten()}

    call_statistics = staticmethod(spike_rate)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, threshold={self.threshold}, detach_reset={self.detach_reset}, lag=2 steps"


class LaggedLeakyReadout(nn.Module):
    """The leaky-integrator readout of Mészáros et al. 2024 (``LI``): ``V[t] = βV[t-1] + X[t-1]``, β = 1 − dt/τ."""

    def __init__(
        self,
        n_neurons: int,
        tau: TauInit = 10.05,
        learn_tau: bool = False,
        dt: float = 1.0,
        tau_min: float | None = None,
    ) -> None:
        super().__init__()
        self.n_neurons = validation.check_int(n_neurons, "n_neurons", type(self).__name__)
        self.tau = TimeConstant(n_neurons, tau, learn_tau, False, "plif", dt, tau_min)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``(T, B, N)`` for input ``x`` ``(T, B, N)``."""
        refuse_streaming(self)
        validation.check_layer_input(x, self.n_neurons, type(self).__name__)
        return lagged_leaky_integrate(x, self.tau.decay().to(x.dtype))

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        return {"tau": self.tau.value.flatten()}
