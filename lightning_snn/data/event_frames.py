r"""N-MNIST, DVS128 Gesture and CIFAR10-DVS as time-major frame batches, read through tonic.

The recordings are read by tonic's own dataset classes (``tonic.datasets.NMNIST`` / ``DVSGesture`` /
``CIFAR10DVS``), in tonic's on-disk layout under ``<data_dir>/<Name>/``:

- N-MNIST: ``NMNIST/Train/<digit>/*.bin`` and ``NMNIST/Test/<digit>/*.bin`` (``train.zip`` / ``test.zip``);
- DVS Gesture: ``DVSGesture/ibmGestureTrain/userXX_<lighting>/<label>.npy`` (and ``ibmGestureTest``),
  tonic's preprocessed ``ibmGesture{Train,Test}.tar.gz``;
- CIFAR10-DVS: ``CIFAR10DVS/<class>/*.aedat4`` (``CIFAR10DVS.zip``; reading needs ``pip install aedat``).

tonic's presence check (the archive must be there and e.g. ≥ 10000 ``.bin`` files) is replaced by
"the extracted folder holds at least one recording", and its download by one that only runs with
``download=True`` in ``prepare_data`` and raises :class:`~lightning_snn.data.download.MissingDataError`
otherwise. Each recording becomes ``(T, P, H, W)`` frames through :class:`~lightning_snn.data.events.EventFrames`
(tonic ``Downsample``, then ``T`` equal time bins, or with ``split_by="number"`` ``T`` slices of equal
event counts as PLIF's runs; T = 10 / 20 / 20 as in PLIF, Fang et al. 2021), cached on disk when
``cache_dir`` is set (a relative ``cache_dir`` lies inside ``data_dir``). Batches are
``(x (T, B, P, H, W), y (B,))``. Validation is a seeded
``val_fraction`` of train (``val_fraction=0``: the test set, as PLIF reports best test accuracy).
CIFAR10-DVS has one folder: its test set is a seeded ``test_fraction`` (``test_split="seeded"``) or, as
PLIF (SpikingJelly's ``CIFAR10DVS(split_ratio=0.9)``), the last ``test_fraction`` of every class's
recordings in file-number order (``test_split="per_class_last"``: files 900-999 of each class).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import tonic
from torch.utils.data import Dataset, Subset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_fraction_sum, seeded_split
from lightning_snn.data.cache import CachedFrames, UncachedFrames, files_fingerprint
from lightning_snn.data.download import (
    MissingDataError,
    is_local_rank_zero,
    missing_message,
    resolve_cache_dir,
    user_dir,
)
from lightning_snn.data.events import EventFrames


class LocalFiles:
    """Mixin for a tonic dataset: present = extracted folder with >= 1 recording; download only if allowed.

    tonic has no public hook for its presence check: a dataset's ``__init__`` calls the private
    ``_check_exists()`` and, when it is false, ``download()``. Both are overridden here; the contract is
    pinned by ``test_seam_tonic_check_exists_is_called_by_dataset_init`` (tests/test_upstream_seams_data.py).

    When the folder is present, ``_check_exists`` also checks the layout (:meth:`layout_problem`) before
    tonic derives labels from folder and file names, so a misnamed folder or file raises a ``ValueError``
    naming it instead of being mislabelled (tonic labels N-MNIST by the last character of the folder
    name). Each recording is checked (:meth:`check_recording`) before tonic reads it.
    """

    allow_download = False
    recording_suffix = ""
    layout = ""  # the expected layout under the folder, for error messages

    def _check_exists(self) -> bool:
        folder = Path(self.location_on_system, self.folder_name)
        present = next(folder.glob(f"**/*{self.recording_suffix}"), None) is not None
        if present:
            self.check_layout(folder)
        return present

    def check_layout(self, folder: Path) -> None:
        """Raise ``ValueError`` on the first folder or file that tonic would mislabel or fail on."""
        for dirpath, dirs, files in os.walk(folder):
            dirs.sort()
            rel = Path(dirpath).relative_to(folder)
            for name in sorted(files):
                if name.endswith(self.recording_suffix.lstrip(".")):  # what tonic's walk picks up
                    problem = self.layout_problem(rel, name)
                    if problem:
                        raise ValueError(
                            f"{type(self).__name__}: recording {Path(dirpath, name)}: {problem}. Expected layout: "
                            f"{folder}/{self.layout}. Rename it to follow that layout, or move it out of {folder}."
                        )

    def layout_problem(self, rel: Path, name: str) -> str | None:
        return None

    def check_recording(self, path: Path) -> None:
        """Raise ``ValueError`` naming ``path`` if the recording cannot be read whole."""

    def __getitem__(self, index: int):
        path = Path(self.data[index])
        self.check_recording(path)
        try:
            return super().__getitem__(index)
        except ImportError:
            raise
        except Exception as err:
            raise ValueError(
                f"{type(self).__name__}: recording {path} cannot be read ({type(err).__name__}: {err}); it is "
                f"truncated or corrupt. Extract it again from {self.filename}, or move it out of the dataset folder."
            ) from err

    def _missing(self, reason: str = "") -> MissingDataError:
        root = Path(self.location_on_system)
        what = f"{self.folder_name or '.'}/ (folder of *{self.recording_suffix} recordings, from {self.filename})"
        return MissingDataError(
            missing_message(type(self).__name__, what, [root / self.folder_name], self.url, root, reason)
        )

    def download(self) -> None:
        if not self.allow_download:
            raise self._missing()
        try:
            super().download()
        except Exception as err:
            raise self._missing(repr(err)) from err


class NMNIST(LocalFiles, tonic.datasets.NMNIST):
    recording_suffix = ".bin"
    layout = "<digit 0-9>/<name>.bin"
    event_bytes = 5

    def layout_problem(self, rel: Path, name: str) -> str | None:
        if len(rel.parts) != 1 or rel.parts[0] not in [str(d) for d in range(10)]:
            return (
                f"its folder {str(rel)!r} is not one of the class folders '0'...'9' (tonic would label it by the "
                "last character of the folder name)"
            )
        if not name.endswith(".bin"):
            return f"file name {name!r} does not end in '.bin'"
        return None

    def check_recording(self, path: Path) -> None:
        size = path.stat().st_size
        if size % self.event_bytes:
            raise ValueError(
                f"NMNIST: recording {path}: size {size} bytes is not a multiple of {self.event_bytes} (one event is "
                f"5 bytes: x, y, polarity|t[22:16], t[15:8], t[7:0]); the last event is cut after {size % 5} bytes, "
                f"so the file is truncated or corrupt. Extract it again from {self.filename}."
            )


class DVSGesture(LocalFiles, tonic.datasets.DVSGesture):
    recording_suffix = ".npy"
    layout = "user<NN>_<lighting>/<label 0-10>.npy"
    user_pattern = re.compile(r"user\d+_[^/]+")
    label_pattern = re.compile(r"\d+\.npy")

    def layout_problem(self, rel: Path, name: str) -> str | None:
        if rel == Path("."):
            return None  # tonic reads only the user folders
        if len(rel.parts) != 1 or not self.user_pattern.fullmatch(rel.parts[0]):
            return f"its folder {str(rel)!r} is not a user folder named like 'user01_fluorescent'"
        if not self.label_pattern.fullmatch(name):  # the label range is checked with the other labels
            return f"file name {name!r} is not '<label>.npy' (a whole-number label, e.g. '3.npy')"
        return None

    def check_recording(self, path: Path) -> None:
        check_npy_events(path, columns=4, expected="(N, 4) integer array with columns x, y, p, t (ms)")


class CIFAR10DVS(LocalFiles, tonic.datasets.CIFAR10DVS):
    recording_suffix = ".aedat4"
    layout = "<class>/<name>.aedat4 (class one of airplane, automobile, ..., truck)"

    def layout_problem(self, rel: Path, name: str) -> str | None:
        if len(rel.parts) != 1 or rel.parts[0] not in self.classes:
            return f"its folder {str(rel)!r} is not one of the class folders {sorted(self.classes)}"
        return None


#: How :class:`CIFAR10DVSDataModule` holds out its test set.
TEST_SPLITS = ("seeded", "per_class_last")


def file_number(path: str) -> tuple[int, str]:
    """Sort key: the last whole number in the file name (``cifar10_cat_12.aedat4`` → 12), then the name."""
    numbers = re.findall(r"\d+", Path(path).stem)
    return (int(numbers[-1]) if numbers else -1, Path(path).name)


def per_class_last(paths, labels, fraction: float) -> np.ndarray:
    """Indices of the last ``fraction`` of each class's recordings in file-number order: SpikingJelly's
    ``CIFAR10DVS(split_ratio=1 - fraction)``, which trains on files ``0 .. int(split_ratio·n) - 1`` of each
    class and tests on the rest (PLIF: ``split_ratio=0.9``, files 900-999 of 1000)."""
    labels = np.asarray(labels)
    test = []
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda i: file_number(str(paths[i])))
        n_train = int(round((1 - fraction) * len(members), 9))  # int(split_ratio * n), robust to 0.9 * n rounding
        test.extend(members[n_train:])
    return np.asarray(sorted(test), dtype=np.int64)


def check_npy_events(path: Path, columns: int, expected: str) -> None:
    """Check the header and size of an ``.npy`` event array without reading its data."""
    fmt = np.lib.format
    size = path.stat().st_size
    fix = "Extract it again from the dataset's archive, or move it out of the dataset folder."
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except (ValueError, EOFError, OSError) as err:
        what = "empty (0 bytes)" if size == 0 else f"not a NumPy .npy file ({err})"
        raise ValueError(f"recording {path}: the file is {what}; expected a {expected}. {fix}") from err
    if dtype.hasobject:
        raise ValueError(
            f"recording {path}: dtype {dtype} holds Python objects (a pickled array), which are never loaded; "
            f"expected a {expected}. {fix}"
        )
    if len(shape) != 2 or shape[1] != columns or dtype.kind not in "iuf":
        raise ValueError(f"recording {path}: array of shape {shape} and dtype {dtype}; expected a {expected}. {fix}")
    needed = offset + int(np.prod(shape)) * dtype.itemsize
    if size != needed:
        why = "truncated" if size < needed else "followed by extra bytes"
        raise ValueError(
            f"recording {path}: its header declares shape {shape} ({needed} bytes) but the file has {size} bytes: "
            f"it is {why}. {fix}"
        )


class FramesSource:
    """``index → (T, P, H, W)`` frames of a tonic dataset (picklable, for DataLoader workers)."""

    def __init__(self, dataset, transform: EventFrames) -> None:
        self.dataset, self.transform = dataset, transform

    def __call__(self, index: int) -> np.ndarray:
        events, _ = self.dataset[index]
        return self.transform(events, where=str(self.dataset.data[index]))


class EventFramesDataModule(SplitDataModule):
    """Shared logic of the camera-event DataModules (see the module docstring).

    Reads its settings from ``self.hparams``, the keyword arguments of the subclass: ``data_dir``,
    ``n_time_bins``, ``spatial_factor``, ``val_fraction``, ``test_fraction`` (only with one folder for all
    recordings), ``download`` and ``cache_dir``.
    """

    tonic_class: type = NMNIST
    num_classes = 10
    file_splits: tuple[str, ...] = ("train", "test")

    def __init__(self, *, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        hp = self.hparams
        self.val_fraction = check_fraction(self, "val_fraction", hp.val_fraction)
        self.test_fraction = check_fraction(self, "test_fraction", hp.get("test_fraction", 0.0))
        check_fraction_sum(self, {"val_fraction": self.val_fraction, "test_fraction": self.test_fraction})
        self.transform = EventFrames(
            self.tonic_class.sensor_size, hp.n_time_bins, hp.spatial_factor, hp.get("split_by", "time")
        )
        self.data_dir = user_dir(hp.data_dir or ".")
        self.cache_dir = resolve_cache_dir(self.data_dir, hp.cache_dir)
        self.download = hp.download
        t, p, h, w = self.transform.output_shape()
        self.frame_shape = (p, h, w)

    def tonic_dataset(self, file_split: str, allow_download: bool = False):
        cls = self.tonic_class
        kwargs = {} if file_split == "all" else {"train": file_split == "train"}
        dataset = cls.__new__(cls)
        dataset.allow_download = allow_download  # read by LocalFiles.download during tonic's __init__
        cls.__init__(dataset, str(self.data_dir), **kwargs)
        return dataset

    def prepare_data(self) -> None:
        """Download missing recordings (only with ``download=True``), then fill the frame cache."""
        for file_split in self.file_splits:
            self.tonic_dataset(file_split, allow_download=self.download and is_local_rank_zero())
        if self.cache_dir is not None:
            for file_split in self.file_splits:
                self.frames(file_split).warm()

    def frames(self, file_split: str) -> Dataset:
        dataset = self.tonic_dataset(file_split)
        labels = np.asarray(dataset.targets, dtype=np.int64)
        bad = np.flatnonzero((labels < 0) | (labels >= self.num_classes))
        if bad.size:
            raise ValueError(
                f"{type(self).__name__}: label {labels[bad[0]]} of {dataset.data[bad[0]]} is out of range "
                f"[0, {self.num_classes}); check the folder layout under {dataset.location_on_system}."
            )
        source = FramesSource(dataset, self.transform)
        if self.cache_dir is None:
            return UncachedFrames(source, labels)
        expected = self.transform.output_shape()
        check = lambda f: None if f.shape == expected else f"shape {f.shape}, expected {expected}"  # noqa: E731
        folder = Path(dataset.location_on_system, dataset.folder_name)
        return CachedFrames(
            source,
            labels,
            self.cache_dir,
            self.tonic_class.__name__,
            file_split,
            self.transform,
            check,
            source_id=files_fingerprint(folder, dataset.data),  # the folder and every recording's stat
        )

    def build_splits(self) -> dict[str, Dataset]:
        if "test" in self.file_splits:
            train, val = self.split(self.frames("train"), [None, self.val_fraction])
            test = self.frames("test")
        else:
            train, val, test = self.split(self.frames("all"), [None, self.val_fraction, self.test_fraction])
        return {"train": train, "val": val if len(val) else test, "test": test}


class NMNISTDataModule(EventFramesDataModule):
    """N-MNIST (Orchard et al. 2015): 34×34×2 sensor, 10 classes, T = 10 frames as in PLIF."""

    tonic_class = NMNIST

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_time_bins: int = 10,
        spatial_factor: float = 1.0,
        split_by: str = "time",
        batch_size: int = 16,
        val_fraction: float = 0.1,
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        # the other arguments reach EventFramesDataModule through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)


class DVSGestureDataModule(EventFramesDataModule):
    """DVS128 Gesture (Amir et al. 2017): 128×128×2 sensor, 11 classes, T = 20 frames as in PLIF."""

    tonic_class = DVSGesture
    num_classes = 11

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_time_bins: int = 20,
        spatial_factor: float = 1.0,
        split_by: str = "time",
        batch_size: int = 16,
        val_fraction: float = 0.1,
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        # the other arguments reach EventFramesDataModule through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)


class CIFAR10DVSDataModule(EventFramesDataModule):
    """CIFAR10-DVS (Li et al. 2017): 128×128×2, 10 classes, T = 20; one folder, held-out test set by ``test_split``
    (``"seeded"`` or PLIF's ``"per_class_last"``), seeded validation split of the rest."""

    tonic_class = CIFAR10DVS
    file_splits = ("all",)

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_time_bins: int = 20,
        spatial_factor: float = 1.0,
        split_by: str = "time",
        batch_size: int = 16,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        test_split: str = "seeded",
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        # the other arguments reach EventFramesDataModule through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if test_split not in TEST_SPLITS:
            raise ValueError(
                f"CIFAR10DVSDataModule: got test_split={test_split!r}; expected one of {TEST_SPLITS} (a seeded random "
                "test_fraction, or the last test_fraction of each class's recordings in file-number order as PLIF)."
            )

    def build_splits(self) -> dict[str, Dataset]:
        if self.hparams.test_split == "seeded":
            return super().build_splits()
        frames = self.frames("all")
        dataset = self.tonic_dataset("all")
        test = per_class_last(dataset.data, dataset.targets, self.test_fraction)
        rest = np.setdiff1d(np.arange(len(frames)), test)
        train, val = (
            Subset(frames, rest[part].tolist())
            for part in seeded_split(len(rest), [None, self.val_fraction], self.seed)
        )
        test_set = Subset(frames, test.tolist())
        return {"train": train, "val": val if len(val) else test_set, "test": test_set}

    def frames(self, file_split: str) -> Dataset:
        if importlib.util.find_spec("aedat") is None:
            raise ImportError(
                "CIFAR10-DVS .aedat4 recordings are read by tonic through the 'aedat' package: pip install aedat"
            )
        return super().frames(file_split)
