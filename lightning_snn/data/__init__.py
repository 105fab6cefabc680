"""LightningDataModules; every batch is time-major ``(T, B, ...)``. New ones subclass :class:`SplitDataModule`."""

from lightning_snn.data.base import SplitDataModule, seeded_split
from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.delay_task import DelayTaskDataModule
from lightning_snn.data.download import MissingDataError
from lightning_snn.data.event_frames import CIFAR10DVSDataModule, DVSGestureDataModule, NMNISTDataModule
from lightning_snn.data.loaders import eval_dataloader
from lightning_snn.data.mtsxor import MTSXORDataModule, generate_mtsxor
from lightning_snn.data.sequential_digits import SequentialDigitsDataModule
from lightning_snn.data.sequential_mnist import SequentialMNISTDataModule
from lightning_snn.data.shd import SHDDataModule, SSCDataModule

__all__ = [
    "CIFAR10DVSDataModule",
    "DVSGestureDataModule",
    "DelayTaskDataModule",
    "MTSXORDataModule",
    "MissingDataError",
    "NMNISTDataModule",
    "SHDDataModule",
    "SSCDataModule",
    "SequentialDigitsDataModule",
    "SequentialMNISTDataModule",
    "SplitDataModule",
    "eval_dataloader",
    "generate_mtsxor",
    "seeded_split",
    "time_major_collate",
]
