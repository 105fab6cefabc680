r"""Sequential (and permuted sequential) images: one pixel per time step.

An image of :math:`P` pixels becomes a sequence ``x`` ``(T = P / pixels_per_step, pixels_per_step)`` read in
raster order, or, with ``permute=True``, in one fixed order :math:`\pi` shared by every sample (the
permuted-sequential-MNIST protocol of Le et al. 2015): ``permutation="random"`` draws :math:`\pi` from
``permutation_seed``; ``permutation="bitreversal"`` is the order of the S4 / P-SpikeSSM code
(``src/utils/permutations.py`` ``bitreversal_permutation``: the bit-reversal permutation of
:math:`2^{\lceil \log_2 P \rceil}` indices, keeping those below :math:`P`).
Batches are time-major ``(T, B, pixels_per_step)`` with labels ``(B,)``.

:class:`SequentialDigitsDataModule` uses scikit-learn's bundled 8×8 digits (1797 images, 10 classes,
``T = 64``; no download): the sequential-MNIST analogue that trains on a CPU in minutes. Its
train/val/test split is a seeded random permutation of the 1797 images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_fraction_sum, check_int, seeded_split

PERMUTATIONS = ("random", "bitreversal")


def pixel_permutation(n_pixels: int, seed: int) -> torch.Tensor:
    """The fixed pixel order of the permuted task (the same for every sample and split)."""
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(seed))


def bitreversal_permutation(n_pixels: int) -> torch.Tensor:
    """Bit-reversed indices of ``2**ceil(log2 n)``, keeping those below ``n`` (S4's ``bitreversal_permutation``)."""
    bits = max(1, (n_pixels - 1).bit_length())
    reversed_ = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits)]
    return torch.tensor([i for i in reversed_ if i < n_pixels])


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
    """Shared settings of sequential-image tasks; subclasses return their splits from ``build_splits``.

    Reads ``permute``, ``permutation``, ``permutation_seed`` and ``pixels_per_step`` from ``self.hparams``
    (the keyword arguments of the subclass).
    """

    num_classes = 10

    def __init__(self, *, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.n_inputs = check_int(self, "pixels_per_step", self.hparams.pixels_per_step, 1)
        kind = self.hparams.get("permutation", "random")
        if kind not in PERMUTATIONS:
            raise ValueError(
                f"{type(self).__name__}: unknown permutation {kind!r}; expected one of {PERMUTATIONS} "
                "('bitreversal' is the authors' psMNIST order)."
            )

    def permutation(self, n_pixels: int) -> torch.Tensor | None:
        """The fixed pixel order of ``permute=True`` (``None``: raster order)."""
        if not self.hparams.permute:
            return None
        if self.hparams.get("permutation", "random") == "bitreversal":
            return bitreversal_permutation(n_pixels)
        return pixel_permutation(n_pixels, self.hparams.permutation_seed)


class SequentialDigitsDataModule(SequentialImageDataModule):
    """Sequential 8×8 digits, ``T = 64`` (see the module docstring)."""

    def __init__(
        self,
        *,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        permute: bool = False,
        permutation_seed: int = 0,
        pixels_per_step: int = 1,
        num_workers: int = 0,
        permutation: str = "random",
    ) -> None:
        # permute, permutation, permutation_seed and pixels_per_step reach SequentialImageDataModule
        # through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.val_fraction = check_fraction(self, "val_fraction", val_fraction, zero_ok=False)
        self.test_fraction = check_fraction(self, "test_fraction", test_fraction, zero_ok=False)
        check_fraction_sum(self, {"val_fraction": val_fraction, "test_fraction": test_fraction})

    def build_splits(self) -> dict[str, TensorDataset]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = images_to_sequences(digits.images, 16.0, self.permutation(64), self.hparams.pixels_per_step)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        test, val, train = seeded_split(len(y), [self.test_fraction, self.val_fraction, None], self.seed)
        return {split: TensorDataset(x[idx], y[idx]) for split, idx in (("test", test), ("val", val), ("train", train))}
