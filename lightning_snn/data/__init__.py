"""LightningDataModules; every batch is time-major ``(T, B, ...)``. New ones subclass :class:`SplitDataModule`."""

from lightning_snn.data.audio import AudioFolderDataModule, SpokenDigitsDataModule
from lightning_snn.data.base import SplitDataModule, seeded_split
from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.delay_task import DelayTaskDataModule
from lightning_snn.data.download import MissingDataError
from lightning_snn.data.event_frames import CIFAR10DVSDataModule, DVSGestureDataModule, NMNISTDataModule
from lightning_snn.data.loaders import eval_dataloader
from lightning_snn.data.mtsxor import MTSXORDataModule, generate_mtsxor
from lightning_snn.data.rawhd import RawHDDataModule
from lightning_snn.data.sequential_digits import SequentialDigitsDataModule
from lightning_snn.data.sequential_mnist import SequentialMNISTDataModule
from lightning_snn.data.shd import SHDDataModule, SSCDataModule
from lightning_snn.data.static_images import StaticImageDataModule

__all__ = [
    "AudioFolderDataModule",
    "CIFAR10DVSDataModule",
    "DVSGestureDataModule",
    "DelayTaskDataModule",
    "MTSXORDataModule",
    "MissingDataError",
    "NMNISTDataModule",
    "RawHDDataModule",
    "SHDDataModule",
    "SSCDataModule",
    "SequentialDigitsDataModule",
    "SequentialMNISTDataModule",
    "SpokenDigitsDataModule",
    "SplitDataModule",
    "StaticImageDataModule",
    "eval_dataloader",
    "generate_mtsxor",
    "seeded_split",
    "time_major_collate",
]
