r"""``FeedForwardSNN``: Linear → LIF layers with a leaky-integrator or spike-count readout.

For hidden layer :math:`l`: :math:`I^l = W^l S^{l-1} + b^l` (one matmul over all ``T·B`` rows, hoisted
out of the time loop), :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)`. The readout is either the membrane
of a non-spiking leaky integrator :math:`V^o[t] = \beta_o V^o[t-1] + W^o S^L[t]` (``"membrane"``,
Moro et al. 2024) or the output spikes of a last LIF layer (``"spikes"``, PLIF), or any readout module
given as a class spec ``{"class_path": ..., "init_args": {...}}`` built as ``cls(n_outputs, **init_args)``
(e.g. :class:`~lightning_snn.neurons.hsnn_readout.HSNNReadout`, the hSNN code's batch-normed LI). The initial τ of
the hidden layers comes from a number, one number per layer, or a hierarchical
:class:`~lightning_snn.schedules.TauSchedule`.

The neuron of the hidden layers is given once, as a spec (:mod:`lightning_snn.neurons.factory`): by
default :class:`~lightning_snn.neurons.lif.LearnableLIF`, whose arguments (``learn_tau``,
``per_neuron``, ``parametrisation``, ``dt``, reset, surrogate, ...) go in ``neuron``, e.g.
``neuron={"learn_tau": False, "decay_input": False}``; or any neuron class,
``neuron={"class_path": "my_package.MyNeuron", "init_args": {...}}``. The leaky readout uses the
neuron's ``parametrisation`` and ``dt`` when the spec gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lightning_snn import validation
from lightning_snn.layers.sequence_dropout import SequenceDropout
from lightning_snn.models.network import Network
from lightning_snn.neurons.factory import NeuronFactory, NeuronSpec, move_into_neuron_spec
from lightning_snn.neurons.lif import LeakyReadout
from lightning_snn.schedules import TauSchedule

READOUTS = ("membrane", "spikes")
TauSpec = float | Sequence[float] | TauSchedule | dict | None

#: Arguments of version 0.1's network constructors that now belong to the neuron spec.
MOVED_NEURON_ARGS = ("learn_tau", "per_neuron", "parametrisation", "dt")
#: Neuron arguments that the leaky readout shares with the hidden neurons.
READOUT_SHARED_ARGS = ("parametrisation", "dt")


def resolve_layer_taus(tau: TauSpec, widths: Sequence[int]) -> list[Any]:
    """One initial τ (scalar or per-neuron vector, or ``None``: the neuron's default) per hidden layer."""
    if tau is None:
        return [None] * len(widths)
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
    """Raise ``TypeError`` for a size that is not an integer, ``ValueError`` for empty layers or a dropout
    outside [0, 1)."""
    validation.check_int(n_inputs, "n_inputs", where, minimum=None)
    validation.check_int(n_outputs, "n_outputs", where, minimum=None)
    for width in hidden:
        validation.check_int(width, "every hidden width", where, minimum=None)
    if n_inputs < 1 or n_outputs < 1 or not hidden or min(hidden) < 1:
        raise ValueError(
            f"{where} needs n_inputs >= 1, n_outputs >= 1 and at least one hidden layer of width >= 1; "
            f"got n_inputs={n_inputs}, hidden={hidden}, n_outputs={n_outputs}."
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"{where}: dropout must be in [0, 1), got {dropout}.")


class StackedSNN(Network):
    """Base of the feed-forward networks: ``synapses[l]`` → ``neurons[l]`` → ``spike_dropouts[l]`` per
    hidden layer, then ``output_synapse`` → ``output``.

    Two dropouts, for two papers' placements: ``dropout`` acts on the synaptic currents before the neurons,
    a new mask each step (inside :class:`SynapseBlock`); ``spike_dropout`` acts on the hidden spikes after
    the neurons with one mask per sequence (:class:`~lightning_snn.layers.sequence_dropout.SequenceDropout`,
    as ``Thvnvtos/SNN-delays`` and ``mbalazs98/spatiotemporal`` do; ``EIS-Hub/hSNN`` draws a new mask
    per step, see :class:`~lightning_snn.neurons.hsnn_lif.HSNNLIF`).

    The constructor checks the sizes and builds the hidden layers: ``synapses[l]`` is a
    :class:`SynapseBlock` around ``synapse(n_in, n_out, l)`` and ``neurons[l]`` comes from the neuron spec
    with its initial τ from ``tau``. Subclasses then set ``output_synapse`` and ``output`` (e.g.
    :meth:`leaky_readout`). A subclass that builds everything itself may call ``Network.__init__`` instead.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        synapse: Callable[[int, int, int], nn.Module],
        tau: TauSpec,
        neuron: NeuronSpec,
        batch_norm: bool = False,
        dropout: float = 0.0,
        spike_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        check_layer_sizes(type(self).__name__, n_inputs, hidden, n_outputs, dropout)
        if isinstance(spike_dropout, bool) or not isinstance(spike_dropout, (int, float)) or not 0 <= spike_dropout < 1:
            raise ValueError(
                f"{type(self).__name__}: spike_dropout must be a number in [0, 1) (the probability of silencing "
                f"a hidden neuron for a whole sequence); got {spike_dropout!r}."
            )
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        pairs = list(zip([n_inputs, *hidden[:-1]], hidden))
        self.synapses = nn.ModuleList(
            SynapseBlock(synapse(a, b, layer), b, batch_norm, dropout) for layer, (a, b) in enumerate(pairs)
        )
        self.neurons = self.hidden_neurons(hidden, tau, neuron)
        self.spike_dropouts = nn.ModuleList(SequenceDropout(spike_dropout) for _ in hidden)

    @classmethod
    def migrate_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """Version 0.1 specs passed ``learn_tau``, ``per_neuron``, ``parametrisation`` and ``dt`` to the
        network; they now live in the neuron spec (a plain dict of LearnableLIF arguments then)."""
        return move_into_neuron_spec(init_args, MOVED_NEURON_ARGS)

    def hidden_neurons(self, hidden: list[int], tau: TauSpec, neuron: NeuronSpec) -> nn.ModuleList:
        """One neuron layer per hidden width, built from the neuron spec, initial τ from ``tau``."""
        make = NeuronFactory.from_spec(neuron)
        taus = resolve_layer_taus(tau, hidden)
        if tau is not None and not make.accepts_tau:
            raise ValueError(
                f"{type(self).__name__}: tau={tau!r} sets initial time constants, but the neuron "
                f"{make.cls.__name__} takes no tau argument; leave tau unset (None) for this neuron."
            )
        return nn.ModuleList(make(w) if t is None else make(w, tau=t) for w, t in zip(hidden, taus))

    @staticmethod
    def leaky_readout(
        n_outputs: int, tau: float, learn_tau: bool, neuron: NeuronSpec, tau_min: float | None = None
    ) -> LeakyReadout:
        """The leaky-integrator readout, sharing the hidden neurons' ``parametrisation`` and ``dt``; τ bounded
        below by ``tau_min`` (``None``: the parametrisation's default bound)."""
        shared = {k: v for k, v in NeuronFactory.from_spec(neuron).init_args.items() if k in READOUT_SHARED_ARGS}
        return LeakyReadout(n_outputs, tau, learn_tau, tau_min=tau_min, **shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_inputs)`` → output membrane (or spikes) ``(T, B, n_outputs)``."""
        for synapse, neuron, drop in zip(self.synapses, self.neurons, self.spike_dropouts):
            x = drop(neuron(synapse(x)))
        return self.output(self.output_synapse(x))


class FeedForwardSNN(StackedSNN):
    """Feed-forward SNN (see the module docstring)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        tau: TauSpec = 2.0,
        neuron: NeuronSpec = None,
        readout: str | dict = "membrane",
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
        spike_dropout: float = 0.0,
    ) -> None:
        if not (isinstance(readout, dict) and "class_path" in readout) and readout not in READOUTS:
            raise ValueError(
                f"Unknown readout {readout!r}; expected one of {READOUTS} or a readout class spec "
                "{'class_path': ..., 'init_args': {...}} built as cls(n_outputs, **init_args)."
            )
        super().__init__(
            n_inputs,
            hidden,
            n_outputs,
            lambda a, b, _: nn.Linear(a, b),
            tau,
            neuron,
            batch_norm,
            dropout,
            spike_dropout,
        )
        self.readout = readout
        self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        if isinstance(readout, dict):  # any readout module, e.g. lightning_snn.neurons.hsnn_readout.HSNNReadout
            self.output = NeuronFactory.from_spec(readout)(n_outputs)
        elif readout == "membrane":
            self.output = self.leaky_readout(n_outputs, readout_tau, learn_readout_tau, neuron)
        else:  # the hidden neuron once more, with the readout's τ
            self.output = NeuronFactory.from_spec(neuron)(n_outputs, tau=readout_tau, learn_tau=learn_readout_tau)
