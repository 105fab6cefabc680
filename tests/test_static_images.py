"""Static images for PLIF's direct encoding: CIFAR-10 batch files, MNIST IDX files, normalisation, crop/flip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from data_files import write_mnist

from lightning_snn.data.static_images import StaticImageDataModule, crop_and_flip, read_cifar10_batch


def write_cifar10(directory, n_per_batch: int = 3, seed: int = 0) -> dict:
    """The six python batch files, as the CIFAR-10 archive holds them (bytes keys, protocol 2)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [b"x.png"] * n_per_batch,
        }
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
        out[name] = (data, labels)
    return out


def test_cifar10_batches_are_read_as_rgb_planes_and_normalised(tmp_path):
    files = write_cifar10(tmp_path)
    dm = StaticImageDataModule(dataset="cifar10", data_dir=str(tmp_path), batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert len(dm.splits["train"]) == 15 and len(dm.splits["test"]) == 3
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (1, 3, 3, 32, 32)
    data, labels = files["test_batch"]
    # pixel (channel 1, row 2, col 5) of image 0 is data[0, 1024 + 2 * 32 + 5], then (p/255 - mean) / std
    want = (data[0, 1024 + 69] / 255 - 0.4822) / 0.1994
    assert x[0, 0, 1, 2, 5].item() == pytest.approx(want, rel=1e-5)
    assert y.tolist() == labels
    assert dm.splits["val"] is dm.splits["test"]  # val_fraction=0: PLIF's accuracy-A protocol


def test_mnist_idx_files_give_one_step_images(tmp_path):
    data = write_mnist(tmp_path, n_train=10, n_test=4, gz=True)
    dm = StaticImageDataModule(dataset="fashion_mnist", data_dir=str(tmp_path), batch_size=4, val_fraction=0.2)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [8, 2, 4]
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (1, 4, 1, 28, 28)
    images = data["t10k-images-idx3-ubyte"]
    assert torch.allclose(x[0, :, 0], (torch.as_tensor(images[:4]).float() / 255 - 0.2860) / 0.3530)


def test_missing_and_malformed_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1.*cifar-10-python.tar.gz"):
        StaticImageDataModule(dataset="cifar10", data_dir=str(tmp_path)).prepare_data()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        StaticImageDataModule(dataset="mnist", data_dir=str(tmp_path)).prepare_data()
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"data_batch_1 cannot be read.*Replace data_batch_1"):
        read_cifar10_batch(bad)
    bad.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"expected uint8 data \(N, 3072\)"):
        read_cifar10_batch(bad)
    bad.write_bytes(pickle.dumps({"data": torch.nn.Linear(1, 1)}))  # any other object is never unpickled
    with pytest.raises(ValueError, match="never loaded"):
        read_cifar10_batch(bad)
    with pytest.raises(ValueError, match="expected one of"):
        StaticImageDataModule(dataset="svhn")


def test_crop_and_flip_is_a_shifted_window_of_the_zero_padded_image():
    torch.manual_seed(0)
    image = torch.arange(2 * 6 * 6, dtype=torch.uint8).reshape(2, 6, 6) + 1
    padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
    windows = {padded[:, i : i + 6, j : j + 6] for i in range(5) for j in range(5)}
    seen_flip = False
    for _ in range(20):
        out = crop_and_flip(image, padding=2)
        plain = any(torch.equal(out, w) for w in windows)
        flipped = any(torch.equal(out.flip(-1), w) for w in windows)
        assert plain or flipped
        seen_flip |= flipped and not plain
    assert seen_flip
