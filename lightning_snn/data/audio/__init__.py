"""Audio → spikes (lauscher's cochlea model), SHD-format files from audio folders, synthetic spoken digits.

:class:`~lightning_snn.data.audio.cochlea.AudioToSpikes` is imported on first use (it loads lauscher, matplotlib
and numba).
"""

from lightning_snn.data.audio.audio_folder import AudioFolderDataModule
from lightning_snn.data.audio.spoken_digits import SpokenDigitsDataModule

__all__ = ["AudioFolderDataModule", "AudioToSpikes", "SpokenDigitsDataModule"]


def __getattr__(name: str):
    if name == "AudioToSpikes":
        from lightning_snn.data.audio.cochlea import AudioToSpikes

        return AudioToSpikes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
