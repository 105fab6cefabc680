r"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) (Cramer et al., IEEE TNNLS 2020).

Files: HDF5 ``shd_{train,test}.h5`` / ``ssc_{train,valid,test}.h5`` with ragged ``spikes/times``
(seconds), ``spikes/units`` (0–699) and ``labels`` — the format tonic's ``SHD``/``SSC`` read, in the same
place (``<data_dir>/SHD/`` or ``<data_dir>/SSC/``; ``<data_dir>/`` itself is searched too). Our reader
follows that format but opens the file lazily once per process (DataLoader worker) and closes it, and
checks keys, lengths and label ranges up front, naming the file and the key when something is wrong.

Each sample becomes counts ``(T, n_channels)`` (see :mod:`lightning_snn.data.events`):

- ``n_steps`` bins over ``duration`` seconds (``None``: the sample's own duration). Paper A (Moro et al.
  2024): 100 steps over 1.4 s, 700 channels.
- ``dt`` instead of ``n_steps``: the *raw* variant with fixed 10 ms bins and variable length
  (Hammouamri et al. 2024 and Mészáros et al. 2024 use dt = 10 ms, 700 → 140 channels); batches are
  zero-padded and carry ``lengths``.

``n_units`` (default 700, the Heidelberg cochlea's channel count) is the number of units in the file; files
written by :func:`write_heidelberg_file` with another count (e.g. from
:class:`~lightning_snn.data.audio.audio_folder.AudioFolderDataModule`) record it and are refused with another
``n_units``.
A relative ``cache_dir`` is a folder inside ``data_dir`` (see :func:`~lightning_snn.data.download.resolve_cache_dir`).

Batches are time-major ``(x (T, B, C), y (B,)[, lengths (B,)])``. The validation set is a seeded
``val_fraction`` of train for SHD (``val_fraction=0`` validates on the test file, as the DCLS-delays
code does: only for comparison with published numbers); SSC has its own ``ssc_valid.h5``.
"""

from __future__ import annotations

import multiprocessing.util
import os
from pathlib import Path

import h5py
import numpy as np
from torch.utils.data import Dataset

from lightning_snn.data.base import SplitDataModule, check_fraction, check_int
from lightning_snn.data.cache import CachedFrames, UncachedFrames
from lightning_snn.data.download import (
    MissingDataError,
    fetch,
    is_local_rank_zero,
    locate,
    missing_message,
    resolve_cache_dir,
    user_dir,
)
from lightning_snn.data.events import SpikeTrainBinning

KEYS = ("spikes/times", "spikes/units", "labels")


class HeidelbergFile:
    """Lazy, fork-safe reader of one SHD/SSC HDF5 file; validated when constructed."""

    def __init__(self, path: str | os.PathLike, num_classes: int, n_units: int | None = None) -> None:
        self.path, self.num_classes = Path(path), num_classes
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        with self._open() as f:
            for key in KEYS:
                if key not in f:
                    raise ValueError(
                        f"HDF5 file {self.path} has no key {key!r}; expected keys {KEYS} (SHD/SSC format)."
                    )
            self.labels = integer_labels(self._read(f, "labels", slice(None)), f"HDF5 file {self.path}, key 'labels'")
            lengths = {key: len(f[key]) for key in KEYS}
            recorded = f.attrs.get("n_units")
        if n_units is not None and recorded is not None and int(recorded) != n_units:
            raise ValueError(
                f"HDF5 file {self.path} records n_units={int(recorded)} (its cochlea channels), but the reader was "
                f"given n_units={n_units}. Pass n_units={int(recorded)} (e.g. --data.init_args.n_units "
                f"{int(recorded)}) so that units are pooled into channels correctly."
            )
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"HDF5 file {self.path}: keys have different lengths {lengths}; the file is truncated or corrupt."
            )
        bad = np.flatnonzero((self.labels < 0) | (self.labels >= num_classes))
        if bad.size:
            raise ValueError(
                f"HDF5 file {self.path}, key 'labels': label {self.labels[bad[0]]} at index {bad[0]} is out of "
                f"range [0, {num_classes}) ({bad.size} bad labels). Is this the right file for this dataset?"
            )

    def _open(self) -> h5py.File:
        check_readable(self.path)
        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            if "unable to lock file" in str(err).lower():
                raise OSError(
                    f"HDF5 file {self.path} cannot be opened because HDF5 could not lock it ({err}); the file itself "
                    "may be fine. Set the environment variable HDF5_USE_FILE_LOCKING=FALSE (e.g. on NFS), or make "
                    "sure no other process holds it open for writing."
                ) from err
            raise ValueError(
                f"HDF5 file {self.path} cannot be opened: it is truncated or corrupt ({err}). "
                "Replace it with a fresh copy (download it again, or extract it again from its archive)."
            ) from err

    def _read(self, f: h5py.File, key: str, index) -> np.ndarray:
        try:
            return np.asarray(f[key][index])
        except Exception as err:  # h5py raises OSError/KeyError/RuntimeError for damaged chunks
            raise ValueError(
                f"HDF5 file {self.path}: cannot read key {key!r} at index {index} ({err}); "
                "the file is truncated or corrupt. Delete it and download it again."
            ) from err

    def handle(self) -> h5py.File:
        """The open file of this process (reopened after a fork)."""
        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = self._open(), os.getpid()
            # closed when this process (e.g. a DataLoader worker) exits, even through os._exit
            multiprocessing.util.Finalize(self, self._h5.close, exitpriority=10)
        return self._h5

    def events(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        f = self.handle()
        return self._read(f, "spikes/times", index), self._read(f, "spikes/units", index)

    def __len__(self) -> int:
        return len(self.labels)

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_h5": None, "_pid": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def check_readable(path: Path) -> None:
    """Open ``path`` for reading with the OS (not HDF5), so that a missing file, a directory or a permission
    problem is reported as what it is, never as corruption (whose fix would delete a good file)."""
    try:
        with open(path, "rb") as f:
            f.read(8)
    except IsADirectoryError as err:
        raise IsADirectoryError(
            f"{path} is a directory, expected an SHD/SSC HDF5 file there. Move the directory away and place the "
            "file at that path (or pass data_dir=<the folder that holds the file>)."
        ) from err
    except PermissionError as err:
        raise PermissionError(
            f"HDF5 file {path} cannot be read: permission denied ({err}). The file is not damaged: give this user "
            f"read permission (e.g. chmod a+r {path}) or copy it to a folder you can read and pass data_dir=<it>."
        ) from err
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"HDF5 file {path} disappeared after it was found ({err}); was it moved or deleted while training? "
            "Place it back at that path."
        ) from err
    except OSError as err:
        raise OSError(f"HDF5 file {path} cannot be read by the operating system ({err}); check the disk.") from err


def integer_labels(values: np.ndarray, where: str) -> np.ndarray:
    """``values`` as int64, refusing fractional, non-finite or non-numeric labels instead of truncating them."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind != "f":
        raise ValueError(
            f"{where}: labels have dtype {values.dtype}; expected integer class indices. "
            "Is this the right file for this dataset?"
        )
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
        raise ValueError(
            f"{where}: label {values[bad[0]]} at index {bad[0]} is not a whole number ({bad.size} such labels); "
            "expected integer class indices. Labels are never rounded or truncated: fix the file (write the "
            "labels as integers)."
        )
    return values.astype(np.int64)


class BinnedSource:
    """``index → (T, C)`` counts of one file (picklable, for DataLoader workers)."""

    def __init__(self, reader: HeidelbergFile, binning: SpikeTrainBinning) -> None:
        self.reader, self.binning = reader, binning

    def __call__(self, index: int) -> np.ndarray:
        times, units = self.reader.events(index)
        n_units = self.binning.n_units
        if units.size and units.dtype.kind in "iu" and units.max() >= n_units:
            raise ValueError(
                f"{self.reader.path}[{index}]: unit index {units.max()} does not fit n_units={n_units}; the file "
                f"has at least {int(units.max()) + 1} units. Pass n_units=<the file's unit count> (700 for "
                "SHD/SSC; the cochlea's n_channels for files built from audio)."
            )
        return self.binning(times, units, where=f"{self.reader.path}[{index}]")


class HeidelbergDataModule(SplitDataModule):
    """Shared logic of :class:`SHDDataModule` and :class:`SSCDataModule`.

    Reads its settings from ``self.hparams``, the keyword arguments of the subclass: ``data_dir``,
    ``n_steps``, ``n_channels``, ``n_units`` (the class attribute when absent), ``duration``, ``dt``,
    ``val_fraction`` (only without a ``valid`` file), ``download`` and ``cache_dir`` (relative to ``data_dir``).
    """

    name = ""
    num_classes = 0
    n_units = 700
    files: dict[str, str] = {}
    md5: dict[str, str] = {}
    base_url = "https://zenkelab.org/datasets/"

    def __init__(self, *, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        hp = self.hparams
        self.val_fraction = check_fraction(self, "val_fraction", hp.get("val_fraction", 0.0))
        n_steps = None if hp.dt is not None else hp.n_steps
        self.n_units = check_int(self, "n_units", hp.get("n_units", self.n_units), 1, "the units in the file")
        if not 1 <= hp.n_channels <= self.n_units:
            raise ValueError(
                f"{type(self).__name__}: n_channels={hp.n_channels} must be in [1, n_units={self.n_units}] "
                "(units are sum-pooled into channels). Lower n_channels or pass the file's n_units."
            )
        self.binning = SpikeTrainBinning(self.n_units, hp.n_channels, n_steps, hp.duration, hp.dt)
        self.data_dir = user_dir(hp.data_dir or ".")
        self.cache_dir = resolve_cache_dir(self.data_dir, hp.cache_dir)
        self.download = hp.get("download", False)
        self.n_inputs = hp.n_channels
        self.readers: dict[str, HeidelbergFile] = {}

    # ---- files ---------------------------------------------------------------------------------
    def search_dirs(self) -> list[Path]:
        return [self.data_dir / self.name, self.data_dir]

    def url(self, file_split: str) -> str:
        return f"{self.base_url}{self.files[file_split]}.zip"

    def file_path(self, file_split: str, allow_download: bool = False) -> Path:
        filename = self.files[file_split]
        found = locate(filename, self.search_dirs())
        if found is not None:
            return found
        if allow_download and self.download:
            return fetch(
                self.name,
                self.url(file_split),
                self.data_dir / self.name,
                f"{filename}.zip",
                self.md5.get(file_split),
                filename,
                self.search_dirs(),
            )
        raise MissingDataError(
            missing_message(self.name, filename, self.search_dirs(), self.url(file_split), self.data_dir / self.name)
        )

    def prepare_data(self) -> None:
        """Download missing files (only with ``download=True``), then fill the frame cache."""
        for file_split in self.files:
            self.file_path(file_split, allow_download=is_local_rank_zero())
        if self.cache_dir is not None:
            for file_split in self.files:
                self.frames(file_split).warm()
            self._close()

    # ---- datasets ------------------------------------------------------------------------------
    def reader(self, file_split: str) -> HeidelbergFile:
        if file_split not in self.readers:
            self.readers[file_split] = HeidelbergFile(self.file_path(file_split), self.num_classes, self.n_units)
        return self.readers[file_split]

    def frames(self, file_split: str) -> Dataset:
        reader = self.reader(file_split)
        source = BinnedSource(reader, self.binning)
        if self.cache_dir is None:
            return UncachedFrames(source, reader.labels)
        stat = reader.path.stat()
        return CachedFrames(
            source,
            reader.labels,
            self.cache_dir,
            self.name,
            file_split,
            self.binning,
            self._check_shape,
            source_id=f"{reader.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}",
        )

    def _check_shape(self, frames: np.ndarray) -> str | None:
        b = self.binning
        ok = (
            frames.ndim == 2 and frames.shape[1] == b.n_channels and (b.n_steps is None or frames.shape[0] == b.n_steps)
        )
        return None if ok else f"shape {frames.shape}, expected (T, {b.n_channels}) with T = {b.n_steps or 'any'}"

    def build_splits(self) -> dict[str, Dataset]:
        test = self.frames("test")
        if "valid" in self.files:
            return {"train": self.frames("train"), "val": self.frames("valid"), "test": test}
        train, val = self.split(self.frames("train"), [None, self.val_fraction])
        return {"train": train, "val": val if len(val) else test, "test": test}

    def _close(self) -> None:
        for reader in self.readers.values():
            reader.close()

    def teardown(self, stage: str | None = None) -> None:
        self._close()


class SHDDataModule(HeidelbergDataModule):
    """Spiking Heidelberg Digits: 20 classes, 8156 train / 2264 test samples (see the module docstring)."""

    name = "SHD"
    num_classes = 20
    files = {"train": "shd_train.h5", "test": "shd_test.h5"}
    md5 = {"train": "f3252aeb598ac776c1b526422d90eecb", "test": "1503a5064faa34311c398fb0a1ed0a6f"}

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_steps: int = 100,
        n_channels: int = 140,
        n_units: int = 700,
        batch_size: int = 256,
        val_fraction: float = 0.2,
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
        duration: float | None = None,
        dt: float | None = None,
    ) -> None:
        # the other arguments reach HeidelbergDataModule through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)


class SSCDataModule(HeidelbergDataModule):
    """Spiking Speech Commands: 35 classes, own train / valid / test files (see the module docstring)."""

    name = "SSC"
    num_classes = 35
    files = {"train": "ssc_train.h5", "valid": "ssc_valid.h5", "test": "ssc_test.h5"}
    md5 = {
        "train": "d102be95e7144fcc0553d1f45ba94170",
        "valid": "b4eee3516a4a90dd0c71a6ac23a8ae43",
        "test": "a35ff1e9cffdd02a20eb850c17c37748",
    }

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_steps: int = 100,
        n_channels: int = 140,
        n_units: int = 700,
        batch_size: int = 256,
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
        duration: float | None = None,
        dt: float | None = None,
    ) -> None:
        # the other arguments reach HeidelbergDataModule through self.hparams
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)


