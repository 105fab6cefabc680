r"""``DelaySNN``: feed-forward SNN whose synapses have learnable delays (Hammouamri et al. 2024;
Mészáros et al. 2024).

For hidden layer :math:`l`: :math:`I^l = \mathrm{DelayedLinear}_{D}(S^{l-1})` (one Gaussian-kernel delay
per synapse, see :class:`~lightning_snn.layers.delayed_linear.DelayedLinear`), optional BatchNorm and
dropout, :math:`S^l = \mathrm{LIF}_{\tau_l}(I^l)` (``detach_reset=True``, LearnableLIF's default, as in
both papers; any neuron can be given as a spec, see :mod:`lightning_snn.neurons.factory`). The
readout is a non-spiking leaky integrator :math:`V^o[t] = \beta_o V^o[t-1] + W^o S^L[t]`, whose
synapses are delayed too (``delay_output=True``, as in ``Thvnvtos/SNN-delays``) or plain.

Options that reproduce the authors' code (presets: ``configs/dcls_shd.yaml``, ``configs/meszaros_rawhd_*.yaml``;
tables: ``docs/fidelity/dcls.md``, ``docs/fidelity/meszaros.md``):

- ``init="kaiming"``: every synapse weight (hidden and output) drawn by ``kaiming_uniform_(w, nonlinearity="relu")``,
  bound :math:`\sqrt{6/n_{in}}` (both papers); ``"dcls"`` keeps ``Dcls1d``'s own, 2.45× smaller bound.
- ``pad_right=k``: ``k`` zero steps appended to the input of every delayed synapse (hidden and output), as
  ``Thvnvtos/SNN-delays`` snn_delays.py:210 pads by ``(max_delay - 1) // 2``; each layer's output is ``k`` steps
  longer, so the network returns ``T + k·(n_layers)`` steps (a ``softmax_sum`` readout then sums them all
  when the batch carries no ``lengths``, as the authors do).
- ``readout="lagged"``: Mészáros's readout :class:`~lightning_snn.neurons.lagged_lif.LaggedLeakyReadout`
  (one-step lag, β = 1 − 1/τ); ``"leaky"`` is :class:`~lightning_snn.neurons.lif.LeakyReadout`.
- ``readout_tau_min``: lower bound of the readout's τ, so that DCLS's τ = 1.005 steps (β ≈ 0.005) is admitted.

- SHD (Hammouamri): 140 (binned) → 256 → 256 → 20, ``max_delay=25``, BatchNorm, spike dropout 0.4.
- Raw HD (Mészáros): 40 → 256 → 20, ``max_delay=25``, BatchNorm, spike dropout 0.4, lagged neurons.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.models.feedforward import StackedSNN, TauSpec
from lightning_snn.neurons.factory import NeuronFactory, NeuronSpec
from lightning_snn.neurons.lagged_lif import LaggedLeakyReadout

INITS = ("dcls", "kaiming")
READOUT_NEURONS = ("leaky", "lagged")


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
        spike_dropout: float = 0.0,
        init: str = "dcls",
        pad_right: int = 0,
        readout: str = "leaky",
        readout_tau_min: float | None = None,
    ) -> None:
        where = type(self).__name__
        if init not in INITS:
            raise ValueError(f"{where}: unknown init={init!r}; expected one of {INITS} (kaiming: both delay papers).")
        if readout not in READOUT_NEURONS:
            raise ValueError(
                f"{where}: unknown readout={readout!r}; expected one of {READOUT_NEURONS} (lagged: Mészáros et al.)."
            )
        if isinstance(pad_right, bool) or not isinstance(pad_right, int) or pad_right < 0:
            raise ValueError(
                f"{where}: pad_right must be an integer >= 0 (zero steps appended before each delayed synapse; "
                f"DCLS uses (max_delay - 1) // 2), got {pad_right!r}."
            )
        self.pad_right = pad_right

        def synapse(n_in: int, n_out: int, layer: int) -> DelayedLinear:
            return DelayedLinear(n_in, n_out, max_delay, backend=delay_backend)

        super().__init__(n_inputs, hidden, n_outputs, synapse, tau, neuron, batch_norm, dropout, spike_dropout)
        hidden = list(hidden)
        if delay_output:
            self.output_synapse = DelayedLinear(hidden[-1], n_outputs, max_delay, backend=delay_backend)
        else:
            self.output_synapse = nn.Linear(hidden[-1], n_outputs)
        self.output = self.build_readout(readout, n_outputs, readout_tau, learn_readout_tau, neuron, readout_tau_min)
        if init == "kaiming":
            for module in [*self.synapses, self.output_synapse]:
                weight = module.synapse.weight if hasattr(module, "synapse") else module.weight
                nn.init.kaiming_uniform_(weight, nonlinearity="relu")

    def build_readout(
        self, readout: str, n_outputs: int, tau: float, learn: bool, neuron: NeuronSpec, tau_min: float | None
    ) -> nn.Module:
        """The leaky readout (``"leaky"``) or Mészáros's lagged one (``"lagged"``), τ bounded below by ``tau_min``."""
        dt = NeuronFactory.from_spec(neuron).init_args.get("dt", 1.0)
        if readout == "lagged":
            return LaggedLeakyReadout(n_outputs, tau, learn, dt, tau_min)
        return self.leaky_readout(n_outputs, tau, learn, neuron, tau_min=tau_min)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, 0, 0, self.pad_right)) if self.pad_right else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_inputs)`` → output membrane ``(T', B, n_outputs)``, ``T' = T + pad_right`` per delayed layer."""
        if not self.pad_right:
            return super().forward(x)
        for synapse, neuron, drop in zip(self.synapses, self.neurons, self.spike_dropouts):
            x = drop(neuron(synapse(self._pad(x))))
        if isinstance(self.output_synapse, DelayedLinear):
            x = self._pad(x)
        return self.output(self.output_synapse(x))
