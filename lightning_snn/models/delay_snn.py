r"""``DelaySNN``: feed-forward SNN whose synapses have learnable delays (Hammouamri et al. 2024;
Mészáros et al. 2024).

For hidden layer :math:`l`: :math:`I^l = \mathrm{DelayedLinear}_{D}(S^{l-1})` (one Gaussian-kernel delay
per synapse, see :class:`~lightning_snn.layers.delayed_linear.DelayedLinear`), optional BatchNorm and
dropout, :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)` (``detach_reset=True``, LearnableLIF's default, as in
both papers; any neuron can be given as a spec, see :mod:`lightning_snn.neurons.factory`). The
readout is a non-spiking leaky integrator :math:`V^o[t] = \beta_o V^o[t-1] + W^o S^L[t]`, whose
synapses are delayed too (``delay_output=True``, as in ``Thvnvtos/SNN-delays``) or plain.

- SHD (Hammouamri): 140 (binned) → 256 → 256 → 20, ``max_delay=25``, BatchNorm, dropout.
- Raw SHD (Mészáros): 40 → 256 → 20, ``max_delay=25``, dropout 0.4.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.models.feedforward import StackedSNN, TauSpec
from lightning_snn.neurons.factory import NeuronSpec


class DelaySNN(StackedSNN):
    """Feed-forward SNN with learnable synaptic delays (see the module docstring)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        max_delay: int = 25,
        tau: TauSpec = 2.0,
        neuron: NeuronSpec = None,
        readout_tau: float = 2.0,
        learn_readout_tau: bool = False,
        delay_output: bool = True,
        batch_norm: bool = False,
        dropout: float = 0.0,
        delay_backend: str = "fft",
    ) -> None:
        def synapse(n_in: int, n_out: int, layer: int) -> DelayedLinear:
            return DelayedLinear(n_in, n_out, max_delay, backend=delay_backend)

        super().__init__(n_inputs, hidden, n_outputs, synapse, tau, neuron, batch_norm, dropout)
        hidden = list(hidden)
        if delay_output:
            self.output_synapse = DelayedLinear(hidden[-1], n_outputs, max_delay, backend=delay_backend)
        else:
            self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        self.output = self.leaky_readout(n_outputs, readout_tau, learn_readout_tau, neuron)
