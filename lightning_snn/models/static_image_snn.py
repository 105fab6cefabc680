r"""``StaticImageSNN``: PLIF's network for static images with direct encoding (Fang et al., ICCV 2021, paper B).

The image is not turned into spikes: the first Conv-BN (the *encoder*) sees the pixels and its output
is the input current of the first spiking layer at every one of the ``n_steps`` steps:

.. math::
    I = \mathrm{BN}(\mathrm{Conv}_{3\times3}(x)), \quad
    \underbrace{\mathrm{LIF}_\tau(I) \to [\mathrm{Conv}\text{-}\mathrm{BN}\text{-}\mathrm{LIF}_\tau]^{s_1 - 1}
    \to \mathrm{MaxPool}_2}_{\text{stage } 1} \to \dots \to \underbrace{[\mathrm{Conv}\text{-}\mathrm{BN}\text{-}
    \mathrm{LIF}_\tau]^{s_k} \to \mathrm{MaxPool}_2}_{\text{stage } k}
    \to \mathrm{Drop} \to \mathrm{FC}(h) \to \mathrm{LIF}_\tau \to \mathrm{Drop} \to \mathrm{FC}(10K) \to
    \mathrm{LIF}_\tau \to \mathrm{AvgPool1d}(10).

``stages`` gives :math:`(s_1, \dots, s_k)`, the spiking conv layers per max-pool stage, the encoder
counting as the first layer of stage 1. The authors' networks (``codes/models.py``):

- MNIST and Fashion-MNIST (``MNISTNet``, lines 87-120): ``channels=128, stages=(1, 1), fc_hidden=2048``,
  dropout 0.5 before both FC layers;
- CIFAR-10 (``Cifar10Net``, lines 122-172): ``channels=256, stages=(3, 3), fc_hidden=2048``, dropout 0.5
  before the first FC layer only (``dropout=(0.5, 0.0)``).

Input: ``(1, B, C, H, W)`` (one image per sample; the encoder runs once and its output is repeated
``n_steps`` times, as ``StaticNetBase.forward`` does, lines 79-85) or ``(n_steps, B, C, H, W)`` (one image
per step); flattened ``(·, B, C·H·W)`` works too. Output: ``(n_steps, B, K)``, the spikes of ``votes``
neurons per class averaged, so ``SpikingClassifier(readout="mean", loss="mse_rate")`` is PLIF's loss
:math:`\lVert \frac{1}{T}\sum_t o[t] - \mathrm{onehot}(y) \rVert^2` (``codes/train.py:323-325``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_snn import validation
from lightning_snn.layers.sequence_dropout import SequenceDropout
from lightning_snn.models.network import Network
from lightning_snn.neurons.factory import NeuronFactory, NeuronSpec


class StepwiseConvBN(nn.Module):
    """Conv3×3 (no bias) → BatchNorm2d on the frames of ``(T, B, C, H, W)``.

    ``norm_per_step=False``: all ``T·B`` frames in one call, so training-mode batch statistics are over
    time and batch (SpikingJelly's later ``SeqToANNContainer``). ``norm_per_step=True``: one call per
    step, statistics over the batch of that step and ``T`` running-statistics updates per batch, as the
    authors' 2020 code, which runs the whole network once per step (``codes/models.py:79-85, 228-233``).
    In evaluation both give the same output.
    """

    def __init__(self, c_in: int, c_out: int, norm_per_step: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.norm_per_step = norm_per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_per_step and self.training:
            return torch.stack([self.norm(self.conv(frame)) for frame in x])
        y = self.norm(self.conv(x.flatten(0, 1)))
        return y.reshape(*x.shape[:2], *y.shape[1:])


class SpikingFeatureMap(nn.Module):
    """A neuron layer over a ``(T, B, C, H, W)`` feature map, seen as ``C·H·W`` neurons (one τ per layer
    for PLIF, or one per position and channel with ``per_neuron=True``)."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x.flatten(2)).reshape(x.shape)


class StepwiseMaxPool(nn.Module):
    """MaxPool2d(2) on every frame of ``(T, B, C, H, W)`` (binary spikes stay binary)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x.flatten(0, 1))
        return y.reshape(*x.shape[:2], *y.shape[1:])


def check_arguments(input_shape: Sequence[int], n_steps: int, stages: Sequence[int], dropout: Sequence[float]):
    """The checked ``(c, h, w)``, ``stages`` and ``dropout`` of :class:`StaticImageSNN`."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"StaticImageSNN: input_shape must be (channels, height, width) >= 1, got {tuple(input_shape)}; "
            "e.g. [1, 28, 28] for MNIST or [3, 32, 32] for CIFAR-10."
        )
    validation.check_int(n_steps, "n_steps", "StaticImageSNN")
    stages = tuple(int(s) for s in stages)
    if not stages or min(stages) < 1:
        raise ValueError(
            f"StaticImageSNN: stages must be a non-empty list of spiking conv layers per max-pool stage, each >= 1; "
            f"got {stages}. PLIF uses [1, 1] (MNIST) and [3, 3] (CIFAR-10)."
        )
    if min(shape[1:]) < 2 ** len(stages):
        raise ValueError(
            f"StaticImageSNN: input {shape[1]}×{shape[2]} is too small for {len(stages)} max-pool stages (each halves "
            f"it); use at most {max(min(shape[1:]).bit_length() - 1, 0)} stages."
        )
    drops = tuple(float(p) for p in dropout)
    if len(drops) != 2 or not all(0 <= p < 1 for p in drops):
        raise ValueError(
            f"StaticImageSNN: dropout must be two probabilities in [0, 1) (before FC1, before FC2), got {dropout!r}; "
            "PLIF uses [0.5, 0.5] (MNIST) and [0.5, 0.0] (CIFAR-10)."
        )
    return shape, stages, drops


