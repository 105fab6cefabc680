"""``RawHDDataModule`` on small files in the authors' format (``mbalazs98/spatiotemporal`` datasets.py:20-35)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_snn.data import MissingDataError, RawHDDataModule
from lightning_snn.data.rawhd import FILES, write_rawhd


def arrays(n_train: int = 10, n_test: int = 6, steps: int = 7, channels: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = {"train": rng.random((n_train, steps, channels)), "test": rng.random((n_test, steps, channels))}
    y = {"train": rng.integers(0, 20, n_train), "test": rng.integers(0, 20, n_test)}
    return x, y


def test_batches_are_the_files_times_20_time_major(tmp_path):
    x, y = arrays()
    write_rawhd(tmp_path / "RawHD", x, y)
    data = RawHDDataModule(data_dir=str(tmp_path), val_fraction=0.0, batch_size=6)
    xb, yb = next(iter(data.test_dataloader()))
    assert xb.shape == (7, 6, 40) and xb.dtype == torch.float32
    expected = torch.from_numpy(x["test"].astype(np.float32) * np.float32(20.0)).transpose(0, 1)
    torch.testing.assert_close(xb, expected)  # the authors' np.load(...) * 20
    assert yb.tolist() == y["test"].tolist()
    assert data.splits["val"] is data.splits["test"]  # val_fraction 0: the authors validate on the test set


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    write_rawhd(tmp_path, *arrays(n_train=20))  # the files directly in data_dir work too
    first = RawHDDataModule(data_dir=str(tmp_path), val_fraction=0.25, batch_size=4, seed=3)
    again = RawHDDataModule(data_dir=str(tmp_path), val_fraction=0.25, batch_size=4, seed=3)
    first.setup(), again.setup()
    assert len(first.splits["val"]) == 5 and len(first.splits["train"]) == 15
    assert first.splits["val"].indices == again.splits["val"].indices
    assert not set(first.splits["val"].indices) & set(first.splits["train"].indices)


def test_a_missing_file_is_named_with_where_to_put_it(tmp_path):
    x, y = arrays()
    write_rawhd(tmp_path / "RawHD", x, y)
    (tmp_path / "RawHD" / FILES["test"][1]).unlink()
    with pytest.raises(MissingDataError, match="testing_y_data.npy.*not found.*RawHD"):
        RawHDDataModule(data_dir=str(tmp_path), batch_size=2).setup()


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda x, y: x.update(train=x["train"][..., :30]), r"shape \(10, 7, 30\).*n_channels"),
        (lambda x, y: y.update(train=y["train"][:4]), "expected 10 integer labels"),
        (lambda x, y: y.update(train=y["train"] + 20), r"labels in \[20"),
    ],
)
def test_malformed_arrays_are_rejected_with_the_file_named(tmp_path, change, match):
    x, y = arrays()
    change(x, y)
    write_rawhd(tmp_path, x, y)
    with pytest.raises(ValueError, match=match):
        RawHDDataModule(data_dir=str(tmp_path), batch_size=2).setup()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="input_scale"):
        RawHDDataModule(input_scale=float("inf"))
    with pytest.raises(ValueError, match="val_fraction"):
        RawHDDataModule(val_fraction=1.0)
