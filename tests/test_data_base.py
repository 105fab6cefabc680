"""The DataModule base (lightning_snn.data.base): seeded split, argument checks, loader factory.

The ``*_old_formula`` helpers are the split code each DataModule had before it used :func:`seeded_split`,
copied verbatim: the splits must stay bit-identical (same samples, same order) so that results and
checkpoints made before stay valid.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from data_files import write_cifar10dvs, write_dvs_gesture, write_heidelberg, write_mnist, write_nmnist
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset

import lightning_snn.data as data
from lightning_snn.data.base import SplitDataModule, check_fraction, check_int, seeded_split
from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.event_frames import EventFramesDataModule
from lightning_snn.data.loaders import UnrepeatedDistributedSampler, eval_dataloader, time_major_loader
from lightning_snn.data.sequential_digits import SequentialImageDataModule, images_to_sequences
from lightning_snn.data.shd import HeidelbergDataModule

LEAVES = [getattr(data, name) for name in data.__all__ if name.endswith("DataModule") and name != "SplitDataModule"]
SHARED = [SplitDataModule, HeidelbergDataModule, EventFramesDataModule, SequentialImageDataModule]

# --- the old split formulas, verbatim ----------------------------------------------------------


def digits_old_formula(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def mnist_old_formula(n: int, n_val: int, seed: int) -> dict[str, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return {"val": order[:n_val], "train": order[n_val:]}


def heidelberg_old_formula(n: int, val_fraction: float, seed: int) -> dict[str, list[int]]:
    n_val = int(round(val_fraction * n))
    n_train = n - n_val
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return {"train": order[:n_train], "val": order[n_train:]}


def event_frames_old_formula(n: int, fractions: tuple[float, ...], seed: int, offset: int = 0) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed + offset)
    order = torch.randperm(n, generator=gen).tolist()
    sizes = [int(round(f * n)) for f in fractions]
    parts, start = [], n - sum(sizes)
    parts.append(order[:start])
    for size in sizes:
        parts.append(order[start : start + size])
        start += size
    return parts


# --- seeded_split ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 30, 1797])
@pytest.mark.parametrize("seed", [0, 3, 12345])
def test_seeded_split_reproduces_every_old_formula(n, seed):
    for vf, tf in ((0.15, 0.2), (0.25, 0.125), (0.5, 0.1)):  # 0.125 · 30 = 3.75, 0.25 · 30 = 7.5: rounding
        old = digits_old_formula(n, vf, tf, seed)
        new = seeded_split(n, [tf, vf, None], seed)
        assert [old[s].tolist() for s in ("test", "val", "train")] == new
        old = heidelberg_old_formula(n, vf, seed)
        assert [old["train"], old["val"]] == seeded_split(n, [None, vf], seed)
        assert event_frames_old_formula(n, (vf, tf), seed) == seeded_split(n, [None, vf, tf], seed)
    for n_val in {0, n // 3, n - 1}:
        old = mnist_old_formula(n, n_val, seed)
        assert [old["val"].tolist(), old["train"].tolist()] == seeded_split(n, [n_val, None], seed)


def test_seeded_split_is_a_partition_and_counts_are_exact():
    parts = seeded_split(10, [3, None, 0.2], seed=1)
    assert [len(p) for p in parts] == [3, 5, 2]
    assert sorted(i for p in parts for i in p) == list(range(10))
    assert seeded_split(10, [4, 6], seed=1) == seeded_split(10, [4, None], seed=1)
    assert seeded_split(0, [None, 0.2], seed=0) == [[], []]


@pytest.mark.parametrize(
    "parts, message",
    [
        ([None, None], "at most one None"),
        ([8, 3], "ask for 11 of 10"),
        ([3, 3], "adding up to 10 when there is no None"),
        ([-1, None], "neither a count"),
        ([1.5, None], "neither a count"),
        ([True, None], "neither a count"),
    ],
)
def test_seeded_split_rejects_bad_parts(parts, message):
    with pytest.raises(ValueError, match=message):
        seeded_split(10, parts, seed=0)


# --- every DataModule's split equals its old formula --------------------------------------------


@pytest.mark.parametrize("seed, vf, tf", [(0, 0.15, 0.2), (7, 0.1, 0.05)])
def test_digits_split_is_bit_identical_to_the_old_formula(seed, vf, tf):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = images_to_sequences(digits.images, 16.0, None)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    dm = data.SequentialDigitsDataModule(seed=seed, val_fraction=vf, test_fraction=tf)
    dm.setup()
    for split, idx in digits_old_formula(len(y), vf, tf, seed).items():
        assert torch.equal(dm.splits[split].tensors[0], x[idx]) and torch.equal(dm.splits[split].tensors[1], y[idx])


@pytest.mark.parametrize("seed, n_val", [(0, 3), (5, 7)])
def test_mnist_split_is_bit_identical_to_the_old_formula(tmp_path, seed, n_val):
    files = write_mnist(tmp_path, n_train=12)
    x = images_to_sequences(files["train-images-idx3-ubyte"], 255.0, None)
    y = torch.as_tensor(files["train-labels-idx1-ubyte"].astype(np.int64))
    dm = data.SequentialMNISTDataModule(data_dir=str(tmp_path), n_val=n_val, seed=seed)
    dm.setup()
    for split, idx in mnist_old_formula(12, n_val, seed).items():
        assert torch.equal(dm.splits[split].tensors[0], x[idx]) and torch.equal(dm.splits[split].tensors[1], y[idx])


@pytest.mark.parametrize("seed, vf", [(0, 0.2), (3, 0.25), (4, 0.05)])
def test_shd_split_is_bit_identical_to_the_old_formula(tmp_path, seed, vf):
    write_heidelberg(tmp_path, "shd", {"train": 30, "test": 4}, num_classes=20)
    dm = data.SHDDataModule(data_dir=tmp_path, val_fraction=vf, seed=seed)
    dm.setup()
    old = heidelberg_old_formula(30, vf, seed)
    assert dm.splits["train"].indices == old["train"] and dm.splits["val"].indices == old["val"]


@pytest.mark.parametrize("seed, vf", [(0, 0.1), (2, 0.125)])
def test_nmnist_and_dvs_gesture_splits_are_bit_identical_to_the_old_formula(tmp_path, seed, vf):
    write_nmnist(tmp_path, {"Train": 2, "Test": 1}, n_events=2)
    write_dvs_gesture(
        tmp_path,
        {"ibmGestureTrain": [(f"user0{i}_led", i) for i in range(1, 9)], "ibmGestureTest": [("user09_led", 2)]},
        n_events=2,
    )
    for dm, n in ((data.NMNISTDataModule, 20), (data.DVSGestureDataModule, 8)):
        dm = dm(data_dir=tmp_path, val_fraction=vf, seed=seed)
        dm.setup()
        train, val = event_frames_old_formula(n, (vf,), seed)
        assert dm.splits["train"].indices == train and dm.splits["val"].indices == val


def test_cifar10dvs_split_is_bit_identical_to_the_old_formula(tmp_path):
    pytest.importorskip("aedat", reason="CIFAR10-DVS needs the 'aedat' package (pip install aedat)")
    write_cifar10dvs(tmp_path, per_class=3, n_events=2)
    dm = data.CIFAR10DVSDataModule(data_dir=tmp_path, val_fraction=0.15, test_fraction=0.25, seed=4)
    dm.setup()
    old = event_frames_old_formula(30, (0.15, 0.25), 4)
    assert [dm.splits[s].indices for s in ("train", "val", "test")] == old


def test_a_zero_val_fraction_validates_on_the_test_split(tmp_path):
    write_heidelberg(tmp_path, "shd", {"train": 6, "test": 4}, num_classes=20)
    dm = data.SHDDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    assert dm.splits["val"] is dm.splits["test"] and len(dm.splits["train"]) == 6


# --- keyword-only arguments, hparams and argument checks ----------------------------------------


@pytest.mark.parametrize("cls", LEAVES + SHARED, ids=lambda c: c.__name__)
def test_every_datamodule_takes_keyword_only_arguments(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


@pytest.mark.parametrize("cls", LEAVES, ids=lambda c: c.__name__)
def test_hparams_hold_every_constructor_argument(cls):
    kwargs = {"data_dir": "somewhere"} if cls is data.SequentialMNISTDataModule else {}
    dm = cls(**kwargs)
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    assert sorted(dm.hparams) == sorted(names)
    assert (dm.batch_size, dm.num_workers, dm.seed) == (dm.hparams.batch_size, dm.hparams.num_workers, dm.hparams.seed)


@pytest.mark.parametrize("cls", LEAVES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "name, value, expected",
    [("batch_size", 0, "batch_size >= 1"), ("num_workers", -1, "num_workers >= 0"), ("batch_size", 2.5, ">= 1")],
)
def test_bad_loader_arguments_name_the_datamodule_argument_value_and_fix(cls, name, value, expected):
    kwargs = {"data_dir": "somewhere"} if cls is data.SequentialMNISTDataModule else {}
    with pytest.raises(ValueError) as err:
        cls(**kwargs, **{name: value})
    msg = str(err.value)
    assert msg.startswith(f"{cls.__name__}: got {name}={value!r}") and expected in msg and f"Pass {name}=" in msg


def test_fraction_checks():
    assert check_fraction("X", "val_fraction", 0) == 0.0 and isinstance(check_fraction("X", "f", 0), float)
    for bad in (1.0, -0.1, "0.2", None, True):
        with pytest.raises(ValueError, match=r"X: got f=.*; expected a number with 0 <= f < 1\. Pass f in that range"):
            check_fraction("X", "f", bad)
    with pytest.raises(ValueError, match="0 < f < 1"):
        check_fraction("X", "f", 0.0, zero_ok=False)
    with pytest.raises(ValueError, match=r"SHDDataModule: got val_fraction=1\.5"):
        data.SHDDataModule(val_fraction=1.5)
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be < 1.*got 0\.5 \+ 0\.6 = 1\.1"):
        data.SequentialDigitsDataModule(val_fraction=0.5, test_fraction=0.6)


def test_int_check_explains_why():
    assert check_int("X", "n", np.int64(3), 1) == 3
    with pytest.raises(ValueError, match=r"got tail=0; expected an integer with tail >= 1 \(the last spike"):
        data.DelayTaskDataModule(tail=0)


# --- the loader factory -------------------------------------------------------------------------


class Toy(SplitDataModule):
    """A DataModule as the extension guide writes one."""

    def __init__(
        self, *, n: int = 10, batch_size: int = 4, num_workers: int = 0, seed: int = 0, collate_fn=time_major_collate
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, collate_fn=collate_fn)
        self.built = 0

    def build_splits(self):
        self.built += 1
        full = TensorDataset(
            torch.arange(self.hparams.n, dtype=torch.float32)[:, None, None], torch.zeros(self.hparams.n)
        )
        train, val = self.split(full, [None, 0.2])
        return {"train": train, "val": val, "test": full}


def test_loaders_are_built_from_the_splits_with_the_settings():
    dm = Toy(batch_size=3)
    train = dm.train_dataloader()  # setup runs on demand, once
    assert dm.built == 1 and isinstance(train.sampler, RandomSampler) and train.batch_size == 3
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert isinstance(loader.sampler, SequentialSampler) and loader.collate_fn is time_major_collate
    assert dm.built == 1 and not train.persistent_workers and train.num_workers == 0
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (1, 3, 1)  # time-major (T, B, C)
    assert len(dm.val_dataloader().dataset) == 2 and dm.splits["val"].indices == seeded_split(10, [None, 0.2], 0)[1]
    assert dm.dataloader("train", shuffle=False).sampler.__class__ is SequentialSampler
    with pytest.raises(KeyError, match="Toy has no split 'predict'"):
        dm.dataloader("predict")


def test_custom_collate_and_persistent_workers():
    def batch_major(batch):
        return torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])

    dm = Toy(batch_size=5, num_workers=1, collate_fn=batch_major)
    loader = dm.train_dataloader()
    assert loader.collate_fn is batch_major and loader.persistent_workers and loader.num_workers == 1
    assert dict(dm.hparams) == {"n": 10, "batch_size": 5, "num_workers": 1, "seed": 0}  # a function is no hparam


def test_build_splits_must_give_train_val_and_test():
    class Partial(SplitDataModule):
        def __init__(self) -> None:
            super().__init__(batch_size=1)

        def build_splits(self):
            return {"train": TensorDataset(torch.zeros(2))}

    with pytest.raises(ValueError, match=r"Partial.build_splits\(\) returned the splits \['train'\], without"):
        Partial().setup()
    with pytest.raises(NotImplementedError, match="must define build_splits"):
        SplitDataModule(batch_size=1).setup()


# --- evaluation loaders and the unrepeated sampler ----------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 8, 37])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_unrepeated_sampler_gives_every_sample_to_exactly_one_rank(n, world):
    if n < world:
        with pytest.raises(ValueError, match=f"has {n} samples for {world} ranks"):
            UnrepeatedDistributedSampler(range(n), num_replicas=world, rank=world - 1)
        return
    ranks = [list(UnrepeatedDistributedSampler(range(n), num_replicas=world, rank=r)) for r in range(world)]
    assert sorted(i for r in ranks for i in r) == list(range(n))
    assert max(map(len, ranks)) - min(map(len, ranks)) <= 1
    assert [len(UnrepeatedDistributedSampler(range(n), num_replicas=world, rank=r)) for r in range(world)] == list(
        map(len, ranks)
    )
    shuffled = UnrepeatedDistributedSampler(range(n), num_replicas=world, rank=0, shuffle=True, seed=1)
    shuffled.set_epoch(2)
    assert list(shuffled) == torch.randperm(n, generator=torch.Generator().manual_seed(3)).tolist()[::world]


def test_single_process_eval_loader_is_plain_and_old_names_import():
    from lightning_snn.data.loaders import SplitDataModule as Old

    assert Old is SplitDataModule
    loader = eval_dataloader(TensorDataset(torch.zeros(5, 2, 1), torch.zeros(5)), 2)
    assert isinstance(loader, DataLoader) and isinstance(loader.sampler, SequentialSampler)
    assert isinstance(time_major_loader(range(4), 2, True).sampler, RandomSampler)
