"""On-disk cache of preprocessed frames, safe against stale settings, crashes and concurrent writers.

Layout: ``<root>/<dataset>-<split>-<hash>/<index>.npy`` where ``hash`` is the SHA-256 of the transform
settings (a frozen dataclass or a dict, rendered as sorted JSON together with its class name and
:data:`CACHE_VERSION`). A changed transform therefore has a new directory and never reads stale frames
(the failure of tonic issue #160). The hash also covers the source's identity (:func:`source_fingerprint`:
sample count, labels, and for files the resolved path plus size and ``mtime_ns`` of each, see
:func:`files_fingerprint`), so another data folder or an overwritten recording never reads another's
frames. ``settings.json`` in each directory records the settings and the source in clear.

- **cache_dir** that is a file or not writable raises an error naming it and the fix (never a raw ``OSError``).

- **Atomic writes.** Each entry is written to a temporary file unique to the process and moved into
  place with ``os.replace``: a reader sees the whole old file, the whole new file, or nothing.
- **Corrupt entries** (truncated, unreadable, or of the wrong shape) are rebuilt from the source with
  a ``UserWarning`` naming the file; they are never returned.
- **DDP.** Ranks may fill the same directory: entries are deterministic and writes are atomic, so two
  ranks writing one index write equal bytes. ``warm()`` (called from ``prepare_data``, local rank 0)
  builds every entry before training.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

CACHE_VERSION = 1


def settings_dict(settings: Any) -> dict[str, Any]:
    """Plain JSON-able description of a transform: its class name and its fields."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        fields = dataclasses.asdict(settings)
        name = type(settings).__qualname__
    elif isinstance(settings, dict):
        fields, name = dict(settings), "dict"
    else:
        raise TypeError(f"Cache settings must be a dataclass instance or a dict, got {type(settings).__name__}.")
    return {"class": name, "fields": fields, "version": CACHE_VERSION}


def cache_key(dataset: str, split: str, settings: Any, source: str = "") -> str:
    """``<dataset>-<split>-<16 hex digits of the hash of the settings and the source fingerprint>``."""
    text = json.dumps({**settings_dict(settings), "source": source}, sort_keys=True, default=str)
    return f"{dataset}-{split}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def atomic_save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (``.npy``) via a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compact(frames: np.ndarray) -> np.ndarray:
    """Store integer counts in the smallest unsigned dtype that holds them (exact; float otherwise)."""
    if frames.size and np.array_equal(frames, np.round(frames)) and frames.min() >= 0:
        for dtype in (np.uint8, np.uint16, np.uint32):
            if frames.max() <= np.iinfo(dtype).max:
                return frames.astype(dtype)
    return frames.astype(np.float32)


def files_fingerprint(root: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> str:
    """Identity of a set of source files: the resolved ``root`` and a SHA-256 of every file's path,
    size and ``mtime_ns`` (one ``stat`` per file, no file is read). Another folder, an added, removed,
    renamed or overwritten recording all give another fingerprint, so another cache directory."""
    digest, root = hashlib.sha256(), os.fspath(root)
    for path in paths:
        st = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"root={Path(root).resolve()};files={len(paths)};stat={digest.hexdigest()[:32]}"


def cache_dir_error(root: Path, err: OSError) -> OSError:
    """The error to raise when ``cache_dir`` cannot hold the cache: same class, a message with the fix."""
    if isinstance(err, (NotADirectoryError, FileExistsError)) or (root.exists() and not root.is_dir()):
        why, cls = "it (or a folder on its path) exists and is not a directory", NotADirectoryError
    elif isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EROFS):
        why, cls = "it is not writable (permission denied or a read-only file system)", PermissionError
    else:
        why, cls = "it could not be created or written", OSError
    return cls(
        f"cache_dir {str(root)!r} cannot be used for the frame cache: {why} ({err}). Pass cache_dir=<a writable "
        "folder> (it is created if missing), or cache_dir=null to read the source files without a cache."
    )


def source_fingerprint(labels: np.ndarray, source_id: str = "") -> str:
    """Identify the source data: sample count, a hash of the labels in order, and ``source_id``
    (e.g. the file's path, size and mtime), so a changed source never reuses another's frames."""
    digest = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()[:16]
    return f"n={len(labels)};labels={digest};{source_id}"


class CachedFrames(Dataset):
    """Wrap ``source`` (index → ``(frames, label)``) with a per-index on-disk cache of the frames.

    ``labels`` (one per index) are held in memory; only frames go to disk. The cache directory is
    keyed on the dataset, split, transform settings and :func:`source_fingerprint`.
    ``shape_check(frames)`` returns ``None`` for a valid entry or a message saying what is wrong.
    """

    def __init__(
        self,
        source: Callable[[int], np.ndarray],
        labels: Sequence[int],
        root: str | os.PathLike,
        dataset: str,
        split: str,
        settings: Any,
        shape_check: Callable[[np.ndarray], str | None] | None = None,
        source_id: str = "",
    ) -> None:
        self.source, self.labels = source, np.asarray(labels, dtype=np.int64)
        root = Path(root)
        self.directory = root / cache_key(dataset, split, settings, source_fingerprint(self.labels, source_id))
        self.shape_check = shape_check
        info = self.directory / "settings.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not info.exists():
                meta = {"dataset": dataset, "split": split, "n": len(self.labels), **settings_dict(settings)}
                meta["source"] = source_id
                atomic_write_text(info, json.dumps(meta, indent=1, sort_keys=True, default=str))
        except OSError as err:
            raise cache_dir_error(root, err) from err

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> Path:
        return self.directory / f"{index:07d}.npy"

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            frames = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError) as err:
            warnings.warn(f"Corrupt cache entry {path} ({err}); rebuilding it from the source.", stacklevel=3)
            return None
        problem = self.shape_check(frames) if self.shape_check else None
        if problem:
            warnings.warn(f"Corrupt cache entry {path} ({problem}); rebuilding it from the source.", stacklevel=3)
            return None
        return frames

    def frames(self, index: int) -> np.ndarray:
        path = self.path(index)
        frames = self._load(path)
        if frames is None:
            frames = compact(np.asarray(self.source(index)))
            atomic_save(path, frames)
        return frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.from_numpy(self.frames(index).astype(np.float32))
        return frames, torch.tensor(self.labels[index])

    def warm(self) -> int:
        """Build every missing or corrupt entry; returns how many were built."""
        built = 0
        for index in range(len(self)):
            if self._load(self.path(index)) is None:
                atomic_save(self.path(index), compact(np.asarray(self.source(index))))
                built += 1
        return built


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UncachedFrames(Dataset):
    """Same interface as :class:`CachedFrames` without a cache (``cache_dir=None``)."""

    def __init__(self, source: Callable[[int], np.ndarray], labels: Sequence[int]) -> None:
        self.source, self.labels = source, np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.from_numpy(np.asarray(self.source(index), dtype=np.float32))
        return frames, torch.tensor(self.labels[index])

    def warm(self) -> int:
        return 0
