"""The base of every DataModule here: argument checks, the seeded split and the loader factory.

A DataModule subclasses :class:`SplitDataModule`, takes keyword-only arguments, hands ``batch_size``,
``num_workers`` and ``seed`` to ``super().__init__`` (which checks them and saves every constructor argument
in ``self.hparams``) and returns its ``{"train", "val", "test"}`` datasets from ``build_splits``. The base
builds them once (``setup``, or the first loader asked for) and makes every loader from them: shuffled for
``train``, DDP-exact (:func:`~lightning_snn.data.loaders.eval_dataloader`) for ``val`` and ``test``, with
time-major batches unless another ``collate_fn`` is given. A held-out part of one dataset comes from
:meth:`SplitDataModule.split` (:func:`seeded_split` with the DataModule's ``seed``)::

    class MyDataModule(SplitDataModule):
        def __init__(
            self, *, n: int = 100, val_fraction: float = 0.2, batch_size: int = 32, seed: int = 0, num_workers: int = 0
        ) -> None:
            super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
            check_int(self, "n", n, 1)
            self.val_fraction = check_fraction(self, "val_fraction", val_fraction)

        def build_splits(self) -> dict[str, Dataset]:
            train, val = self.split(make_dataset(self.hparams.n), [None, self.val_fraction])
            return {"train": train, "val": val, "test": make_test_dataset()}
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.loaders import time_major_loader

SPLITS = ("train", "val", "test")


def _owner(owner: object) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def check_int(owner: object, name: str, value, minimum: int, why: str = "") -> int:
    """``value`` if it is an integer ``>= minimum``; else a ``ValueError`` naming ``owner``, ``name`` and the fix."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        because = f" ({why})" if why else ""
        raise ValueError(
            f"{_owner(owner)}: got {name}={value!r}; expected an integer with {name} >= {minimum}{because}. "
            f"Pass {name}={minimum} or more."
        )
    return int(value)


def check_fraction(owner: object, name: str, value, zero_ok: bool = True) -> float:
    """``value`` as a float if it lies in ``[0, 1)`` (``(0, 1)`` with ``zero_ok=False``); else a ``ValueError``."""
    low = "0 <=" if zero_ok else "0 <"
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not (0 <= value < 1) or (value == 0 and not zero_ok):
        raise ValueError(
            f"{_owner(owner)}: got {name}={value!r}; expected a number with {low} {name} < 1. "
            f"Pass {name} in that range (e.g. {name}=0.1)."
        )
    return float(value)


def check_fraction_sum(owner: object, fractions: Mapping[str, float]) -> None:
    """A ``ValueError`` unless the held-out ``fractions`` (name → value) leave some data for training."""
    total = sum(fractions.values())
    if total >= 1:
        names, values = " + ".join(fractions), " + ".join(str(v) for v in fractions.values())
        raise ValueError(
            f"{_owner(owner)}: {names} must be < 1 to leave training data, got {values} = {total:g}. "
            f"Lower one of {', '.join(fractions)}."
        )


def seeded_split(n: int, parts: Sequence[int | float | None], seed: int) -> list[list[int]]:
    """Cut one seeded random permutation of ``range(n)`` into consecutive index lists, in the order of ``parts``.

    Each part is a count (``int``), a fraction of ``n`` (``float``, rounded to the nearest count) or ``None``:
    what the other parts leave (at most one ``None``; without one, the parts must add up to ``n``). The
    permutation is ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``, so the same
    ``(n, parts, seed)`` always gives the same indices in the same order.
    """
    sizes: list[int | None] = []
    for part in parts:
        if part is None or (isinstance(part, numbers.Integral) and not isinstance(part, bool) and part >= 0):
            sizes.append(None if part is None else int(part))
        elif isinstance(part, float) and 0 <= part <= 1:
            sizes.append(int(round(part * n)))
        else:
            raise ValueError(
                f"seeded_split: part {part!r} is neither a count >= 0 (int), a fraction in [0, 1] (float) nor None "
                f"(the rest); parts={list(parts)}. Pass counts, fractions or one None."
            )
    fixed = sum(s for s in sizes if s is not None)
    rest = n - fixed
    if sizes.count(None) > 1 or rest < 0 or (None not in sizes and rest != 0):
        raise ValueError(
            f"seeded_split: parts {list(parts)} ask for {fixed} of {n} items "
            f"({sizes.count(None)} None); give at most one None (the rest) and counts that fit in {n}, "
            f"adding up to {n} when there is no None."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    out, start = [], 0
    for size in sizes:
        stop = start + (rest if size is None else size)
        out.append(order[start:stop])
        start = stop
    return out


class SplitDataModule(L.LightningDataModule):
    """Base of every DataModule: subclasses return their splits from ``build_splits``; the base makes the loaders.

    Keyword-only arguments: ``batch_size`` (>= 1), ``num_workers`` (>= 0; workers persist across epochs),
    ``seed`` (of :meth:`split`) and ``collate_fn`` (default: time-major batches ``(T, B, ...)``). The
    constructor saves every argument of the subclass's ``__init__`` in ``self.hparams`` (Lightning's
    ``save_hyperparameters``), so shared subclasses can read their settings from there.
    """

    def __init__(
        self, *, batch_size: int, num_workers: int = 0, seed: int = 0, collate_fn: Callable = time_major_collate
    ) -> None:
        super().__init__()
        self.batch_size = check_int(self, "batch_size", batch_size, 1)
        self.num_workers = check_int(self, "num_workers", num_workers, 0, "0 loads in the main process")
        self.seed, self.collate_fn = seed, collate_fn
        self.splits: dict[str, Dataset] = {}
        self.save_hyperparameters(ignore=["collate_fn"])  # every constructor argument, the subclasses' too

    def build_splits(self) -> dict[str, Dataset]:
        """The ``train``, ``val`` and ``test`` datasets; called once, by the first :meth:`setup`."""
        raise NotImplementedError(
            f"{type(self).__name__} must define build_splits() returning a dict with the datasets {SPLITS}."
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the splits (once; later calls keep them)."""
        if self.splits:
            return
        splits = self.build_splits()
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(
                f"{type(self).__name__}.build_splits() returned the splits {sorted(splits)}, without {missing}; "
                f"return one dataset for each of {SPLITS}."
            )
        self.splits = dict(splits)

    def split(self, dataset: Dataset, parts: Sequence[int | float | None]) -> list[Subset]:
        """:func:`seeded_split` of ``dataset`` with this DataModule's ``seed``, one ``Subset`` per part."""
        return [Subset(dataset, indices) for indices in seeded_split(len(dataset), parts, self.seed)]

    def dataloader(self, split: str, shuffle: bool | None = None) -> DataLoader:
        """The loader of ``split`` (shuffled for ``train`` unless ``shuffle`` says otherwise; DDP-exact if not)."""
        if split not in self.splits:
            self.setup()
        if split not in self.splits:
            raise KeyError(f"{type(self).__name__} has no split {split!r}; it has {sorted(self.splits)}.")
        return time_major_loader(
            self.splits[split],
            self.batch_size,
            split == "train" if shuffle is None else shuffle,
            self.num_workers,
            collate_fn=self.collate_fn,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of the ``train`` split (Lightning adds its ``DistributedSampler`` under DDP)."""
        return self.dataloader("train")

    def val_dataloader(self) -> DataLoader:
        """Batches of the ``val`` split in order, each sample on exactly one rank under DDP."""
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        """Batches of the ``test`` split in order, each sample on exactly one rank under DDP."""
        return self.dataloader("test")
