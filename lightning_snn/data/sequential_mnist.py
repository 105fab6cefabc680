r"""Sequential and permuted sequential MNIST from the standard IDX files (no download).

Point ``data_dir`` at a folder holding the four files of http://yann.lecun.com/exdb/mnist/ (plain or
``.gz``)::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

IDX format: a 4-byte magic ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, then the data
(big-endian). Pixels become a sequence of ``T = 784 / pixels_per_step`` steps (see
:mod:`lightning_snn.data.sequential_digits`); ``permute=True`` gives psMNIST (``permutation="bitreversal"``:
the authors' pixel order). The last ``n_val``
training images (after a seeded shuffle) form the validation split; the test split is t10k.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lightning_snn.data.base import check_int, seeded_split
from lightning_snn.data.sequential_digits import SequentialImageDataModule, images_to_sequences

#: IDX type code → big-endian NumPy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def parse_idx(raw: bytes, where: str = "IDX data") -> np.ndarray:
    """Decode the bytes of one IDX file into an array of its declared shape and type."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{where} is not an IDX file: its magic number {raw[:4].hex() or '<empty>'} "
            "should start with two zero bytes (is it corrupt, or an HTML error page?)."
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(
            f"{where}: unknown IDX type code 0x{code:02x}; expected one of {[hex(c) for c in IDX_DTYPES]}."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{where}: truncated header ({len(raw)} bytes for {ndim} dimensions).")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{where}: header declares shape {shape} ({expected} data bytes) but the file holds "
            f"{len(raw) - header}; the file is truncated or corrupt, download it again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx_file(directory: Path, name: str) -> Path:
    """``directory/name`` or ``directory/name.gz``, with an error listing what was looked for."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file {name!r} not found in {directory}: looked for {name} and {name}.gz. Put the four standard "
        f"MNIST IDX files ({', '.join(f for pair in MNIST_FILES.values() for f in pair)}) in that folder."
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"Could not read {path}: {err}. The file is corrupt; download it again.") from err
    return parse_idx(raw, str(path))


def load_mnist_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,))`` of ``"train"`` or ``"test"``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST data_dir {str(directory)!r} is not a directory.")
    image_name, label_name = MNIST_FILES[split]
    label_path = find_idx_file(directory, label_name)
    images, labels = read_idx(find_idx_file(directory, image_name)), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"MNIST {split}: expected images (N, rows, cols) and labels (N,); got {images.shape} and {labels.shape}."
        )
    if len(images) != len(labels):
        raise ValueError(f"MNIST {split}: {len(images)} images but {len(labels)} labels; the files do not match.")
    bad = np.flatnonzero((labels < 0) | (labels >= 10))
    if bad.size:
        raise ValueError(
            f"MNIST label file {label_path}: label {labels[bad[0]]} at index {bad[0]} is out of range [0, 10) "
            f"({bad.size} bad labels); expected digits 0-9. Is this an MNIST label file? Replace it with the "
            f"standard {label_name}."
        )
    return images, labels


class SequentialMNISTDataModule(SequentialImageDataModule):
    """Sequential / permuted MNIST from local IDX files (see the module docstring)."""

    def __init__(
        self,
        *,
        data_dir: str,
        batch_size: int = 64,
        n_val: int = 5000,
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
        check_int(self, "n_val", n_val, 1)

    def prepare_data(self) -> None:
        """Check that the four IDX files are there (on rank zero, naming the missing one)."""
        for split in MNIST_FILES.values():
            for name in split:
                find_idx_file(Path(self.hparams.data_dir), name)

    def build_splits(self) -> dict[str, TensorDataset]:
        hp = self.hparams
        train_images, train_labels = load_mnist_split(hp.data_dir, "train")
        test_images, test_labels = load_mnist_split(hp.data_dir, "test")
        if hp.n_val >= len(train_labels):
            raise ValueError(
                f"SequentialMNISTDataModule: n_val={hp.n_val} leaves no training images out of {len(train_labels)}; "
                f"pass n_val < {len(train_labels)}."
            )
        perm = self.permutation(train_images[0].size)
        x_train = images_to_sequences(train_images, 255.0, perm, hp.pixels_per_step)
        y_train = torch.as_tensor(train_labels.astype(np.int64))
        val, train = seeded_split(len(y_train), [hp.n_val, None], self.seed)
        return {
            "train": TensorDataset(x_train[train], y_train[train]),
            "val": TensorDataset(x_train[val], y_train[val]),
            "test": TensorDataset(
                images_to_sequences(test_images, 255.0, perm, hp.pixels_per_step),
                torch.as_tensor(test_labels.astype(np.int64)),
            ),
        }