def write_heidelberg_file(
    path: str | os.PathLike,
    times: list[np.ndarray],
    units: list[np.ndarray],
    labels: np.ndarray,
    keys: list[str] | None = None,
    speakers: np.ndarray | None = None,
    n_units: int | None = None,
) -> Path:
    """Write an SHD/SSC-format HDF5 file (ragged float16 ``spikes/times``, uint16 ``spikes/units``, labels).

    Like the real files it holds ``extra/keys`` (class names; default ``class-<i>``) and ``extra/speaker``
    (one id per sample; default 0). ``n_units``, when given, is stored as the file attribute ``n_units`` and
    checked by :class:`HeidelbergFile` (units must be below it). The file is written to a temporary name and
    moved into place, so a crash never leaves a half-written file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    speakers = np.zeros(len(labels), dtype=np.uint16) if speakers is None else np.asarray(speakers, dtype=np.uint16)
    if not len(times) == len(units) == len(labels) == len(speakers):
        raise ValueError(
            f"write_heidelberg_file({path}): {len(times)} times, {len(units)} units, {len(labels)} labels and "
            f"{len(speakers)} speakers; expected one of each per sample."
        )
    if n_units is not None:
        top = max((int(np.max(u)) for u in units if len(u)), default=-1)
        if top >= n_units:
            raise ValueError(f"write_heidelberg_file({path}): unit {top} does not fit n_units={n_units}.")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with h5py.File(partial, "w") as f:
        f.create_dataset("spikes/times", data=_ragged(times, np.float16), dtype=h5py.vlen_dtype(np.float16))
        f.create_dataset("spikes/units", data=_ragged(units, np.uint16), dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=labels.astype(np.uint16))
        names = keys or [f"class-{i}" for i in range(int(np.max(labels, initial=0)) + 1)]
        f.create_dataset("extra/keys", data=np.array(names, dtype=h5py.string_dtype()))
        f.create_dataset("extra/speaker", data=speakers)
        if n_units is not None:
            f.attrs["n_units"] = int(n_units)
    os.replace(partial, path)
    return path


def _ragged(arrays: list[np.ndarray], dtype) -> np.ndarray:
    """1-d object array of 1-d arrays (kept ragged even when all lengths are equal)."""
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = np.asarray(a, dtype=dtype)
    return out
