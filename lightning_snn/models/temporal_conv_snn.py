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
from typing import Any

from torch import nn

from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models.feedforward import StackedSNN, SynapseBlock, TauSpec, check_layer_sizes
from lightning_snn.neurons.lif import LeakyReadout
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
        learn_tau: bool = True,
        per_neuron: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
        neuron: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        check_layer_sizes(type(self).__name__, n_inputs, hidden, n_outputs, dropout)
        ends = [v if isinstance(v, int) else tuple(v) for v in (kernel_size, dilation)]
        self.kernels = hierarchical_kernels(len(hidden), ends[0], ends[1], kernel_kind)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        common = dict(learn_tau=learn_tau, per_neuron=per_neuron, parametrisation=parametrisation, dt=dt)
        widths = [n_inputs, *hidden]
        self.synapses = nn.ModuleList(
            SynapseBlock(CausalConv1d(a, b, k, d), b, batch_norm, dropout)
            for (a, b), (k, d) in zip(zip(widths[:-1], widths[1:]), self.kernels)
        )
        self.neurons = self.hidden_neurons(hidden, tau, **common, **(neuron or {}))
        self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        self.output = LeakyReadout(n_outputs, readout_tau, learn_readout_tau, parametrisation, dt)

    @property
    def receptive_field(self) -> int:
        """Input steps seen by one output step through the convolutions alone (LIF memory adds more)."""
        return 1 + sum(block.synapse.receptive_field - 1 for block in self.synapses)
