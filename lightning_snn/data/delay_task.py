r"""Delay-pattern task: the class is coded only by the *relative timing* of spikes across channels.

Every class :math:`k` has a template of offsets :math:`o^k_c`, one per channel: a permutation of
:math:`\{0, g, 2g, \dots, (C-1)g\}` (``gap`` :math:`g`, drawn once from ``template_seed``), so
:math:`M = (C-1)g` is the pattern length and no two channels fire together (while ``jitter < gap``).
A sample of class :math:`k` is one spike per channel at

.. math::  t_c = s + o^k_c \;(+\ \text{jitter}), \qquad s \sim \mathcal{U}\{0, \dots, R\}

plus Bernoulli background noise. Every channel fires exactly once in every class, so spike counts carry
no information; the random onset :math:`s` (range ``R = onset_range``, several times ``M``) hides the
absolute times, so the class is read from the *lags between channels*. A layer with per-synapse delays
:math:`d_c = M - o^k_c` makes the template's spikes coincide on one neuron (the mechanism of Hammouamri
et al. 2024); a network without delays must hold the earlier spikes in slow membranes.

Samples are ``x`` ``(T, n_channels)`` with ``T = onset_range + max_offset + jitter + tail`` and a label ``y``;
batches are time-major ``(T, B, C)``.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_int


def delay_templates(n_classes: int, n_channels: int, gap: int, seed: int) -> torch.Tensor:
    """Offsets ``(n_classes, n_channels)``: distinct permutations of ``{0, gap, ..., (C-1)·gap}``.

    Every class uses the same set of offsets, so no two channels ever fire together and only their
    order and lags tell the classes apart.
    """
    if n_classes > math.factorial(n_channels):
        raise ValueError(
            f"Only {math.factorial(n_channels)} orders of {n_channels} channels exist; asked for {n_classes} classes."
        )
    gen = torch.Generator().manual_seed(seed)
    rows: list[tuple[int, ...]] = []
    while len(rows) < n_classes:
        row = tuple((torch.randperm(n_channels, generator=gen) * gap).tolist())
        if row not in rows:
            rows.append(row)
    return torch.tensor(rows)


def generate_delay_task(
    n_samples: int,
    templates: torch.Tensor,
    seed: int,
    onset_range: int = 30,
    tail: int = 10,
    jitter: int = 0,
    noise: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (N, T, C)`` of spikes and ``y (N,)`` class labels (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    n_classes, n_channels = templates.shape
    max_offset = int(templates.max())
    steps = onset_range + max_offset + jitter + tail
    y = torch.randint(0, n_classes, (n_samples,), generator=gen)
    onset = torch.randint(0, onset_range + 1, (n_samples, 1), generator=gen)
    times = onset + templates[y]
    if jitter:
        times = times + torch.randint(0, jitter + 1, times.shape, generator=gen)
    x = torch.zeros(n_samples, steps, n_channels)
    x.scatter_(1, times[:, None, :], 1.0)
    if noise > 0:
        x = torch.maximum(x, torch.bernoulli(torch.full_like(x, noise), generator=gen))
    return x, y


class DelayTaskDataModule(SplitDataModule):
    """Seeded train/val/test splits of the delay-pattern task (see the module docstring)."""

    def __init__(
        self,
        *,
        n_channels: int = 6,
        n_classes: int = 5,
        gap: int = 6,
        onset_range: int = 30,
        tail: int = 10,
        jitter: int = 0,
        noise: float = 0.0,
        n_train: int = 2048,
        n_val: int = 512,
        n_test: int = 512,
        batch_size: int = 128,
        seed: int = 0,
        template_seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        between = "the class is the timing *between* channels"
        check_int(self, "n_channels", n_channels, 2, between)
        check_int(self, "n_classes", n_classes, 2, between)
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("gap", gap)):
            check_int(self, name, value, 1)
        check_int(self, "onset_range", onset_range, 0)
        check_int(self, "jitter", jitter, 0)
        check_int(self, "tail", tail, 1, "the last spike needs a step after it")
        check_fraction(self, "noise", noise)
        self.n_inputs, self.num_classes = n_channels, n_classes

    @property
    def templates(self) -> torch.Tensor:
        """The ``(n_classes, n_channels)`` offsets of every class (see :func:`delay_templates`)."""
        hp = self.hparams
        return delay_templates(hp.n_classes, hp.n_channels, hp.gap, hp.template_seed)

    def build_splits(self) -> dict[str, TensorDataset]:
        hp, templates = self.hparams, self.templates
        splits = {}
        for offset, (split, n) in enumerate({"train": hp.n_train, "val": hp.n_val, "test": hp.n_test}.items()):
            x, y = generate_delay_task(n, templates, hp.seed * 3 + offset, hp.onset_range, hp.tail, hp.jitter, hp.noise)
            splits[split] = TensorDataset(x, y)
        return splits
