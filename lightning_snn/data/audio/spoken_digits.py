r"""Spoken digits 0–9 in English and German (20 classes, like SHD), synthesised with ``espeak-ng``, as spikes.

A stand-in for the Spiking Heidelberg Digits (Cramer et al., IEEE TNNLS 2020) that needs no download:
every utterance is synthesised by ``espeak-ng`` (``apt-get install espeak-ng``), placed at a random offset
in a ``clip_duration`` clip with silence around it, mixed with white background noise and converted by the
same cochlea model that made SHD (:class:`~lightning_snn.data.audio.cochlea.AudioToSpikes`).

- **Speakers** are espeak-ng voice variants (``en+m3``, ``de+m3``: one speaker says both languages, as in
  SHD), each with its own base pitch and speed (seeded). Per utterance: pitch ±``pitch_jitter`` (espeak
  pitch 0–99), speed ×(1 ± ``speed_jitter``), amplitude ×(1 ± ``amplitude_jitter``), a random offset and
  a signal-to-noise ratio uniform in ``snr_db`` (dB, relative to the speech before the amplitude jitter).
- **Speaker-independent test split**: ``test_voices`` of the ``n_voices`` voices (seeded) are heard only
  in the test set. Validation is a seeded ``val_fraction`` of the training utterances.
- Classes 0–9 are English "zero"…"nine", 10–19 German "null"…"neun" (``extra/keys`` of the files).
- ``n_voices × 20 × repeats`` utterances; everything is seeded and cached (the hash covers every setting and
  the espeak-ng version), built once in ``prepare_data``.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess

import numpy as np

from lightning_snn.data.audio.audio_folder import AudioFolderDataModule, Utterance

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
CLASS_NAMES = [f"english {w}" for w in ENGLISH] + [f"german {w}" for w in GERMAN]
#: espeak-ng voice variants shipped with espeak-ng ≥ 1.50 (``espeak-ng --voices=variant``), one per speaker.
VOICES = (
    "m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "m7", "adam", "Annie", "benjamin",
    "linda", "caleb", "steph", "david", "aunty", "ed", "edward", "john", "max", "paul", "rob", "robert",
    "zac", "klatt", "klatt2", "klatt3", "grandpa", "iven", "quincy", "michel", "Alex",
)  # fmt: skip
ESPEAK_RATE = 22050


def espeak_binary() -> str:
    """Path of ``espeak-ng``; a ``FileNotFoundError`` saying how to install it when it is missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise FileNotFoundError(
            "SpokenDigitsDataModule needs the speech synthesiser espeak-ng, which is not on PATH. Install it: "
            "`apt-get install espeak-ng` (Debian/Ubuntu), `brew install espeak-ng` (macOS), or "
            "`conda install -c conda-forge espeak-ng`; or use AudioFolderDataModule with recorded audio."
        )
    return path


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    return subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def synthesise(text: str, voice: str, pitch: int, speed: int, amplitude: int) -> np.ndarray:
    """``espeak-ng -v <voice> -p <pitch> -s <speed> -a <amplitude> --stdout <text>`` → float64 samples at 22.05 kHz."""
    import soundfile

    cmd = [espeak_binary(), "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude), "--stdout", text]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"espeak-ng failed ({' '.join(cmd)}): {result.stderr.decode(errors='replace').strip()}")
    samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float64")
    if rate != ESPEAK_RATE:  # espeak-ng always writes 22050 Hz; resampled by clip() otherwise
        raise RuntimeError(f"espeak-ng wrote {rate} Hz audio; expected {ESPEAK_RATE} Hz.")
    return samples


class SpokenDigitsDataModule(AudioFolderDataModule):
    """Synthetic spoken digits (English + German, 20 classes) → cochlea spikes → SHD-format batches.

    See the module docstring for the synthesis and the speaker-independent split; the conversion,
    binning and caching are :class:`~lightning_snn.data.audio.audio_folder.AudioFolderDataModule`'s.
    """

    name = "spoken-digits"

    def __init__(
        self,
        *,
        data_dir: str = "data",
        n_voices: int = 16,
        test_voices: int = 4,
        repeats: int = 3,
        pitch_jitter: int = 10,
        speed_jitter: float = 0.15,
        amplitude_jitter: float = 0.3,
        snr_db: tuple[float, float] = (10.0, 30.0),
        n_units: int = 64,
        n_channels: int = 64,
        n_steps: int = 50,
        duration: float | None = 1.0,
        dt: float | None = None,
        sample_rate: int = 16000,
        clip_duration: float = 1.0,
        cochlea_mode: str = "fast",
        val_fraction: float = 0.2,
        batch_size: int = 32,
        seed: int = 0,
        num_workers: int = 0,
        cache_dir: str | None = "cache",
        spikes_dir: str = "spikes",
    ) -> None:
        super(AudioFolderDataModule, self).__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if not (isinstance(n_voices, int) and 2 <= n_voices <= len(VOICES)):
            raise ValueError(
                f"SpokenDigitsDataModule: n_voices={n_voices!r}; expected an integer in [2, {len(VOICES)}]."
            )
        if not (isinstance(test_voices, int) and 1 <= test_voices < n_voices):
            raise ValueError(
                f"SpokenDigitsDataModule: test_voices={test_voices!r}; expected an integer in [1, n_voices - 1 = "
                f"{n_voices - 1}] (the voices heard only in the test set)."
            )
        if not (isinstance(repeats, int) and repeats >= 1):
            raise ValueError(f"SpokenDigitsDataModule: repeats={repeats!r}; expected an integer ≥ 1.")
        low, high = (float(v) for v in snr_db)
        if not low <= high:
            raise ValueError(f"SpokenDigitsDataModule: snr_db={snr_db!r}; expected (low, high) in dB with low ≤ high.")
        self._init_audio(None, test_voices / n_voices)

    # ---- the utterances --------------------------------------------------------------------------
    def utterances(self) -> list[Utterance]:
        if self._utterances is None:
            hp = self.hparams
            rng = np.random.default_rng([self.seed, 1])
            voices = [VOICES[i] for i in rng.permutation(len(VOICES))[: hp.n_voices]]
            test = set(voices[: hp.test_voices])
            self._class_names = list(CLASS_NAMES)
            self._utterances = [
                Utterance(f"{lang}:{word}:{voice}:{r}", label, voice, "test" if voice in test else "train")
                for voice in voices
                for label, (lang, word) in enumerate([("en", w) for w in ENGLISH] + [("de", w) for w in GERMAN])
                for r in range(hp.repeats)
            ]
        return self._utterances

    def source_fingerprint(self) -> list:
        hp = self.hparams
        keys = ("n_voices", "test_voices", "repeats", "pitch_jitter", "speed_jitter", "amplitude_jitter", "snr_db")
        return [espeak_version(), {k: list(hp[k]) if k == "snr_db" else hp[k] for k in keys}]

    def voice_style(self, voice: str) -> tuple[float, float]:
        """The voice's own base pitch (espeak 0–99) and speed (words per minute), seeded by the voice name."""
        rng = np.random.default_rng([self.seed, 2, *voice.encode()])
        return float(rng.uniform(30, 70)), float(rng.uniform(145, 195))

    def waveform(self, utt: Utterance, index: int) -> tuple[np.ndarray, int]:
        hp = self.hparams
        lang, word, voice, _ = utt.source.split(":")
        rng = np.random.default_rng([self.seed, 3, index])
        pitch, speed = self.voice_style(voice)
        pitch = int(np.clip(round(pitch + rng.uniform(-hp.pitch_jitter, hp.pitch_jitter)), 0, 99))
        speed = int(round(speed * (1 + rng.uniform(-hp.speed_jitter, hp.speed_jitter))))
        speech = synthesise(word, f"{lang}+{voice}", pitch, speed, 100)
        speech = np.trim_zeros(speech)
        rms = math.sqrt(float(np.mean(speech**2))) or 1.0
        speech = speech * (1 + rng.uniform(-hp.amplitude_jitter, hp.amplitude_jitter))
        n = int(round(hp.clip_duration * ESPEAK_RATE))
        if speech.size > n:
            start = (speech.size - n) // 2
            speech = speech[start : start + n]
        clip = np.zeros(n)
        offset = int(rng.integers(0, n - speech.size + 1))
        clip[offset : offset + speech.size] = speech
        snr = rng.uniform(*hp.snr_db)
        clip += rng.standard_normal(n) * rms * 10 ** (-snr / 20)
        return clip, ESPEAK_RATE
