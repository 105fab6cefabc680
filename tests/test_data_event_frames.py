"""N-MNIST / DVS Gesture / CIFAR10-DVS DataModules on tiny recordings in tonic's on-disk layout."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tonic.download_utils
import torch
from data_files import write_cifar10dvs, write_dvs_gesture, write_nmnist

from lightning_snn.cli import main
from lightning_snn.data.download import MissingDataError
from lightning_snn.data.event_frames import CIFAR10DVSDataModule, DVSGestureDataModule, NMNISTDataModule


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network touched")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)


def _all(loader):
    xs, ys = zip(*[(b[0], b[1]) for b in loader])
    return torch.cat(xs, dim=1), torch.cat(ys)


def test_nmnist_frames_keep_events_and_labels(tmp_path, no_network):
    files = write_nmnist(tmp_path, {"Train": 2, "Test": 1})
    dm = NMNISTDataModule(data_dir=tmp_path, n_time_bins=10, batch_size=4, val_fraction=0.25, cache_dir=tmp_path / "c")
    dm.prepare_data()
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [15, 5, 10]
    x, y = _all(dm.test_dataloader())
    assert x.shape == (10, 10, 2, 34, 34)
    assert y.tolist() == [label for _, label, _ in files["Test"]]
    assert x.sum((0, 2, 3, 4)).tolist() == [n for *_, n in files["Test"]]  # incl. an empty recording
    assert x[:, 0].sum() == 0
    # the bytes decode to the events we wrote: per-polarity counts of one file
    raw = np.frombuffer(files["Test"][3][0].read_bytes(), dtype=np.uint8).reshape(-1, 5)
    assert x[:, 3].sum((0, 2, 3)).tolist() == np.bincount(raw[:, 2] >> 7, minlength=2).tolist()


def test_nmnist_downsample_and_cache_key(tmp_path):
    write_nmnist(tmp_path, {"Train": 1, "Test": 1})
    full = NMNISTDataModule(data_dir=tmp_path, n_time_bins=4, val_fraction=0.0, cache_dir=tmp_path / "c")
    half = NMNISTDataModule(
        data_dir=tmp_path, n_time_bins=4, spatial_factor=0.5, val_fraction=0.0, cache_dir=tmp_path / "c"
    )
    for dm in (full, half):
        dm.prepare_data()
        dm.setup()
    a, b = full.splits["test"][5][0], half.splits["test"][5][0]
    assert a.shape == (4, 2, 34, 34) and b.shape == (4, 2, 17, 17) and a.sum() == b.sum() == 40
    assert len(list((tmp_path / "c").glob("NMNIST-test-*"))) == 2  # one cache entry per transform


def test_dvs_gesture_layout_labels_and_time_major_batches(tmp_path):
    write_dvs_gesture(
        tmp_path,
        {
            "ibmGestureTrain": [("user01_fluorescent", 0), ("user01_fluorescent", 4), ("user02_led", 10)],
            "ibmGestureTest": [("user24_lab", 3), ("user25_led", 7)],
        },
    )
    dm = DVSGestureDataModule(data_dir=tmp_path, n_time_bins=20, spatial_factor=0.25, batch_size=2, val_fraction=0.0)
    dm.setup()
    assert dm.frame_shape == (2, 32, 32)
    x, y = _all(dm.test_dataloader())
    assert x.shape == (20, 2, 2, 32, 32) and sorted(y.tolist()) == [3, 7]
    assert x.sum().item() == 160
    assert sorted(dm.splits["train"].dataset.labels.tolist()) == [0, 4, 10]


def test_missing_recordings_error_names_folder_and_url(tmp_path, no_network):
    dm = NMNISTDataModule(data_dir=tmp_path, download=False)
    with pytest.raises(MissingDataError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "Train/" in msg and str(tmp_path / "NMNIST") in msg and "train.zip" in msg
    assert tonic.datasets.NMNIST.train_url in msg and "by hand" in msg
    with pytest.raises(MissingDataError, match="ibmGestureTrain"):
        DVSGestureDataModule(data_dir=tmp_path).setup()


def test_download_failure_is_wrapped(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(MissingDataError, match="Download failed: .*no network here"):
        NMNISTDataModule(data_dir=tmp_path, download=True).prepare_data()


def test_out_of_range_label_names_the_file(tmp_path):
    write_dvs_gesture(tmp_path, {"ibmGestureTrain": [("user01_led", 12)], "ibmGestureTest": [("user02_led", 1)]})
    with pytest.raises(ValueError, match=r"label 12 of .*12.npy is out of range \[0, 11\)"):
        DVSGestureDataModule(data_dir=tmp_path).setup()


def test_cifar10dvs_aedat4_split_labels_and_counts(tmp_path):
    pytest.importorskip("aedat", reason="CIFAR10-DVS needs the 'aedat' package (pip install aedat)")
    files = write_cifar10dvs(tmp_path, per_class=3)
    dm = CIFAR10DVSDataModule(
        data_dir=tmp_path,
        n_time_bins=20,
        spatial_factor=0.25,
        val_fraction=0.1,
        test_fraction=0.2,
        batch_size=5,
        seed=1,
    )
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    every = set(dm.splits["train"].indices) | set(dm.splits["val"].indices) | set(dm.splits["test"].indices)
    assert every == set(range(30))
    full = dm.splits["test"].dataset
    assert full.labels.tolist() == [label for _, label in files]  # class from the folder name
    x, y = _all(dm.test_dataloader())
    assert x.shape == (20, 6, 2, 32, 32) and (x.sum((0, 2, 3, 4)) == 60).all()
    assert y.tolist() == [files[i][1] for i in dm.splits["test"].indices]


def test_cifar10dvs_without_aedat_names_the_install_command(tmp_path, monkeypatch):
    import importlib.util

    write_cifar10dvs(tmp_path, per_class=1)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aedat" else real(name, *a))
    with pytest.raises(ImportError, match="pip install aedat"):
        CIFAR10DVSDataModule(data_dir=tmp_path).setup()


@pytest.mark.parametrize(
    "config,extra",
    [
        ("configs/nmnist.yaml", []),
        (
            "configs/dvs_gesture.yaml",
            [
                "--data.init_args.spatial_factor",
                "0.25",
                "--model.init_args.network.init_args.input_shape",
                "[2, 32, 32]",
            ],
        ),
        (
            "configs/cifar10dvs.yaml",
            [
                "--data.init_args.spatial_factor",
                "0.25",
                "--model.init_args.network.init_args.input_shape",
                "[2, 32, 32]",
            ],
        ),
    ],
)
def test_config_fast_dev_run(tmp_path, config, extra):
    if "cifar" in config:
        pytest.importorskip("aedat", reason="CIFAR10-DVS needs the 'aedat' package (pip install aedat)")
    if "nmnist" in config:
        write_nmnist(tmp_path, {"Train": 1, "Test": 1})
    elif "cifar" in config:
        write_cifar10dvs(tmp_path, per_class=2)
    else:
        write_dvs_gesture(
            tmp_path,
            {
                "ibmGestureTrain": [(f"user0{i}_led", i) for i in range(1, 5)],
                "ibmGestureTest": [("user09_led", 2), ("user09_lab", 5)],
            },
        )
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
            "2",
            "--model.init_args.network.init_args.n_conv",
            "2",
            "--model.init_args.network.init_args.channels",
            "4",
            "--model.init_args.network.init_args.fc_hidden",
            "16",
            *extra,
        ]
    )
    assert cli.trainer.state.finished
    assert np.isfinite(cli.trainer.callback_metrics["test_loss"].item())


def test_split_fractions_must_leave_training_data(tmp_path):
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction must be < 1"):
        CIFAR10DVSDataModule(data_dir=tmp_path, val_fraction=0.6, test_fraction=0.6)


def test_split_by_number_gives_equal_event_counts_per_frame(tmp_path):
    write_nmnist(tmp_path, {"Train": 1, "Test": 1}, n_events=43)
    dm = NMNISTDataModule(data_dir=tmp_path, n_time_bins=4, split_by="number", val_fraction=0.0)
    dm.setup()
    frames = dm.splits["test"][5][0]
    assert frames.sum((1, 2, 3)).tolist() == [10, 10, 10, 13]  # floor(43 / 4) each, the last takes the rest
    with pytest.raises(ValueError, match="split_by must be one of"):
        NMNISTDataModule(data_dir=tmp_path, split_by="count")


def test_cifar10dvs_per_class_last_test_split_is_the_last_files_of_each_class(tmp_path):
    pytest.importorskip("aedat", reason="CIFAR10-DVS needs the 'aedat' package (pip install aedat)")
    files = write_cifar10dvs(tmp_path, per_class=3, n_events=5)
    dm = CIFAR10DVSDataModule(
        data_dir=tmp_path,
        n_time_bins=2,
        spatial_factor=0.25,
        val_fraction=0.0,
        test_fraction=0.34,
        test_split="per_class_last",
    )
    dm.setup()
    paths = dm.tonic_dataset("all").data
    # int(0.66 * 3) = 1 training file per class: files 1 and 2 of each class are the test set
    assert sorted(Path(paths[i]).stem.rsplit("_", 1)[1] for i in dm.splits["test"].indices) == ["1"] * 10 + ["2"] * 10
    assert len(files) == 30
    assert len(dm.splits["train"]) == 10 and dm.splits["val"] is dm.splits["test"]
    with pytest.raises(ValueError, match="test_split"):
        CIFAR10DVSDataModule(data_dir=tmp_path, test_split="random")
