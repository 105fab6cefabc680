r"""``DelaySNN``: feed-forward SNN whose synapses have learnable delays (Hammouamri et al. 2024;
Mészáros et al. 2024).

For hidden layer :math:`l`: :math:`I^l = \mathrm{DelayedLinear}_{D}(S^{l-1})` (one Gaussian-kernel delay
per synapse, see :class:`~lightning_snn.layers.delayed_linear.DelayedLinear`), optional BatchNorm and
dropout, :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)` with ``detach_reset=True`` as in both papers. The
readout is a non-spiking leaky integrator :math:`V^o[t] = \beta_o V^o[t-1] + W^o S^L[t]`, whose
synapses are delayed too (``delay_output=True``, as in ``Thvnvtos/SNN-delays``) or plain.

- SHD (Hammouamri): 140 (binned) → 256 → 256 → 20, ``max_delay=25``, BatchNorm, dropout.
- Raw SHD (Mészáros): 40 → 256 → 20, ``max_delay=25``, dropout 0.4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.models.feedforward import StackedSNN, SynapseBlock, TauSpec, check_layer_sizes
from lightning_snn.neurons.lif import LeakyReadout


class DelaySNN(StackedSNN):
    """Feed-forward SNN with learnable synaptic delays (see the module docstring)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        max_delay: int = 25,
        tau: TauSpec = 2.0,
        learn_tau: bool = True,
        per_neuron: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        delay_output: bool = True,
        batch_norm: bool = False,
        dropout: float = 0.0,
        delay_backend: str = "fft",
        neuron: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        check_layer_sizes(type(self).__name__, n_inputs, hidden, n_outputs, dropout)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        neuron = {"detach_reset": True, **(neuron or {})}
        common = dict(learn_tau=learn_tau, per_neuron=per_neuron, parametrisation=parametrisation, dt=dt)
        widths = [n_inputs, *hidden]
        self.synapses = nn.ModuleList(
            SynapseBlock(DelayedLinear(a, b, max_delay, backend=delay_backend), b, batch_norm, dropout)
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.neurons = self.hidden_neurons(hidden, tau, **common, **neuron)
        if delay_output:
            self.output_synapse = DelayedLinear(hidden[-1], n_outputs, max_delay, backend=delay_backend)
        else:
            self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        self.output = LeakyReadout(n_outputs, readout_tau, learn_readout_tau, parametrisation, dt)
