r"""``RawHDDataModule``: Raw Heidelberg Digits as Mészáros, Knight & Nowotny 2024 feed it to their network.

Their loader (``mbalazs98/spatiotemporal`` datasets.py:20-35) reads four NumPy arrays from one folder,

- ``training_x_data.npy`` / ``testing_x_data.npy``: float arrays ``(N, T, C)``, 40 channels per time step;
- ``training_y_data.npy`` / ``testing_y_data.npy``: integer class labels ``(N,)`` in ``[0, 20)``,

and multiplies the inputs by 20 (:math:`x = 20\,x_{file}`, ``input_scale``). The arrays are the output of
the authors' preprocessing of the Heidelberg Digits audio, which their repository does not contain: put
the four files in ``<data_dir>/RawHD/`` (or ``<data_dir>/``). Every sample already has the same length
``T``, so batches carry no ``lengths``.

Splits: ``train`` is the training arrays (minus a seeded ``val_fraction``), ``test`` the testing arrays. The
authors have no validation split and select on the test set; ``val_fraction=0`` does the same (``val`` is
then the test set; say so when you report). Arrays are memory-mapped (``mmap_mode="r"``), not copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_int
from lightning_snn.data.download import MissingDataError, user_dir

FILES = {
    "train": ("training_x_data.npy", "training_y_data.npy"),
    "test": ("testing_x_data.npy", "testing_y_data.npy"),
}
SOURCE = "the authors' preprocessing of Heidelberg Digits (read by mbalazs98/spatiotemporal datasets.py)"


class RawHDArrays(Dataset):
    """``(x (T, C) float32 · input_scale, y int64)`` pairs from one ``x`` / ``y`` array pair."""

    def __init__(self, x: np.ndarray, y: np.ndarray, input_scale: float) -> None:
        self.x, self.y, self.input_scale = x, y, float(input_scale)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.asarray(self.x[index], dtype=np.float32) * np.float32(self.input_scale))
        return x, torch.tensor(int(self.y[index]))


class RawHDDataModule(SplitDataModule):
    """Raw Heidelberg Digits from the authors' ``.npy`` arrays (see the module docstring).

    :param data_dir: folder holding ``RawHD/`` (or the four files themselves).
    :param n_channels: channels per step the arrays must have (the authors' network takes 40).
    :param input_scale: factor on the inputs (the authors' ``* 20``).
    :param val_fraction: seeded fraction of the training arrays held out for validation; 0 validates on the
        test arrays, as the authors do.
    """

    name = "RawHD"
    num_classes = 20

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_channels: int = 40,
        input_scale: float = 20.0,
        val_fraction: float = 0.1,
        batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.n_inputs = check_int(self, "n_channels", n_channels, 1)
        self.val_fraction = check_fraction(self, "val_fraction", val_fraction)
        if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or not np.isfinite(input_scale):
            raise ValueError(f"RawHDDataModule: got input_scale={input_scale!r}; expected a finite number (e.g. 20).")
        self.input_scale = float(input_scale)
        self.data_dir = user_dir(data_dir) or Path(".")

    def search_dirs(self) -> list[Path]:
        return [self.data_dir / self.name, self.data_dir]

    def find(self, filename: str) -> Path:
        """The path of ``filename`` in :meth:`search_dirs`; ``MissingDataError`` saying where to put it if absent."""
        for directory in self.search_dirs():
            if (directory / filename).is_file():
                return directory / filename
        searched = ", ".join(str(d) for d in self.search_dirs())
        raise MissingDataError(
            f"RawHDDataModule: file {filename!r} not found (searched: {searched}). RawHD is not downloadable: the "
            f"arrays {[f for pair in FILES.values() for f in pair]} come from {SOURCE}. Put them in "
            f"{self.data_dir / self.name}/ or pass --data.init_args.data_dir with the folder that holds them."
        )

    def load(self, split: str) -> RawHDArrays:
        """The arrays of ``split`` (``"train"`` or ``"test"``), checked: ``x (N, T, n_channels)``, ``y (N,)`` ints."""
        x_name, y_name = FILES[split]
        x_path, y_path = self.find(x_name), self.find(y_name)
        x, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        if x.ndim != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(
                f"RawHDDataModule: {x_path} has shape {x.shape}; expected (samples, steps, {self.n_inputs}). "
                "Check the file, or pass n_channels with its number of channels."
            )
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"RawHDDataModule: {y_path} has shape {y.shape} and dtype {y.dtype}; expected {len(x)} integer "
                f"labels (one per sample of {x_path.name})."
            )
        if len(y) and not (0 <= int(y.min()) and int(y.max()) < self.num_classes):
            raise ValueError(
                f"RawHDDataModule: {y_path} has labels in [{int(y.min())}, {int(y.max())}]; expected [0, "
                f"{self.num_classes})."
            )
        return RawHDArrays(x, y, self.input_scale)

    def build_splits(self) -> dict[str, Dataset]:
        train, test = self.load("train"), self.load("test")
        if self.val_fraction == 0:
            return {"train": train, "val": test, "test": test}
        train_part, val_part = self.split(train, [None, self.val_fraction])
        return {"train": train_part, "val": val_part, "test": test}


def write_rawhd(directory: str | Path, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> None:
    """Write ``x[split]`` ``(N, T, C)`` and ``y[split]`` ``(N,)`` (split: train, test) in the authors' layout."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, (x_name, y_name) in FILES.items():
        np.save(directory / x_name, np.asarray(x[split], dtype=np.float32))
        np.save(directory / y_name, np.asarray(y[split], dtype=np.int64))