class StaticImageSNN(Network):
    """PLIF's static-image network with direct Conv-BN encoding (see the module docstring).

    The neuron is a spec (:mod:`lightning_snn.neurons.factory`; default
    :class:`~lightning_snn.neurons.lif.LearnableLIF`, PLIF); ``neuron={"learn_tau": False}`` gives the
    fixed-τ LIF baseline. Every neuron layer starts from ``tau`` (``None``: the neuron's own).
    ``norm_per_step=True`` normalises each step's batch separately in training, as the authors' code
    (:class:`StepwiseConvBN`); the encoder sees one image per sample, so its statistics are the same either way.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        n_outputs: int = 10,
        n_steps: int = 8,
        channels: int = 128,
        stages: Sequence[int] = (1, 1),
        fc_hidden: int = 2048,
        votes: int = 10,
        dropout: Sequence[float] = (0.5, 0.5),
        tau: float | None = 2.0,
        neuron: NeuronSpec = None,
        norm_per_step: bool = False,
    ) -> None:
        super().__init__()
        (c, h, w), stages, drops = check_arguments(input_shape, n_steps, stages, dropout)
        for name, value, low in (("n_outputs", n_outputs, 2), ("channels", channels, 1), ("fc_hidden", fc_hidden, 1)):
            validation.check_int(value, name, "StaticImageSNN", minimum=low)
        validation.check_int(votes, "votes", "StaticImageSNN")
        factory = NeuronFactory.from_spec(neuron)

        def make(n_neurons: int) -> nn.Module:
            return factory(n_neurons) if tau is None else factory(n_neurons, tau=tau)

        self.input_shape, self.n_outputs, self.n_steps, self.votes = (c, h, w), n_outputs, n_steps, votes
        self.n_inputs = c * h * w
        self.encoder = StepwiseConvBN(c, channels, norm_per_step)
        layers: list[nn.Module] = []
        for i, depth in enumerate(stages):
            for j in range(depth):
                if i or j:  # the encoder is the first conv of stage 1
                    layers.append(StepwiseConvBN(channels, channels, norm_per_step))
                layers.append(SpikingFeatureMap(make(channels * h * w)))
            layers.append(StepwiseMaxPool())
            h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.drop1, self.drop2 = SequenceDropout(drops[0]), SequenceDropout(drops[1])
        self.fc1 = nn.Linear(channels * h * w, fc_hidden, bias=False)
        self.lif1 = make(fc_hidden)
        self.fc2 = nn.Linear(fc_hidden, n_outputs * votes, bias=False)
        self.lif2 = make(n_outputs * votes)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[-1] == self.n_inputs:
            x = x.reshape(*x.shape[:2], *self.input_shape)
        if x.dim() != 5 or tuple(x.shape[2:]) != self.input_shape or x.shape[0] not in (1, self.n_steps):
            shape = ", ".join(map(str, self.input_shape))
            raise ValueError(
                f"StaticImageSNN expects images (1, B, {shape}) (one per sample, repeated n_steps={self.n_steps} "
                f"times) or (n_steps, B, {shape}), or the same flattened to (·, B, {self.n_inputs}); got shape "
                f"{tuple(x.shape)}. Set input_shape and n_steps to match the DataModule."
            )
        return x

    def check_input(self, x: torch.Tensor) -> None:
        """Images ``(1 or n_steps, B, C, H, W)`` or flattened, floating point (once per call)."""
        validation.check_tensor(x, type(self).__name__)
        validation.check_time_major(self._images(x).flatten(2), self.n_inputs, type(self).__name__)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images → voted output spike rates ``(n_steps, B, n_outputs)``."""
        current = self.encoder(self._images(x))
        if current.shape[0] == 1:  # one image: the encoder's output is the input at every step
            current = current.expand(self.n_steps, *current.shape[1:])
        x = self.features(current)
        x = self.lif1(self.fc1(self.drop1(x.flatten(2))))
        out = self.lif2(self.fc2(self.drop2(x)))
        return out.reshape(*out.shape[:2], self.n_outputs, self.votes).mean(-1)

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, n_steps={self.n_steps}"

    @classmethod
    def plif_preset(cls, dataset: str, **overrides: Any) -> StaticImageSNN:
        """The authors' network for ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` (:data:`PLIF_PRESETS`)."""
        if dataset not in PLIF_PRESETS:
            raise ValueError(
                f"StaticImageSNN.plif_preset: unknown dataset {dataset!r}; expected one of {sorted(PLIF_PRESETS)}."
            )
        return cls(**{**PLIF_PRESETS[dataset], **overrides})


_MNIST_NET = dict(input_shape=(1, 28, 28), channels=128, stages=(1, 1), dropout=(0.5, 0.5))
#: The authors' static-image networks (``codes/models.py``: ``MNISTNet`` 87-117, ``FashionMNISTNet`` 119-120,
#: ``Cifar10Net`` 122-172), T = 8, FC 128·4·4 = 2048, 10 votes, τ₀ = 2, per-step batch norm.
PLIF_PRESETS: dict[str, dict[str, Any]] = {
    name: {**net, "n_outputs": 10, "n_steps": 8, "fc_hidden": 2048, "votes": 10, "tau": 2.0, "norm_per_step": True}
    for name, net in {
        "mnist": _MNIST_NET,
        "fashion_mnist": _MNIST_NET,
        "cifar10": dict(input_shape=(3, 32, 32), channels=256, stages=(3, 3), dropout=(0.5, 0.0)),
    }.items()
}
