"""SHD / SSC DataModules on tiny HDF5 files in the real format (no network)."""

from __future__ import annotations

import pickle
import urllib.request

import h5py
import numpy as np
import pytest
import tonic.download_utils
import torch
from data_files import write_heidelberg

from lightning_snn.cli import main
from lightning_snn.data.download import MissingDataError
from lightning_snn.data.shd import HeidelbergFile, SHDDataModule, SSCDataModule, write_heidelberg_file


@pytest.fixture
def shd(tmp_path):
    return tmp_path, write_heidelberg(tmp_path, "shd", {"train": 30, "test": 12}, num_classes=20)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network touched")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)


def _all(loader):
    xs, ys = zip(*[(b[0], b[1]) for b in loader])
    return torch.cat(xs, dim=1), torch.cat(ys)


def test_batches_keep_every_event_and_label(shd, no_network):
    root, data = shd
    dm = SHDDataModule(data_dir=root, n_steps=25, n_channels=140, batch_size=7, val_fraction=0.0)
    dm.prepare_data()
    dm.setup()
    x, y = _all(dm.test_dataloader())
    times, units, labels = data["test"]
    assert x.shape == (25, 12, 140)
    assert y.tolist() == labels.tolist()
    assert x.sum((0, 2)).tolist() == [len(t) for t in times]  # event counts preserved by binning
    for i in (0, 5):
        np.testing.assert_array_equal(x[:, i].sum(0).numpy(), np.bincount(units[i] // 5, minlength=140))


def test_seeded_validation_split(shd):
    root, _ = shd
    a = SHDDataModule(data_dir=root, batch_size=4, val_fraction=0.2, seed=3)
    a.setup()
    b = SHDDataModule(data_dir=root, batch_size=4, val_fraction=0.2, seed=3)
    b.setup()
    c = SHDDataModule(data_dir=root, batch_size=4, val_fraction=0.2, seed=4)
    c.setup()
    assert (len(a.splits["train"]), len(a.splits["val"]), len(a.splits["test"])) == (24, 6, 12)
    assert a.splits["val"].indices == b.splits["val"].indices != c.splits["val"].indices
    assert not set(a.splits["val"].indices) & set(a.splits["train"].indices)


def test_ssc_uses_its_own_valid_file(tmp_path):
    data = write_heidelberg(tmp_path, "ssc", {"train": 10, "valid": 6, "test": 4}, num_classes=35)
    dm = SSCDataModule(data_dir=tmp_path, n_steps=10, n_channels=70, batch_size=8)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [10, 6, 4]
    _, y = _all(dm.val_dataloader())
    assert y.tolist() == data["valid"][2].tolist()


def test_raw_variant_pads_and_returns_lengths(tmp_path):
    times = [np.array([0.0, 0.0625]), np.array([0.0, 0.1, 0.25]), np.zeros(0)]
    units = [np.array([0, 699]), np.array([1, 2, 3]), np.zeros(0, dtype=int)]
    for split in ("train", "test"):
        write_heidelberg_file(tmp_path / "SHD" / f"shd_{split}.h5", times, units, np.array([0, 1, 2]))
    dm = SHDDataModule(data_dir=tmp_path, dt=0.01, n_channels=700, batch_size=3, val_fraction=0.0)
    dm.setup()
    x, y, lengths = next(iter(dm.test_dataloader()))
    assert lengths.tolist() == [7, 26, 1]  # float16 times as in SHD; the empty recording is one zero frame
    assert x.shape == (26, 3, 700) and x.sum((0, 2)).tolist() == [2, 3, 0]
    assert x[6, 0, 699] == 1 and x[7:, 0].sum() == 0  # padding is zero


def test_missing_file_error_names_file_dir_and_url(tmp_path, no_network):
    dm = SHDDataModule(data_dir=tmp_path, download=False)
    with pytest.raises(MissingDataError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "shd_train.h5" in msg and str(tmp_path / "SHD") in msg
    assert "https://zenkelab.org/datasets/shd_train.h5.zip" in msg and "by hand" in msg
    with pytest.raises(FileNotFoundError):  # setup never downloads either
        dm.setup()


def test_unreachable_download_raises_the_same_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dm = SHDDataModule(data_dir=tmp_path, download=True)
    with pytest.raises(MissingDataError, match=r"shd_train.h5.*Download failed: .*no network here"):
        dm.prepare_data()


def test_local_archive_is_extracted_without_network(shd, no_network):
    import zipfile

    root, _ = shd
    h5 = root / "SHD" / "shd_test.h5"
    with zipfile.ZipFile(root / "SHD" / "shd_test.h5.zip", "w") as z:
        z.write(h5, "shd_test.h5")
    h5.unlink()
    SHDDataModule(data_dir=root).prepare_data()
    assert h5.exists()
    SHDDataModule(data_dir=root, download=True).prepare_data()  # files present: download=True fetches nothing


def test_only_local_rank_zero_downloads(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(MissingDataError, match="shd_train.h5"):
        SHDDataModule(data_dir=tmp_path, download=True).prepare_data()  # rank 1 never calls the network


def test_corrupt_hdf5_errors_name_file_and_key(tmp_path):
    path = tmp_path / "shd_train.h5"
    write_heidelberg_file(path, [np.array([0.1])] * 50, [np.array([3])] * 50, np.zeros(50))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match=f"HDF5 file {path} cannot be opened: it is truncated or corrupt"):
        HeidelbergFile(path, 20)
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.zeros(3))
    with pytest.raises(ValueError, match="has no key 'spikes/times'"):
        HeidelbergFile(path, 20)


def test_out_of_range_labels_and_bad_events(tmp_path):
    path = tmp_path / "SHD" / "shd_train.h5"
    write_heidelberg_file(path, [np.array([0.1])] * 3, [np.array([3])] * 3, np.array([0, 25, 1]))
    with pytest.raises(ValueError, match=r"key 'labels': label 25 at index 1 is out of range \[0, 20\)"):
        HeidelbergFile(path, 20)
    write_heidelberg_file(path, [np.array([0.1, -0.5])], [np.array([3, 4])], np.array([0]))
    write_heidelberg_file(tmp_path / "SHD" / "shd_test.h5", [np.array([0.1])], [np.array([3])], np.array([0]))
    dm = SHDDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    with pytest.raises(ValueError, match=r"shd_train.h5\[0\]: timestamps must be finite and >= 0"):
        dm.splits["train"][0]


def test_reader_reopens_per_process_and_pickles_without_handle(shd):
    root, _ = shd
    reader = HeidelbergFile(root / "SHD" / "shd_test.h5", 20)
    assert reader._h5 is None  # lazy: validation closed its handle
    reader.events(0)
    assert reader._h5 is not None
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._h5 is None and len(clone.events(1)[0]) == len(reader.events(1)[0])
    reader.close()
    clone.close()
    assert reader._h5 is None


def test_two_workers_and_cache_give_the_same_batches(shd):
    root, _ = shd
    plain = SHDDataModule(data_dir=root, n_steps=20, batch_size=6, val_fraction=0.0)
    plain.setup()
    cached = SHDDataModule(
        data_dir=root, n_steps=20, batch_size=6, val_fraction=0.0, num_workers=2, cache_dir=root / "cache"
    )
    cached.prepare_data()
    cached.setup()
    x0, y0 = _all(plain.test_dataloader())
    x1, y1 = _all(cached.test_dataloader())
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert len(list((root / "cache").glob("SHD-test-*/*.npy"))) == 12
    cached.teardown()


@pytest.mark.parametrize(
    "config,name,splits,classes",
    [
        ("configs/shd.yaml", "shd", {"train": 12, "test": 6}, 20),
        ("configs/ssc.yaml", "ssc", {"train": 12, "valid": 6, "test": 6}, 35),
    ],
)
def test_config_fast_dev_run(tmp_path, config, name, splits, classes):
    write_heidelberg(tmp_path, name, splits, classes)
    cli = main(
        [
            "fit",
            "--config",
            config,
            "--trainer.fast_dev_run",
            "true",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.init_args.data_dir",
            str(tmp_path),
            "--data.init_args.cache_dir",
            str(tmp_path / "cache"),
            "--data.init_args.batch_size",
            "4",
            "--model.init_args.network.init_args.hidden",
            "[8, 8]",
        ]
    )
    assert cli.trainer.state.finished
    assert np.isfinite(cli.trainer.callback_metrics["test_loss"].item())  # fit, then test ran
    assert list((tmp_path / "cache").glob(f"{name.upper()}-train-*/*.npy"))


def test_reader_matches_tonic_shd_events(shd):
    root, _ = shd
    (root / "SHD" / "shd_test.h5.zip").write_bytes(b"")  # tonic's presence check wants the archive
    theirs = tonic.datasets.SHD(str(root), train=False)
    ours = HeidelbergFile(root / "SHD" / "shd_test.h5", 20)
    for i in (0, 3, 11):
        events, label = theirs[i]
        times, units = ours.events(i)
        np.testing.assert_array_equal(events["t"], (times.astype(np.float64) * 1e6).astype(int))
        np.testing.assert_array_equal(events["x"], units)
        assert label == ours.labels[i]
    ours.close()


def test_unreadable_chunk_names_file_key_and_index(shd, monkeypatch):
    root, _ = shd
    reader = HeidelbergFile(root / "SHD" / "shd_test.h5", 20)

    def damaged(self, index):
        raise OSError("Can't read data (inflate() failed)")  # what h5py raises for a damaged chunk

    monkeypatch.setattr(h5py.Dataset, "__getitem__", damaged)
    with pytest.raises(ValueError, match=r"shd_test.h5: cannot read key 'spikes/times' at index 4 .*inflate"):
        reader.events(4)
    reader.close()


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ddp_processes_share_one_cache(tmp_path):
    """prepare_data (local rank 0) fills the cache; both spawned ranks then read it."""
    import lightning as L

    from lightning_snn.lit.classifier import SpikingClassifier
    from lightning_snn.models.feedforward import FeedForwardSNN

    write_heidelberg(tmp_path, "shd", {"train": 16, "test": 8}, num_classes=20)
    dm = SHDDataModule(data_dir=tmp_path, n_steps=10, batch_size=4, val_fraction=0.25, cache_dir=tmp_path / "cache")
    model = SpikingClassifier(FeedForwardSNN(140, [8], 20))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, datamodule=dm)
    entries = sorted((tmp_path / "cache").glob("SHD-*/*.npy"))
    assert len(entries) == 24 and not list((tmp_path / "cache").glob("SHD-*/.*.tmp"))
    plain = SHDDataModule(data_dir=tmp_path, n_steps=10, val_fraction=0.0)
    plain.setup()
    cached = SHDDataModule(data_dir=tmp_path, n_steps=10, val_fraction=0.0, cache_dir=tmp_path / "cache")
    cached.setup()
    for i in range(8):
        assert torch.equal(plain.splits["test"][i][0], cached.splits["test"][i][0])
