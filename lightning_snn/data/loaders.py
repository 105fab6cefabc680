"""Time-major DataLoaders, and evaluation loaders that count every sample exactly once under DDP.

Lightning's default ``DistributedSampler`` pads validation and test sets whose size does not divide by
the world size, so a few samples are counted twice and the global accuracy is biased. Under an
initialised process group, ``eval_dataloader`` uses Lightning's ``UnrepeatedDistributedSampler``
instead (Lightning keeps a loader's own distributed sampler); in one process it is a plain loader.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from lightning_snn.data.collate import time_major_collate


def eval_dataloader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable = time_major_collate,
    num_workers: int = 0,
    **kwargs,
) -> DataLoader:
    """An unshuffled loader that gives each sample to exactly one rank (no padding) under DDP."""
    sampler = (
        UnrepeatedDistributedSampler(dataset, shuffle=False) if dist.is_available() and dist.is_initialized() else None
    )
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, num_workers=num_workers, **kwargs
    )


def time_major_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0, **kwargs) -> DataLoader:
    """A shuffled training loader, or an :func:`eval_dataloader` (``shuffle=False``), time-major batches."""
    if not shuffle:
        return eval_dataloader(dataset, batch_size, num_workers=num_workers, **kwargs)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, collate_fn=time_major_collate, num_workers=num_workers, **kwargs
    )


class SplitDataModule(L.LightningDataModule):
    """Base for DataModules with ``train`` / ``val`` / ``test`` splits: subclasses define ``_loader``."""

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
