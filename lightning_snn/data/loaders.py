"""Time-major DataLoaders, and evaluation loaders that count every sample exactly once under DDP.

PyTorch's ``DistributedSampler`` (which Lightning injects under DDP) pads validation and test sets whose
size does not divide by the world size, so a few samples are counted twice and the global accuracy is
biased. Under an initialised process group, :func:`eval_dataloader` uses :class:`UnrepeatedDistributedSampler`
instead: a ``DistributedSampler`` that neither pads nor drops, which Lightning keeps as it is (its documented
``use_distributed_sampler`` behaviour: a loader's own distributed sampler is not replaced). In one
process it is a plain loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_snn.data.collate import time_major_collate


class UnrepeatedDistributedSampler(DistributedSampler):
    """A ``DistributedSampler`` without padding: rank ``r`` of ``W`` gets the indices ``r, r + W, r + 2W, ...``.

    Ranks may get one sample more than others, so it is for evaluation only (DDP training needs equal
    batch counts). Every rank must get at least one sample, or DDP would wait for it forever.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.total_size = len(dataset)
        self.num_samples = len(range(self.rank, self.total_size, self.num_replicas))
        if self.num_samples == 0 and self.total_size:
            raise ValueError(
                f"UnrepeatedDistributedSampler: the dataset has {self.total_size} samples for {self.num_replicas} "
                f"ranks, so rank {self.rank} would get none and wait forever. Evaluate on at most "
                f"{self.total_size} devices, or with a larger validation/test split."
            )

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.total_size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
            indices = order.tolist()
        else:
            indices = list(range(self.total_size))
        return iter(indices[self.rank :: self.num_replicas])


def eval_dataloader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable = time_major_collate,
    num_workers: int = 0,
    **kwargs,
) -> DataLoader:
    """An unshuffled loader that gives each sample to exactly one rank (no padding) under DDP."""
    sampler = UnrepeatedDistributedSampler(dataset) if dist.is_available() and dist.is_initialized() else None
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, num_workers=num_workers, **kwargs
    )


def time_major_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    collate_fn: Callable = time_major_collate,
    **kwargs,
) -> DataLoader:
    """A shuffled training loader, or an :func:`eval_dataloader` (``shuffle=False``); time-major batches."""
    if not shuffle:
        return eval_dataloader(dataset, batch_size, collate_fn, num_workers, **kwargs)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, collate_fn=collate_fn, num_workers=num_workers, **kwargs
    )


def __getattr__(name: str):
    # SplitDataModule moved to lightning_snn.data.base (which imports this module); the old path still works.
    if name == "SplitDataModule":
        from lightning_snn.data.base import SplitDataModule

        return SplitDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
