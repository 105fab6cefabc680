r"""``ConvSNN``: the PLIF network for neuromorphic frames (Fang et al., ICCV 2021, paper B).

.. math::
    \underbrace{[\mathrm{Conv}_{3\times3}(c) \to \mathrm{BN} \to \mathrm{LIF}_\tau
    \to \mathrm{MaxPool}_2]}_{N\ \text{times}}
    \to \mathrm{Dropout} \to \mathrm{FC}(h) \to \mathrm{LIF}_\tau \to \mathrm{Dropout} \to \mathrm{FC}(10K)
    \to \mathrm{LIF}_\tau \to \mathrm{AvgPool1d}(10)

Input ``(T, B, P, H, W)`` frames (or the same flattened to ``(T, B, P·H·W)``); output ``(T, B, K)``:
the spikes of ``votes`` output neurons per class averaged, so ``SpikingClassifier(readout="mean",
loss="mse_rate")`` gives PLIF's loss :math:`\lVert \frac{1}{T}\sum_t o[t] - \mathrm{onehot}(y)\rVert^2`.
Convolution and batch norm run on all ``T·B`` frames at once (SpikingJelly's ``SeqToANNContainer``), or
step by step in training with ``norm_per_step=True`` (the authors' 2020 code);
each :class:`~lightning_snn.neurons.lif.LearnableLIF` sees the feature map flattened to ``N = c·h·w``
neurons and the result is reshaped back, so one τ per layer (PLIF) or one per position and channel
(``per_neuron=True``). Dropout draws one mask per sample shared by all time steps, as SpikingJelly's
``layer.Dropout``. N = 2 for N-MNIST, 4 for CIFAR10-DVS, 5 for DVS Gesture; c = 128; dropout 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_snn import validation
from lightning_snn.layers.sequence_dropout import SequenceDropout
from lightning_snn.models.network import Network
from lightning_snn.neurons.factory import NeuronFactory, NeuronSpec, move_into_neuron_spec


class ConvBlock(nn.Module):
    """Conv3×3 → BN → neuron (LearnableLIF by default) → MaxPool2d(2) on ``(T, B, C, H, W)``.

    ``norm_per_step=True``: in training, conv and BN run once per step (batch statistics of that step, as
    the authors' 2020 code, ``codes/models.py:228-233``); otherwise on all ``T·B`` frames at once.
    """

    def __init__(
        self, c_in: int, c_out: int, hw: tuple[int, int], neuron: nn.Module, norm_per_step: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.neuron = neuron  # over the c_out·h·w positions of the feature map
        self.pool = nn.MaxPool2d(2)
        self.norm_per_step = norm_per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        if self.norm_per_step and self.training:
            y = torch.cat([self.norm(self.conv(frame)) for frame in x])
        else:
            y = self.norm(self.conv(x.flatten(0, 1)))
        s = self.neuron(y.reshape(steps, batch, -1)).reshape(steps * batch, *y.shape[1:])
        s = self.pool(s)
        return s.reshape(steps, batch, *s.shape[1:])


class ConvSNN(Network):
    """PLIF convolutional SNN with output voting (see the module docstring).

    The neuron is a spec (:mod:`lightning_snn.neurons.factory`; default
    :class:`~lightning_snn.neurons.lif.LearnableLIF`, whose ``learn_tau``, ``per_neuron`` and
    ``parametrisation`` go in ``neuron``); every LIF layer starts from ``tau`` (``None``: the neuron's own).
    ``norm_per_step=True`` gives the authors' per-step batch norm in training (:class:`ConvBlock`). The FC
    width is ``fc_hidden``; the authors' is ``c·h·w/4`` of the last feature map (2048 for N-MNIST and
    CIFAR10-DVS, 512 for DVS Gesture, ``codes/models.py:54``).
    """

    @classmethod
    def migrate_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """Version 0.1 took ``learn_tau``, ``per_neuron`` and ``parametrisation`` itself: move them to ``neuron``."""
        return move_into_neuron_spec(init_args, ("learn_tau", "per_neuron", "parametrisation"))

    def __init__(
        self,
        input_shape: Sequence[int] = (2, 34, 34),
        n_outputs: int = 10,
        n_conv: int = 2,
        channels: int = 128,
        fc_hidden: int = 2048,
        votes: int = 10,
        dropout: float = 0.5,
        tau: float | None = 2.0,
        neuron: NeuronSpec = None,
        norm_per_step: bool = False,
    ) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3 or min(int(v) for v in input_shape) < 1:
            raise ValueError(f"input_shape must be (channels, height, width) >= 1, got {tuple(input_shape)}.")
        c, h, w = (int(v) for v in input_shape)
        if n_outputs < 2 or n_conv < 1 or channels < 1 or fc_hidden < 1 or votes < 1:
            raise ValueError(
                f"Need n_outputs >= 2 and n_conv, channels, fc_hidden, votes >= 1; got n_outputs={n_outputs}, "
                f"n_conv={n_conv}, channels={channels}, fc_hidden={fc_hidden}, votes={votes}."
            )
        if min(h, w) < 2**n_conv:
            raise ValueError(
                f"input {h}×{w} is too small for n_conv={n_conv} max-pools (each halves it); "
                f"use n_conv <= {max(min(h, w).bit_length() - 1, 0)} or a smaller spatial_factor."
            )
        factory = NeuronFactory.from_spec(neuron)

        def make(n_neurons: int) -> nn.Module:
            return factory(n_neurons) if tau is None else factory(n_neurons, tau=tau)

        self.input_shape, self.n_outputs, self.votes = (c, h, w), n_outputs, votes
        self.n_inputs = c * h * w
        blocks = []
        for i in range(n_conv):
            blocks.append(ConvBlock(c if i == 0 else channels, channels, (h, w), make(channels * h * w), norm_per_step))
            h, w = h // 2, w // 2
        self.blocks = nn.ModuleList(blocks)
        self.drop1, self.drop2 = SequenceDropout(dropout), SequenceDropout(dropout)
        self.fc1 = nn.Linear(channels * h * w, fc_hidden, bias=False)
        self.lif1 = make(fc_hidden)
        self.fc2 = nn.Linear(fc_hidden, n_outputs * votes, bias=False)
        self.lif2 = make(n_outputs * votes)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[-1] == self.n_inputs:
            return x.reshape(*x.shape[:2], *self.input_shape)
        if x.dim() != 5 or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(
                f"ConvSNN expects time-major frames (T, B, {', '.join(map(str, self.input_shape))}) or "
                f"(T, B, {self.n_inputs}); got shape {tuple(x.shape)}. Set input_shape to the DataModule's frame shape."
            )
        return x

    def check_input(self, x: torch.Tensor) -> None:
        """Frames ``(T, B, P, H, W)`` or flattened ``(T, B, P·H·W)``, floating point (once per call)."""
        validation.check_tensor(x, type(self).__name__)
        validation.check_time_major(self._frames(x).flatten(2), self.n_inputs, type(self).__name__)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, P, H, W)`` → voted output spike rates ``(T, B, n_outputs)``."""
        x = self._frames(x)
        for block in self.blocks:
            x = block(x)
        x = self.lif1(self.fc1(self.drop1(x.flatten(2))))
        out = self.lif2(self.fc2(self.drop2(x)))
        return out.reshape(*out.shape[:2], self.n_outputs, self.votes).mean(-1)
