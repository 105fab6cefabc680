import numpy as np
import pytest
import torch
from data_files import idx_bytes, write_mnist

from lightning_snn.data.sequential_digits import SequentialDigitsDataModule, pixel_permutation
from lightning_snn.data.sequential_mnist import SequentialMNISTDataModule, parse_idx, read_idx


def _setup(**kw):
    dm = SequentialDigitsDataModule(**kw)
    dm.setup()
    return dm


def test_digits_splits_shapes_and_values():
    dm = _setup(batch_size=32, seed=1)
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"test": 359, "val": 270, "train": 1168} and sum(sizes.values()) == 1797
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 32, 1) and y.shape == (32,) and y.dtype == torch.long
    assert 0.0 <= dm.splits["train"].tensors[0].min() and dm.splits["train"].tensors[0].max() == 1.0
    assert dm.n_inputs == 1 and dm.num_classes == 10


def test_digits_sequence_is_the_raster_scan_of_the_image():
    from sklearn.datasets import load_digits

    images = load_digits().images
    dm = _setup(seed=0)
    x, y = dm.splits["test"].tensors
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    first = order[0].item()
    torch.testing.assert_close(x[0, :, 0], torch.tensor(images[first].reshape(-1) / 16.0, dtype=torch.float32))
    assert int(y[0]) == int(load_digits().target[first])


def test_digits_split_is_seeded_and_disjoint():
    a, b, c = _setup(seed=3), _setup(seed=3), _setup(seed=4)
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split].tensors[0], b.splits[split].tensors[0])
    assert not torch.equal(a.splits["test"].tensors[0], c.splits["test"].tensors[0])
    from collections import Counter

    from sklearn.datasets import load_digits

    # The three splits partition the 1797 images: same multiset of (image, label) rows as the full set.
    full = load_digits()
    expected = Counter((tuple(img.reshape(-1).astype(int)), int(t)) for img, t in zip(full.images, full.target))
    got = Counter(
        (tuple((x[:, 0] * 16).round().int().tolist()), int(t))
        for split in a.splits.values()
        for x, t in zip(*split.tensors)
    )
    assert got == expected


def test_permuted_digits_use_one_fixed_order():
    plain, perm = _setup(seed=0), _setup(seed=0, permute=True, permutation_seed=5)
    order = pixel_permutation(64, 5)
    assert sorted(order.tolist()) == list(range(64)) and not torch.equal(order, torch.arange(64))
    torch.testing.assert_close(perm.splits["val"].tensors[0], plain.splits["val"].tensors[0][:, order])
    other = _setup(seed=0, permute=True, permutation_seed=6)
    assert not torch.equal(other.splits["val"].tensors[0], perm.splits["val"].tensors[0])


def test_pixels_per_step():
    dm = _setup(pixels_per_step=4)
    assert dm.splits["train"].tensors[0].shape[1:] == (16, 4) and dm.n_inputs == 4
    with pytest.raises(ValueError, match="pixels_per_step=5 does not divide"):
        _setup(pixels_per_step=5)


def test_digits_bad_arguments():
    with pytest.raises(ValueError, match="val_fraction"):
        SequentialDigitsDataModule(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        SequentialDigitsDataModule(batch_size=0)


# --- MNIST IDX ---------------------------------------------------------------------------------


def test_parse_idx_golden():
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    assert parse_idx(raw).tolist() == [[1, 2, 3], [4, 5, 6]]
    ints = idx_bytes(np.array([-1, 70000]), code=0x0C)
    assert parse_idx(ints).tolist() == [-1, 70000]


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_idx_files(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    dm = SequentialMNISTDataModule(data_dir=str(tmp_path), batch_size=4, n_val=3, seed=0)
    dm.prepare_data()
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 9, "val": 3, "test": 5}
    x_test, y_test = dm.splits["test"].tensors
    assert x_test.shape == (5, 784, 1)
    torch.testing.assert_close(
        x_test[2, :, 0], torch.tensor(data["t10k-images-idx3-ubyte"][2].reshape(-1) / 255.0, dtype=torch.float32)
    )
    assert y_test.tolist() == data["t10k-labels-idx1-ubyte"].tolist()
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (784, 4, 1)
    all_train = torch.cat([dm.splits["train"].tensors[1], dm.splits["val"].tensors[1]]).sort().values
    assert all_train.tolist() == sorted(data["train-labels-idx1-ubyte"].tolist())


def test_permuted_mnist(tmp_path):
    data = write_mnist(tmp_path)
    dm = SequentialMNISTDataModule(data_dir=str(tmp_path), n_val=2, permute=True, permutation_seed=1, pixels_per_step=4)
    dm.setup()
    order = pixel_permutation(784, 1)
    expected = torch.tensor(data["t10k-images-idx3-ubyte"][0].reshape(-1) / 255.0, dtype=torch.float32)[order]
    torch.testing.assert_close(dm.splits["test"].tensors[0][0].reshape(-1), expected)
    assert dm.splits["test"].tensors[0].shape == (5, 196, 4)


def test_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        SequentialMNISTDataModule(data_dir=str(tmp_path / "nope")).setup()
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    dm = SequentialMNISTDataModule(data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="'t10k-labels-idx1-ubyte' not found.*t10k-labels-idx1-ubyte.gz"):
        dm.prepare_data()


def test_mnist_corrupt_files(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match="type code 0x42"):
        read_idx(path)
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="corrupt"):
        read_idx(bad_gz)


def test_mnist_image_label_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(11, dtype=np.uint8)))
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        SequentialMNISTDataModule(data_dir=str(tmp_path), n_val=2).setup()
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match="n_val=12 leaves no training"):
        SequentialMNISTDataModule(data_dir=str(tmp_path), n_val=12).setup()
