"""Checkpoint files that survive a kill during a save, and readable errors for broken ones.

:class:`AtomicCheckpointIO` writes a checkpoint to a temporary file *in the target's directory*,
flushes it to disk (``fsync``) and renames it over the target with :func:`os.replace`. The rename is
atomic on one filesystem, so at every instant the target is either the old complete checkpoint or the
new complete one, whatever filesystem ``$TMPDIR`` is on. (Lightning's own ``TorchCheckpointIO`` goes
through an fsspec transaction whose temporary file is made in ``$TMPDIR``; when the checkpoint
directory is on another filesystem the "rename" becomes a copy into the target, so a kill during the
copy leaves a truncated target and a leaked temporary file.)

A writer killed mid-save (``SIGKILL``, power loss) leaves its partial temporary file beside the target,
named ``.lsnn-partial-<host>-<pid>-<random>.tmp``: hidden, without the ``.ckpt`` suffix and without
``last`` or ``hpc_ckpt_`` in its name, so neither Lightning (``ckpt_path="last"``/``"hpc"``,
``ModelCheckpoint``) nor a ``*.ckpt`` glob takes it for a checkpoint. The next save into that directory
deletes partial files of writers on this host that are no longer running.

:func:`read_checkpoint` loads a checkpoint and turns the raw ``OSError`` / ``EOFError`` /
``RuntimeError`` / ``UnpicklingError`` of an empty, truncated, text or random file, and a torch file that
is not a Lightning checkpoint, into a :class:`CheckpointError` naming the file and what is wrong with it.

The CLI installs :class:`AtomicCheckpointIO`; from a script pass ``L.Trainer(plugins=[AtomicCheckpointIO()])``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from typing_extensions import override

PARTIAL_PREFIX = ".lsnn-partial-"
PARTIAL_SUFFIX = ".tmp"
_PARTIAL = re.compile(rf"^{re.escape(PARTIAL_PREFIX)}(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]+{re.escape(PARTIAL_SUFFIX)}$")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what is wrong with it."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _local_path(path: str | os.PathLike) -> str | None:
    """The local filesystem path of ``path``, or ``None`` for a remote URL (s3://, gs://, ...)."""
    fs, stripped = url_to_fs(str(path))
    return stripped if isinstance(fs, LocalFileSystem) else None


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_partials(directory: str | os.PathLike) -> list[str]:
    """Delete the partial files that writers on this host left in ``directory`` when they were killed
    (their process is gone); return their paths. Partial files of running writers are kept."""
    removed = []
    host = _host()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            match = _PARTIAL.match(name)
            if match and match["host"] == host and not _pid_running(int(match["pid"])):
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    return removed


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):  # not every filesystem/OS lets a directory be opened and synced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(checkpoint: Any, path: str | os.PathLike) -> None:
    """``torch.save(checkpoint, path)`` such that ``path`` is at every instant absent, the old complete
    file or the new complete file: write + ``fsync`` a temporary file beside it, then ``os.replace``.
    A Python exception during the write removes the temporary file and leaves ``path`` untouched."""
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    remove_stale_partials(directory)
    while True:
        partial = os.path.join(
            directory, f"{PARTIAL_PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        )
        try:  # 0o666 & ~umask, like a file opened normally (mkstemp would give 0o600)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise
    _fsync_dir(directory)


def _first_sentence(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text.split('. ')[0]}" if text else type(err).__name__


def _describe_unreadable(path: Path, err: BaseException) -> str:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(64)
    if not head.startswith((b"PK", b"\x80")):  # neither a zip archive nor a legacy pickle
        text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a cut multi-byte character at the end
        if text and "\ufffd" not in text and all(c.isprintable() or c in "\r\n\t" for c in text):
            return f"is a text file ({size} bytes, starting {text[:40]!r}), not a PyTorch checkpoint"
        return (
            f"is not a PyTorch checkpoint: {size} bytes starting with {head[:8]!r}, where a PyTorch checkpoint is a "
            "zip archive starting with b'PK'"
        )
    if "Weights only load failed" in str(err):
        unsupported = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        why = unsupported[0] if unsupported else _first_sentence(err)
        return (
            f"holds Python objects that torch.load(weights_only=True) refuses to unpickle ({why}); if you trust "
            "the file, load it with weights_only=False"
        )
    if head.startswith(b"PK"):
        return (
            f"is truncated or damaged: a PyTorch zip archive of {size} bytes that cannot be read "
            f"({_first_sentence(err)}); it was probably cut short by a crash or a full disk during a save. "
            "Delete it and use an earlier checkpoint"
        )
    return (
        f"is truncated or damaged: a legacy (pickle) PyTorch file of {size} bytes that cannot be read "
        f"({_first_sentence(err)}). Delete it and use an earlier checkpoint"
    )


def read_checkpoint(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    weights_only: bool | None = None,
    require_state_dict: bool = True,
) -> Any:
    """``torch.load(path)`` of a local checkpoint, or a :class:`CheckpointError` naming ``path`` and what is
    wrong: empty, truncated, a text file, not a torch file, weights-only refusal, or (with
    ``require_state_dict``) a torch file that is not a Lightning checkpoint (no ``'state_dict'``).
    A missing path raises ``FileNotFoundError``."""
    p = Path(os.fspath(path))
    where = f"Checkpoint '{path}' ({p.resolve()})"
    if not p.exists():
        raise FileNotFoundError(f"{where} is not found.")
    if p.is_dir():
        raise CheckpointError(f"{where} is a directory, not a checkpoint file.")
    if p.stat().st_size == 0:
        raise CheckpointError(
            f"{where} is empty (0 bytes), not a checkpoint: a save was interrupted before writing anything or the "
            "file was created by something else. Delete it and use an earlier checkpoint."
        )
    try:
        checkpoint = torch.load(p, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, OSError, ValueError, ...
        raise CheckpointError(f"{where} {_describe_unreadable(p, err)}.") from err
    if require_state_dict:
        if not isinstance(checkpoint, dict):
            raise CheckpointError(
                f"{where} is a valid torch file but not a Lightning checkpoint: it holds a "
                f"{type(checkpoint).__name__}, not a dict with a 'state_dict'."
            )
        if "state_dict" not in checkpoint:
            keys = sorted(map(str, checkpoint))
            shown = keys[:8] + (["..."] if len(keys) > 8 else [])
            bare = checkpoint and all(torch.is_tensor(v) for v in checkpoint.values())
            hint = (
                " It looks like a bare state dict (torch.save(model.state_dict())): load it into a model with "
                "model.load_state_dict(torch.load(path)) instead of resuming from it."
                if bare
                else " Give a file written by Trainer.fit/ModelCheckpoint or Trainer.save_checkpoint."
            )
            raise CheckpointError(
                f"{where} is a valid torch file but not a Lightning checkpoint: it has no 'state_dict' "
                f"(keys: {shown}).{hint}"
            )
    return checkpoint


def diagnose_checkpoint(path: Any, weights_only: bool | None = None) -> CheckpointError | FileNotFoundError | None:
    """The error :func:`read_checkpoint` gives for a local ``path``; ``None`` when it reads as a Lightning
    checkpoint or ``path`` is not a local file path (a URL, a file object)."""
    if not isinstance(path, (str, os.PathLike)) or (local := _local_path(path)) is None:
        return None
    try:
        read_checkpoint(path if "://" not in str(path) else local, weights_only=weights_only)
    except (CheckpointError, FileNotFoundError) as err:
        return err
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves never leave a truncated checkpoint at the target (see the module
    docstring) and whose loads raise :class:`CheckpointError` naming a broken file.

    Args:
        require_lightning_checkpoint: reject loaded files without a ``'state_dict'`` (a Lightning Trainer
            checkpoint always has one); pass ``False`` for Fabric checkpoints, which are arbitrary dicts.
    """

    def __init__(self, require_lightning_checkpoint: bool = True) -> None:
        super().__init__()
        self.require_lightning_checkpoint = require_lightning_checkpoint

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        local = _local_path(path)
        if local is None or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)  # object stores replace whole objects
            return
        atomic_save(checkpoint, local)

    @override
    def load_checkpoint(
        self,
        path: str | os.PathLike,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        local = _local_path(path)
        if local is None:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        return read_checkpoint(
            path if "://" not in str(path) else local,
            map_location=map_location,
            weights_only=weights_only,
            require_state_dict=self.require_lightning_checkpoint,
        )
