r"""MNIST, Fashion-MNIST and CIFAR-10 as static images for direct encoding (PLIF, Fang et al. 2021, paper B).

Point ``data_dir`` at the standard files (no download here):

- MNIST / Fashion-MNIST: the four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (plain or ``.gz``), read by
  :func:`lightning_snn.data.sequential_mnist.load_mnist_split`;
- CIFAR-10: the python version's batch files ``data_batch_1`` … ``data_batch_5`` and ``test_batch``
  (the folder ``cifar-10-batches-py`` of ``cifar-10-python.tar.gz``): pickled dicts with ``data``
  (``N × 3072`` uint8, the red, green and blue planes of 32×32 row-major) and ``labels``. The pickles are
  read by an unpickler that only rebuilds NumPy arrays, lists and dicts, never other Python objects.

Each sample is one image ``(1, C, H, W)`` (a time axis of one step: the network's encoder runs once and
repeats its output ``n_steps`` times, :class:`~lightning_snn.models.static_image_snn.StaticImageSNN`),
normalised as ``codes/models.py:get_transforms`` (lines 173-209):

.. math::
    x = (p / 255 - \mu) / \sigma, \quad (\mu, \sigma) = (0.1307, 0.3081)\ \text{MNIST},\
    (0.2860, 0.3530)\ \text{F-MNIST},\ ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))\ \text{CIFAR-10}.

``augment=True`` applies CIFAR-10's training augmentation (random 32×32 crop of the image zero-padded by
4, then a horizontal flip with probability 1/2, before normalising, as torchvision's ``RandomCrop(32,
padding=4)`` and ``RandomHorizontalFlip()``). MNIST's ``RandomAffine`` is not implemented (see
``docs/fidelity/plif.md``). Validation: a seeded ``val_fraction`` of train; ``val_fraction=0`` (default)
validates on the test set, as PLIF's accuracy-A (best test accuracy, ``codes/train.py``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_snn.data.base import SplitDataModule, check_fraction, seeded_split
from lightning_snn.data.sequential_mnist import MNIST_FILES, find_idx_file, load_mnist_split

#: Per-channel (mean, std) of ``codes/models.py:get_transforms``.
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CIFAR10_HELP = (
    "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it; pass the "
    "folder cifar-10-batches-py as data_dir."
)


class ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR-10 batch files: only the globals a pickled NumPy array needs (``_codecs.encode``
    rebuilds the array's bytes in protocol-2 pickles written by Python 3)."""

    allowed = {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"the pickle refers to {module}.{name}, which is never loaded")
        return super().find_class(module, name)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3, 32, 32) uint8, labels (N,) int64)`` of one CIFAR-10 python batch file."""
    fix = f"Replace {path.name} with the file from cifar-10-python.tar.gz. {CIFAR10_HELP}"
    try:
        batch = ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as err:  # truncated, not a pickle, or a pickle of other objects
        raise ValueError(f"CIFAR-10 batch file {path} cannot be read ({type(err).__name__}: {err}). {fix}") from err
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR-10 batch file {path} holds a {type(batch).__name__}; expected a dict. {fix}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"CIFAR-10 batch file {path} has keys {sorted(batch)}; expected 'data' and 'labels'. {fix}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(
            f"CIFAR-10 batch file {path}: data {data.dtype} {data.shape} and labels {labels.shape}; expected uint8 "
            f"data (N, 3072) and N labels. {fix}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"CIFAR-10 batch file {path}: labels in [{labels.min()}, {labels.max()}], expected 0-9. {fix}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3, 32, 32) uint8, labels (N,))`` of ``"train"`` (the 5 data batches) or ``"test"``."""
    directory = Path(directory)
    missing = [name for name in CIFAR10_FILES[split] if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 files {missing} not found in {directory}. {CIFAR10_HELP}")
    parts = [read_cifar10_batch(directory / name) for name in CIFAR10_FILES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_static_split(dataset: str, directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, C, H, W) uint8, labels (N,) int64)`` of ``dataset`` (see :data:`NORMALISATION`)."""
    if dataset == "cifar10":
        return load_cifar10_split(directory, split)
    images, labels = load_mnist_split(directory, split)
    return images[:, None], labels.astype(np.int64)


class StaticImages(Dataset):
    """``index → (image (1, C, H, W) float32, label)``, normalised, with CIFAR-10's crop and flip if ``augment``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, augment: bool = False) -> None:
        self.images, self.labels, self.augment = torch.tensor(images), torch.tensor(labels), augment
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.augment:
            image = crop_and_flip(image)
        x = (image.float() / 255 - self.mean) / self.std
        return x[None], self.labels[index]


def crop_and_flip(image: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """A random ``H×W`` crop of ``image`` ``(C, H, W)`` zero-padded by ``padding``, flipped left-right with
    probability 1/2 (torchvision's ``RandomCrop(size, padding)`` then ``RandomHorizontalFlip()``)."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    top, left = (int(v) for v in torch.randint(0, 2 * padding + 1, (2,)))
    out = padded[:, top : top + h, left : left + w]
    return out.flip(-1) if torch.rand(()) < 0.5 else out


class StaticImageDataModule(SplitDataModule):
    """MNIST, Fashion-MNIST or CIFAR-10 from local files as one-step image batches ``(1, B, C, H, W)``
    (see the module docstring)."""

    def __init__(
        self,
        *,
        dataset: str = "mnist",
        data_dir: str = "data/MNIST",
        batch_size: int = 16,
        val_fraction: float = 0.0,
        augment: bool = False,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if dataset not in NORMALISATION:
            raise ValueError(
                f"StaticImageDataModule: got dataset={dataset!r}; expected one of {sorted(NORMALISATION)}."
            )
        self.val_fraction = check_fraction(self, "val_fraction", val_fraction)
        self.dataset = dataset

    def prepare_data(self) -> None:
        """Check that the files are there (naming the missing one); nothing is downloaded."""
        directory = Path(self.hparams.data_dir)
        if self.dataset == "cifar10":
            for split in CIFAR10_FILES:
                missing = [n for n in CIFAR10_FILES[split] if not (directory / n).is_file()]
                if missing:
                    raise FileNotFoundError(f"CIFAR-10 files {missing} not found in {directory}. {CIFAR10_HELP}")
        else:
            for pair in MNIST_FILES.values():
                for name in pair:
                    find_idx_file(directory, name)

    def build_splits(self) -> dict[str, Dataset]:
        hp = self.hparams
        mean, std = NORMALISATION[self.dataset]
        train_images, train_labels = load_static_split(self.dataset, hp.data_dir, "train")
        test_images, test_labels = load_static_split(self.dataset, hp.data_dir, "test")
        train_idx, val_idx = self.split_indices(len(train_labels))
        augment = hp.augment
        test = StaticImages(test_images, test_labels, mean, std)
        train = StaticImages(train_images[train_idx], train_labels[train_idx], mean, std, augment)
        val = StaticImages(train_images[val_idx], train_labels[val_idx], mean, std)
        return {"train": train, "val": val if len(val) else test, "test": test}

    def split_indices(self, n: int) -> tuple[list[int], list[int]]:
        train, val = seeded_split(n, [None, self.val_fraction], self.seed)
        return sorted(train), sorted(val)
