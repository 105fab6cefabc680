r"""Multi-Time-Scale XOR (Zheng et al., Nat. Commun. 2024; as used by Moro et al. 2024, paper A).

Input: ``2 × channels_per_group`` Poisson channels over ``T = first_steps + n_windows·(silent + active)``
steps (100 by default), with background noise ``p = noise`` on every channel and step.

- Group 1 codes a first bit in steps ``[0, first_steps)``: every channel fires with rate ``rates[bit]``.
- Each of the ``n_windows`` windows is ``silent`` quiet steps, then ``active`` steps in which group 2
  fires at the rate of a fresh random bit.
- Target: ``XOR(first bit, window bit)`` on each active step of the window; every other step is
  unlabelled (-100). The task needs memory over the whole sample (slow) and of each window (fast).
- ``target="all_steps"`` (``MTSXORDataModule``; ``label_all_steps`` here) labels the *training* split as the
  authors' code does (``EIS-Hub/hSNN`` ``utils_dataset.py:335,353``): class 0 on the first ``first_steps``
  steps and the XOR on every step of each window, its silent steps included, so the loss runs over all
  ``T`` steps. Validation and test keep the active-step labels: accuracy is measured on the 60 active steps,
  as theirs (``training.py:188-195``).

A sample is ``x`` ``(T, 2·channels_per_group)`` and ``y`` ``(T,)``; batches are time-major.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_int
from lightning_snn.data.collate import IGNORE_INDEX


def generate_mtsxor(
    n_samples: int,
    seed: int,
    channels_per_group: int = 20,
    first_steps: int = 10,
    n_windows: int = 6,
    silent: int = 5,
    active: int = 10,
    rates: tuple[float, float] = (0.2, 0.6),
    noise: float = 0.01,
    label_all_steps: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``x (N, T, 2C)``, ``y (N, T)``, ``first_bit (N,)`` and ``window_bits (N, n_windows)``.

    ``label_all_steps`` labels every step (see the module docstring) instead of the active steps only."""
    gen = torch.Generator().manual_seed(seed)
    c = channels_per_group
    steps = first_steps + n_windows * (silent + active)
    rate = torch.tensor(rates)
    first = torch.randint(0, 2, (n_samples,), generator=gen)
    windows = torch.randint(0, 2, (n_samples, n_windows), generator=gen)
    p = torch.zeros(n_samples, steps, 2 * c)
    y = torch.full((n_samples, steps), 0 if label_all_steps else IGNORE_INDEX, dtype=torch.long)
    p[:, :first_steps, :c] = rate[first][:, None, None]
    for w in range(n_windows):
        start = first_steps + w * (silent + active) + silent
        p[:, start : start + active, c:] = rate[windows[:, w]][:, None, None]
        labelled = start - silent if label_all_steps else start
        y[:, labelled : start + active] = (first ^ windows[:, w])[:, None]
    x = torch.bernoulli(p, generator=gen)
    # Background noise adds to the coding rate: a channel fires if either process fires.
    x = torch.maximum(x, torch.bernoulli(torch.full_like(p, noise), generator=gen))
    return x, y, first, windows


TARGETS = ("active", "all_steps")


class MTSXORDataModule(SplitDataModule):
    """Seeded train/val/test splits of Multi-Time-Scale XOR (see the module docstring).

    ``target="active"`` (default) labels the active steps of every split; ``"all_steps"`` labels every step
    of the training split as the hSNN code does, validation and test staying on the active steps.
    """

    n_inputs = 40
    num_classes = 2

    def __init__(
        self,
        *,
        n_train: int = 4096,
        n_val: int = 1024,
        n_test: int = 1024,
        batch_size: int = 256,
        seed: int = 0,
        channels_per_group: int = 20,
        noise: float = 0.01,
        target: str = "active",
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            check_int(self, name, value, 1)
        check_int(self, "channels_per_group", channels_per_group, 1)
        check_fraction(self, "noise", noise)
        if target not in TARGETS:
            raise ValueError(
                f"MTSXORDataModule: got target={target!r}; expected one of {TARGETS} ('active': labels on the "
                "active steps only; 'all_steps': every training step labelled, as EIS-Hub/hSNN)."
            )
        self.n_inputs = 2 * channels_per_group

    def build_splits(self) -> dict[str, TensorDataset]:
        hp = self.hparams
        splits = {}
        for offset, (split, n) in enumerate({"train": hp.n_train, "val": hp.n_val, "test": hp.n_test}.items()):
            all_steps = split == "train" and hp.get("target", "active") == "all_steps"
            x, y, _, _ = generate_mtsxor(
                n, hp.seed * 3 + offset, hp.channels_per_group, noise=hp.noise, label_all_steps=all_steps
            )
            splits[split] = TensorDataset(x, y)
        return splits
