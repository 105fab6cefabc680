r"""Keyword spotting from your own recordings: audio → cochlea spikes → SHD-layout HDF5, served like SHD.

:class:`AudioFolderDataModule` turns a folder of recordings (one sub-folder per class) or a manifest CSV into
two SHD-format files, ``train.h5`` and ``test.h5`` (ragged ``spikes/times`` in seconds, ``spikes/units``,
``labels``, ``extra/keys`` with the class names, ``extra/speaker``), once, in ``prepare_data`` (local rank 0).
From there the SHD machinery of :mod:`lightning_snn.data.shd` reads them: the same binning (``n_steps`` over
``duration``, or ``dt``), sum-pooling of ``n_units`` cochlea channels into ``n_channels``, the same frame
cache and the same seeded validation split.

Each recording is read with ``soundfile`` (WAV, FLAC, OGG; channels averaged), resampled to ``sample_rate``,
centred in a clip of ``clip_duration`` seconds (zero-padded or trimmed at both ends; one length for all
recordings, so the basilar-membrane transfer matrix is computed once), then converted by
:class:`~lightning_snn.data.audio.cochlea.AudioToSpikes` with ``n_units`` channels (Cramer et al. 2020).

The files live in ``<spikes_dir>/<name>-<hash>/``; the hash covers every setting and the recordings (path,
size, modification time, label, speaker, split), so a changed setting or recording builds new files and
never reads stale ones. Relative ``spikes_dir`` and ``cache_dir`` are folders inside ``data_dir``.

**Test split.** A manifest ``split`` column (``train``/``test``) is used as given. Otherwise, when the
manifest has a ``speaker`` column, a seeded ``test_fraction`` of the *speakers* is held out (test speakers are
never heard in training, as in SHD); without speakers a seeded ``test_fraction`` of the recordings.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_snn.data.base import check_fraction
from lightning_snn.data.download import MissingDataError, resolve_cache_dir
from lightning_snn.data.shd import HeidelbergDataModule, write_heidelberg_file

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Utterance:
    """One recording: where it comes from (``source``: a path, or a description for synthetic audio)."""

    source: str
    label: int
    speaker: str = ""
    split: str = ""


class AudioFolderDataModule(HeidelbergDataModule):
    """Recordings in ``data_dir/<class>/*.wav`` (or listed in ``manifest``) → spikes → SHD-format batches.

    ``manifest``: a CSV with columns ``path`` (relative to the CSV's folder, or absolute), ``label`` (a class
    name) and optionally ``speaker`` and ``split``. Class ``i`` is the ``i``-th class name in sorted order.
    See the module docstring for the conversion, the caching and the splits.
    """

    name = "audio"

    def __init__(
        self,
        *,
        data_dir: str = "data",
        manifest: str | None = None,
        n_units: int = 128,
        n_channels: int = 64,
        n_steps: int = 100,
        duration: float | None = 1.0,
        dt: float | None = None,
        sample_rate: int = 16000,
        clip_duration: float = 1.0,
        cochlea_mode: str = "fast",
        test_fraction: float = 0.2,
        val_fraction: float = 0.2,
        batch_size: int = 32,
        seed: int = 0,
        num_workers: int = 0,
        cache_dir: str | None = "cache",
        spikes_dir: str = "spikes",
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self._init_audio(manifest, test_fraction)

    def _init_audio(self, manifest: str | None, test_fraction: float) -> None:
        hp = self.hparams
        self.manifest = manifest
        self.test_fraction = check_fraction(self, "test_fraction", test_fraction)
        if not (isinstance(hp.sample_rate, int) and hp.sample_rate >= 1000):
            raise ValueError(f"{type(self).__name__}: sample_rate={hp.sample_rate!r}; expected an integer ≥ 1000 Hz.")
        if not (hp.clip_duration and hp.clip_duration > 0):
            raise ValueError(f"{type(self).__name__}: clip_duration={hp.clip_duration!r}; expected seconds > 0.")
        from lightning_snn.data.audio.cochlea import AudioToSpikes

        self.cochlea = AudioToSpikes(self.n_units, mode=hp.cochlea_mode)
        self.spikes_root = resolve_cache_dir(self.data_dir, hp.spikes_dir) or self.data_dir
        self.files = {split: f"{split}.h5" for split in SPLITS}
        self._utterances: list[Utterance] | None = None

    # ---- what to convert -----------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        """Class names in label order."""
        self.utterances()
        return self._class_names

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.class_names)

    def utterances(self) -> list[Utterance]:
        """Every recording with its label, speaker and split (the split filled in by :meth:`assign_splits`)."""
        if self._utterances is None:
            rows = self._manifest_rows() if self.manifest else self._folder_rows()
            if not rows:
                where = self.manifest or f"{self.data_dir}/<class>/*{{{','.join(AUDIO_SUFFIXES)}}}"
                raise MissingDataError(f"{type(self).__name__}: no recordings found in {where}.")
            self._class_names = sorted({row["label"] for row in rows})
            index = {name: i for i, name in enumerate(self._class_names)}
            utts = [Utterance(r["path"], index[r["label"]], r.get("speaker", ""), r.get("split", "")) for r in rows]
            self._utterances = self.assign_splits(utts)
        return self._utterances

    def _folder_rows(self) -> list[dict]:
        if not self.data_dir.is_dir():
            raise MissingDataError(f"{type(self).__name__}: data_dir={self.data_dir} is not a folder of class folders.")
        rows = []
        for folder in sorted(p for p in self.data_dir.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in AUDIO_SUFFIXES:
                    rows.append({"path": str(path.resolve()), "label": folder.name})
        return rows

    def _manifest_rows(self) -> list[dict]:
        manifest = Path(os.path.expanduser(self.manifest))
        manifest = manifest if manifest.is_absolute() else self.data_dir / manifest
        if not manifest.is_file():
            raise MissingDataError(f"{type(self).__name__}: manifest={manifest} not found; expected a CSV file.")
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        for i, row in enumerate(rows):
            if not row.get("path") or not row.get("label"):
                raise ValueError(
                    f"{manifest}, row {i + 2}: {row}; expected columns path,label[,speaker][,split] with a path "
                    "and a class name in every row."
                )
            if row.get("split", "") not in ("",) + SPLITS:
                raise ValueError(f"{manifest}, row {i + 2}: split={row['split']!r}; expected 'train' or 'test'.")
            path = Path(os.path.expanduser(row["path"]))
            row["path"] = str((path if path.is_absolute() else manifest.parent / path).resolve())
        return rows

    def assign_splits(self, utts: list[Utterance]) -> list[Utterance]:
        """Fill in missing splits: by speaker when speakers are known, else by recording (seeded)."""
        if all(u.split for u in utts):
            return utts
        rng = np.random.default_rng(self.seed)
        speakers = sorted({u.speaker for u in utts})
        if len(speakers) > 1:
            held = set(rng.permutation(speakers)[: math.ceil(self.test_fraction * len(speakers))].tolist())
            return [
                u if u.split else Utterance(u.source, u.label, u.speaker, self._split(u.speaker in held)) for u in utts
            ]
        test = set(rng.permutation(len(utts))[: math.ceil(self.test_fraction * len(utts))].tolist())
        return [
            u if u.split else Utterance(u.source, u.label, u.speaker, self._split(i in test))
            for i, u in enumerate(utts)
        ]

    @staticmethod
    def _split(is_test: bool) -> str:
        return "test" if is_test else "train"

    def waveform(self, utt: Utterance, index: int) -> tuple[np.ndarray, int]:
        """Samples and sample rate of one recording (read from disk; subclasses may synthesise)."""
        import soundfile

        try:
            samples, rate = soundfile.read(utt.source, dtype="float64", always_2d=True)
        except Exception as err:
            raise ValueError(
                f"{type(self).__name__}: cannot read audio file {utt.source} ({err}); expected WAV/FLAC/OGG. "
                "Convert it (e.g. ffmpeg -i in.mp3 out.wav) or remove it from the folder/manifest."
            ) from err
        return samples.mean(axis=1), int(rate)

    def source_fingerprint(self) -> list:
        """What identifies the recordings (for the hash of the spike files)."""
        out = []
        for u in self.utterances():
            stat = os.stat(u.source)
            out.append([u.source, stat.st_size, stat.st_mtime_ns, u.label, u.speaker, u.split])
        return out

    # ---- conversion ----------------------------------------------------------------------------
    def settings(self) -> dict:
        hp = self.hparams
        keys = ("n_units", "sample_rate", "clip_duration", "cochlea_mode", "seed")
        return {"cochlea": repr(self.cochlea), "test_fraction": self.test_fraction, **{k: hp[k] for k in keys}}

    def spikes_folder(self) -> Path:
        text = json.dumps({"settings": self.settings(), "source": self.source_fingerprint()}, sort_keys=True)
        return self.spikes_root / f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def file_path(self, file_split: str, allow_download: bool = False) -> Path:
        path = self.spikes_folder() / self.files[file_split]
        if not all((path.parent / name).is_file() for name in self.files.values()):
            if not allow_download:
                raise MissingDataError(
                    f"{type(self).__name__}: spike file {path} is not built yet; call prepare_data() first "
                    "(Trainer.fit does), which converts the recordings once."
                )
            self.build(path.parent)
        return path

    def clip(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Resample to ``sample_rate`` and centre in ``clip_duration`` seconds (zero-padded or trimmed)."""
        from scipy.signal import resample_poly

        target = self.hparams.sample_rate
        if rate != target:
            g = math.gcd(rate, target)
            samples = resample_poly(samples, target // g, rate // g)
        n = int(round(self.hparams.clip_duration * target))
        if samples.size >= n:
            start = (samples.size - n) // 2
            return samples[start : start + n]
        out = np.zeros(n)
        start = (n - samples.size) // 2
        out[start : start + samples.size] = samples
        return out

    def convert(self) -> Iterator[tuple[Utterance, np.ndarray, np.ndarray]]:
        """``(utterance, times, units)`` of every recording, in order (seeded per recording)."""
        for i, utt in enumerate(self.utterances()):
            samples, rate = self.waveform(utt, i)
            times, units = self.cochlea(
                self.clip(samples, rate), self.hparams.sample_rate, seed=self.seed * 1_000_003 + i
            )
            yield utt, times, units

    def build(self, folder: Path) -> None:
        """Convert every recording and write ``train.h5`` / ``test.h5`` into ``folder`` (SHD layout)."""
        out: dict[str, dict[str, list]] = {s: {"times": [], "units": [], "labels": [], "speakers": []} for s in SPLITS}
        speaker_ids = {name: i for i, name in enumerate(sorted({u.speaker for u in self.utterances()}))}
        for utt, times, units in self.convert():
            part = out[utt.split]
            part["times"].append(times)
            part["units"].append(units)
            part["labels"].append(utt.label)
            part["speakers"].append(speaker_ids[utt.speaker])
        for split, part in out.items():
            write_heidelberg_file(
                folder / self.files[split],
                part["times"],
                part["units"],
                np.asarray(part["labels"], dtype=np.int64),
                keys=self.class_names,
                speakers=np.asarray(part["speakers"], dtype=np.int64),
                n_units=self.n_units,
            )
        (folder / "settings.json").write_text(
            json.dumps({"settings": self.settings(), "speakers": speaker_ids}, indent=1)
        )
