r"""Sequential (and permuted sequential) images: one pixel per time step.

An image of :math:`P` pixels becomes a sequence ``x`` ``(T = P / pixels_per_step, pixels_per_step)`` read in
raster order, or, with ``permute=True``, in one fixed order :math:`\pi` drawn from ``permutation_seed`` and
shared by every sample (the permuted-sequential-MNIST protocol of Le et al. 2015, used by P-SpikeSSM).
Batches are time-major ``(T, B, pixels_per_step)`` with labels ``(B,)``.

:class:`SequentialDigitsDataModule` uses scikit-learn's bundled 8×8 digits (1797 images, 10 classes,
``T = 64``; no download): the sequential-MNIST analogue that trains on a CPU in minutes. Its
train/val/test split is a seeded random permutation of the 1797 images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_snn.data.loaders import SplitDataModule, time_major_loader


def pixel_permutation(n_pixels: int, seed: int) -> torch.Tensor:
    """The fixed pixel order of the permuted task (the same for every sample and split)."""
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(seed))


def images_to_sequences(
    images: np.ndarray | torch.Tensor, scale: float, permutation: torch.Tensor | None, pixels_per_step: int = 1
) -> torch.Tensor:
    """``(N, H, W)`` (or ``(N, P)``) images → float sequences ``(N, P / pixels_per_step, pixels_per_step)``."""
    flat = torch.from_numpy(np.asarray(images).reshape(len(images), -1).astype(np.float32)) / scale
    if permutation is not None:
        flat = flat[:, permutation]
    if flat.shape[1] % pixels_per_step:
        raise ValueError(
            f"pixels_per_step={pixels_per_step} does not divide the {flat.shape[1]} pixels of an image; "
            "choose a divisor (1 gives one pixel per step)."
        )
    return flat.reshape(len(flat), -1, pixels_per_step)


class SequentialImageDataModule(SplitDataModule):
    """Shared loaders of sequential-image tasks; subclasses fill ``self.splits`` in ``setup``."""

    num_classes = 10

    def __init__(
        self, batch_size: int, permute: bool, permutation_seed: int, pixels_per_step: int, num_workers: int
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size must be >= 1, got {batch_size}.")
        if pixels_per_step < 1:
            raise ValueError(f"{type(self).__name__}: pixels_per_step must be >= 1, got {pixels_per_step}.")
        self.n_inputs = pixels_per_step
        self.splits: dict[str, TensorDataset] = {}

    def permutation(self, n_pixels: int) -> torch.Tensor | None:
        return pixel_permutation(n_pixels, self.hparams.permutation_seed) if self.hparams.permute else None

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            self.setup()
        return time_major_loader(self.splits[split], self.hparams.batch_size, shuffle, self.hparams.num_workers)


class SequentialDigitsDataModule(SequentialImageDataModule):
    """Sequential 8×8 digits, ``T = 64`` (see the module docstring)."""

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        permute: bool = False,
        permutation_seed: int = 0,
        pixels_per_step: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, permute, permutation_seed, pixels_per_step, num_workers)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"SequentialDigitsDataModule: need 0 < val_fraction, test_fraction and val_fraction + test_fraction "
                f"< 1; got val_fraction={val_fraction}, test_fraction={test_fraction}."
            )
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        hp = self.hparams
        x = images_to_sequences(digits.images, 16.0, self.permutation(64), hp.pixels_per_step)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(hp.seed))
        n_test, n_val = round(hp.test_fraction * len(y)), round(hp.val_fraction * len(y))
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
        self.splits = {split: TensorDataset(x[idx], y[idx]) for split, idx in parts.items()}
