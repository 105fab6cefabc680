r"""``FeedForwardSNN``: Linear → LIF layers with a leaky-integrator or spike-count readout.

For hidden layer :math:`l`: :math:`I^l = W^l S^{l-1} + b^l` (one matmul over all ``T·B`` rows, hoisted
out of the time loop), :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)`. The readout is either the membrane
of a non-spiking leaky integrator :math:`V^o[t] = \beta_o V^o[t-1] + W^o S^L[t]` (``"membrane"``,
Moro et al. 2024) or the output spikes of a last LIF layer (``"spikes"``, PLIF). The initial τ of
the hidden layers comes from a number, one number per layer, or a hierarchical
:class:`~lightning_snn.schedules.TauSchedule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_snn.models.network import Network
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF, check_time_major
from lightning_snn.schedules import TauSchedule

READOUTS = ("membrane", "spikes")
TauSpec = float | Sequence[float] | TauSchedule | dict


def resolve_layer_taus(tau: TauSpec, widths: Sequence[int]) -> list[Any]:
    """One initial τ (scalar or per-neuron vector) per hidden layer."""
    if isinstance(tau, dict):
        tau = TauSchedule(**tau)
    if isinstance(tau, TauSchedule):
        return tau.resolve(widths)
    if isinstance(tau, (int, float)):
        return [float(tau)] * len(widths)
    tau = list(tau)
    if len(tau) != len(widths):
        raise ValueError(
            f"tau has {len(tau)} entries but there are {len(widths)} hidden layers {list(widths)}; "
            "give one τ per hidden layer, a single number, or a TauSchedule."
        )
    return tau


class SynapseBlock(nn.Module):
    """A time-major synapse layer ``(T, B, n_in) -> (T, B, n_out)`` (Linear, DelayedLinear,
    CausalConv1d), then optional BatchNorm over the ``T·B`` rows, then dropout."""

    def __init__(self, synapse: nn.Module, n_out: int, batch_norm: bool, dropout: float) -> None:
        super().__init__()
        self.synapse = synapse
        self.norm = nn.BatchNorm1d(n_out) if batch_norm else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.synapse(x)
        if self.norm is not None:
            y = self.norm(y.flatten(0, 1)).view_as(y)
        return self.dropout(y) if self.dropout is not None else y


def check_layer_sizes(where: str, n_inputs: int, hidden: list[int], n_outputs: int, dropout: float) -> None:
    """Raise ``ValueError`` for empty layers or a dropout outside [0, 1)."""
    if n_inputs < 1 or n_outputs < 1 or not hidden or min(hidden) < 1:
        raise ValueError(
            f"{where} needs n_inputs >= 1, n_outputs >= 1 and at least one hidden layer of width >= 1; "
            f"got n_inputs={n_inputs}, hidden={hidden}, n_outputs={n_outputs}."
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {dropout}.")


class StackedSNN(Network):
    """Base of the feed-forward networks: ``synapses[l]`` → ``neurons[l]`` per hidden layer, then
    ``output_synapse`` → ``output``. Subclasses build those four attributes and ``n_inputs``."""

    def hidden_neurons(self, hidden: list[int], tau: TauSpec, **neuron: Any) -> nn.ModuleList:
        """One :class:`LearnableLIF` per hidden layer, initial τ from ``tau`` (number, list or schedule)."""
        return nn.ModuleList(LearnableLIF(w, tau=t, **neuron) for w, t in zip(hidden, resolve_layer_taus(tau, hidden)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_inputs)`` → output membrane (or spikes) ``(T, B, n_outputs)``."""
        check_time_major(x, self.n_inputs, type(self).__name__)
        for synapse, neuron in zip(self.synapses, self.neurons):
            x = neuron(synapse(x))
        return self.output(self.output_synapse(x))


class FeedForwardSNN(StackedSNN):
    """Feed-forward SNN (see the module docstring)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        tau: TauSpec = 2.0,
        learn_tau: bool = True,
        per_neuron: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        readout: str = "membrane",
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
        neuron: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        check_layer_sizes(type(self).__name__, n_inputs, hidden, n_outputs, dropout)
        if readout not in READOUTS:
            raise ValueError(f"Unknown readout {readout!r}; expected one of {READOUTS}.")
        self.n_inputs, self.n_outputs, self.readout = n_inputs, n_outputs, readout
        neuron = dict(neuron or {})
        common = dict(learn_tau=learn_tau, per_neuron=per_neuron, parametrisation=parametrisation, dt=dt)
        widths = [n_inputs, *hidden]
        self.synapses = nn.ModuleList(
            SynapseBlock(nn.Linear(a, b), b, batch_norm, dropout) for a, b in zip(widths[:-1], widths[1:])
        )
        self.neurons = self.hidden_neurons(hidden, tau, **common, **neuron)
        self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        if readout == "membrane":
            self.output = LeakyReadout(n_outputs, readout_tau, learn_readout_tau, parametrisation, dt)
        else:
            self.output = LearnableLIF(
                n_outputs, tau=readout_tau, **{**common, "learn_tau": learn_readout_tau}, **neuron
            )
