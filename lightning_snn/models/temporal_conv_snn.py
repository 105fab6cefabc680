r"""``TemporalConvSNN``: causal temporal convolutions + LIF layers with hierarchical kernels
(Moro et al. 2024, paper A, claim 3).

Hidden layer :math:`l`: :math:`I^l = \mathrm{CausalConv1d}_{k_l, \delta_l}(S^{l-1})`, optional BatchNorm
and dropout, :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)`. Kernel size :math:`k_l` and dilation
:math:`\delta_l` per layer come from :func:`~lightning_snn.schedules.hierarchical_kernels`: with
``kernel_kind="linear"`` (or ``"geometric"``, ``"tanh"``) they grow from the first to the last value of
``kernel_size`` / ``dilation`` with depth; ``"constant"`` gives every layer the mid value (the
homogeneous baseline). The readout is a leaky-integrator membrane as in
:class:`~lightning_snn.models.feedforward.FeedForwardSNN`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models.feedforward import StackedSNN, TauSpec
from lightning_snn.neurons.factory import NeuronSpec
from lightning_snn.schedules import hierarchical_kernels


class TemporalConvSNN(StackedSNN):
    """Temporal-convolution SNN with per-layer kernel size and dilation (see the module docstring)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        kernel_size: int | Sequence[int] = (3, 7),
        dilation: int | Sequence[int] = (1, 4),
        kernel_kind: str = "linear",
        tau: TauSpec = 2.0,
        neuron: NeuronSpec = None,
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
        spike_dropout: float = 0.0,
    ) -> None:
        hidden = list(hidden)
        ends = [v if isinstance(v, int) else tuple(v) for v in (kernel_size, dilation)]
        kernels = hierarchical_kernels(len(hidden), ends[0], ends[1], kernel_kind) if hidden else []

        def synapse(n_in: int, n_out: int, layer: int) -> CausalConv1d:
            return CausalConv1d(n_in, n_out, *kernels[layer])

        super().__init__(n_inputs, hidden, n_outputs, synapse, tau, neuron, batch_norm, dropout, spike_dropout)
        self.kernels = kernels
        self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        self.output = self.leaky_readout(n_outputs, readout_tau, learn_readout_tau, neuron)

    @property
    def receptive_field(self) -> int:
        """Input steps seen by one output step through the convolutions alone (LIF memory adds more)."""
        return 1 + sum(block.synapse.receptive_field - 1 for block in self.synapses)
