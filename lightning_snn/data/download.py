"""Finding dataset files on disk, and downloading them only when asked, with errors that say what to do.

:func:`locate` looks for a file in a list of directories (and extracts a ``.zip`` / ``.gz`` / ``.tar.gz``
archive of it found beside it, which needs no network). :func:`fetch` downloads through tonic's
``download_and_extract_archive``; it is only called when the user passed ``download=True``, from
``prepare_data`` (local rank 0). Both raise :class:`MissingDataError`, which names the file, the
directories searched, the URL and how to place the file by hand, instead of tonic's bare
"File not found or corrupted.".
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path


class MissingDataError(FileNotFoundError):
    """A dataset file is missing (or could not be downloaded); the message says how to fix it."""


def user_dir(path: str | os.PathLike | None) -> Path | None:
    """``path`` as a ``Path`` with ``~`` expanded; ``None`` or ``""`` (no folder) give ``None``."""
    return Path(os.path.expanduser(str(path))) if path else None


def resolve_cache_dir(data_dir: Path, cache_dir: str | os.PathLike | None) -> Path | None:
    """``cache_dir`` as a folder: ``None``/``""`` → no cache; absolute (or ``~``) → itself; relative → inside
    ``data_dir`` (so ``cache_dir: cache`` follows ``--data.init_args.data_dir``, whatever the working folder)."""
    path = user_dir(cache_dir)
    if path is None or path.is_absolute():
        return path
    return data_dir / path


def missing_message(
    dataset: str, filename: str, searched: Sequence[Path], url: str, place: Path, reason: str = ""
) -> str:
    dirs = ", ".join(str(d) for d in searched)
    why = f" Download failed: {reason}." if reason else ""
    return (
        f"{dataset}: file {filename!r} not found (searched: {dirs}).{why} "
        f"Either pass download=True (needs network; prepare_data fetches {url}), or download {url} "
        f"by hand, extract it if it is an archive, and place it so that the path is {place / filename} "
        f"(or pass data_dir=<the folder that holds it>)."
    )


def _extract_if_archived(directory: Path, filename: str) -> Path | None:
    for suffix in (".zip", ".gz", ".tar.gz", ".tgz"):
        archive = directory / f"{filename}{suffix}"
        if archive.is_file():
            found = extract_into_place(archive, directory, filename)
            if found is not None:
                return found
    return None


def extract_into_place(archive: Path, directory: Path, filename: str) -> Path | None:
    """Extract ``archive`` into a temporary folder beside it and move ``filename`` into ``directory`` only
    once it is complete: a corrupt archive leaves nothing behind (never a 0-byte or partial file), and the
    archive itself is never modified. Returns ``directory / filename``, or ``None`` if the archive does not
    hold it."""
    from tonic.download_utils import extract_archive

    target = directory / filename
    try:
        tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{filename}.extracting-"))
    except OSError as err:
        raise type(err)(
            f"Cannot extract {archive} into {directory}: {err}. Make {directory} writable, or extract the "
            f"archive yourself and place {filename} there (or pass data_dir=<a folder that holds it>)."
        ) from err
    try:
        try:
            extract_archive(str(archive), str(tmp))
        except Exception as err:  # zlib, gzip, zipfile, tarfile and EOF errors: the archive is damaged
            raise ValueError(
                f"Archive {archive} cannot be extracted ({type(err).__name__}: {err}): it is truncated or corrupt. "
                f"Nothing was written to {target}. Replace the archive with a fresh download (or move it away "
                f"and pass download=True), or place {filename} itself in {directory}."
            ) from err
        if not (tmp / filename).exists():
            return None
        os.replace(tmp / filename, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def locate(filename: str, directories: Sequence[Path], extract: bool = True) -> Path | None:
    """First ``directory / filename`` that exists (file or folder), extracting a local archive if needed."""
    for directory in directories:
        if (Path(directory) / filename).exists():
            return Path(directory) / filename
    if extract:
        for directory in directories:
            found = _extract_if_archived(Path(directory), filename) if Path(directory).is_dir() else None
            if found is not None:
                return found
    return None


def fetch(
    dataset: str, url: str, directory: Path, archive: str, md5: str | None, expected: str, searched: Sequence[Path]
) -> Path:
    """Download ``url`` into ``directory`` as ``archive``, extract it, and return ``directory / expected``."""
    from tonic.download_utils import download_and_extract_archive

    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{expected}.extracting-"))
    try:
        try:  # extracted into a temporary folder: an interrupted extraction leaves no partial file behind
            download_and_extract_archive(url, str(directory), extract_root=str(tmp), filename=archive, md5=md5)
        except Exception as err:  # network, HTTP, checksum or extraction failure: all end the same way
            raise MissingDataError(missing_message(dataset, expected, searched, url, directory, repr(err))) from err
        if not (tmp / expected).exists():
            reason = f"the archive {archive} did not contain {expected}"
            raise MissingDataError(missing_message(dataset, expected, searched, url, directory, reason))
        os.replace(tmp / expected, directory / expected)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory / expected


def is_local_rank_zero() -> bool:
    """True on the process that Lightning lets download (``LOCAL_RANK`` unset or 0)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0
