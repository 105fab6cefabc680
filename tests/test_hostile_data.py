"""Issue 12, data side: nothing lost, nothing silently wrong.

Every test reproduces one failure of a reader, the frame cache or the archive extraction on a file in the
real on-disk format, and pins the behaviour now: the right frames, or an error that names the file, the
field, the value, the expected form and the fix. Source files are never modified by the package.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from data_files import encode_nmnist, idx_bytes, write_cifar10dvs, write_dvs_gesture, write_mnist, write_nmnist

from lightning_snn.data import shd as shd_module
from lightning_snn.data.cache import CachedFrames
from lightning_snn.data.download import locate
from lightning_snn.data.event_frames import CIFAR10DVSDataModule, DVSGestureDataModule, NMNISTDataModule
from lightning_snn.data.events import bin_spike_train
from lightning_snn.data.sequential_mnist import SequentialMNISTDataModule
from lightning_snn.data.shd import HeidelbergFile, SHDDataModule, write_heidelberg_file


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _all_frames(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


# ---- 1. the event-camera frame cache is keyed on the source files -------------------------------------


def _nmnist(data_dir, cache_dir):
    return NMNISTDataModule(data_dir=data_dir, n_time_bins=4, val_fraction=0.0, cache_dir=cache_dir)


def _dvs(data_dir, cache_dir):
    return DVSGestureDataModule(
        data_dir=data_dir, n_time_bins=4, spatial_factor=0.25, val_fraction=0.0, cache_dir=cache_dir
    )


def _write_nmnist(root, seed):
    write_nmnist(root, {"Train": 1, "Test": 1}, seed=seed)


def _write_dvs(root, seed):
    layout = [("user01_led", 0), ("user01_led", 3), ("user02_lab", 7)]
    write_dvs_gesture(root, {"ibmGestureTrain": layout, "ibmGestureTest": layout}, seed=seed)


@pytest.mark.parametrize("make, write", [(_nmnist, _write_nmnist), (_dvs, _write_dvs)], ids=["nmnist", "dvs"])
def test_two_data_dirs_with_one_cache_dir_never_share_frames(tmp_path, make, write):
    """Same layout, same labels, same transform, one cache_dir: each data_dir gets its own frames."""
    cache = tmp_path / "cache"
    write(tmp_path / "a", seed=0)
    write(tmp_path / "b", seed=1)
    frames = {}
    for name in ("a", "b"):
        dm = make(tmp_path / name, cache)
        dm.prepare_data()
        dm.setup()
        frames[name] = _all_frames(dm.splits["test"])
        uncached = make(tmp_path / name, None)
        uncached.setup()
        assert torch.equal(frames[name], _all_frames(uncached.splits["test"]))  # before the fix: b read a's
    assert not torch.equal(frames["a"], frames["b"])


def test_an_overwritten_recording_gets_new_frames(tmp_path):
    _write_nmnist(tmp_path / "d", seed=0)
    dm = _nmnist(tmp_path / "d", tmp_path / "cache")
    dm.setup()
    old = _all_frames(dm.splits["test"])
    path = sorted((tmp_path / "d" / "NMNIST" / "Test" / "1").glob("*.bin"))[0]
    stat = path.stat()
    path.write_bytes(encode_nmnist([1, 2, 3], [4, 5, 6], [0, 10, 20], [0, 1, 1]))  # 3 events instead of 40
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    dm = _nmnist(tmp_path / "d", tmp_path / "cache")
    dm.setup()
    new = _all_frames(dm.splits["test"])
    index = [str(p) for p in dm.splits["test"].source.dataset.data].index(str(path))
    assert old[index].sum() == 40 and new[index].sum() == 3  # before the fix: still 40 (stale frames)
    assert len(list((tmp_path / "cache").glob("NMNIST-test-*"))) == 2


def test_the_source_identity_is_recorded_in_settings_json(tmp_path):
    _write_nmnist(tmp_path, seed=0)
    dm = _nmnist(tmp_path, tmp_path / "cache")
    dm.setup()
    info = (dm.splits["test"].directory / "settings.json").read_text()
    assert str((tmp_path / "NMNIST" / "Test").resolve()) in info and "stat=" in info


# ---- 4. no silent truncation in the readers ----------------------------------------------------------


def _raw_h5(path: Path, times, units, labels, unit_dtype=np.uint16, label_dtype=np.uint16) -> Path:
    """An SHD-layout file written with h5py directly, to store what write_heidelberg_file would cast away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        t = np.empty(len(times), dtype=object)
        u = np.empty(len(units), dtype=object)
        for i, (a, b) in enumerate(zip(times, units, strict=True)):
            t[i], u[i] = np.asarray(a, dtype=np.float16), np.asarray(b, dtype=unit_dtype)
        f.create_dataset("spikes/times", data=t, dtype=h5py.vlen_dtype(np.float16))
        f.create_dataset("spikes/units", data=u, dtype=h5py.vlen_dtype(unit_dtype))
        f.create_dataset("labels", data=np.asarray(labels, dtype=label_dtype))
    return path


def test_float_labels_are_never_truncated(tmp_path):
    path = _raw_h5(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[3], [4]], [1.7, 3.999], label_dtype=np.float32)
    with pytest.raises(ValueError, match=r"shd_train.h5, key 'labels': label 1.7\d* at index 0 is not a whole number"):
        HeidelbergFile(path, 20)  # before the fix: labels [1, 3]
    path = _raw_h5(tmp_path / "ok.h5", [[0.1], [0.2]], [[3], [4]], [1.0, 3.0], label_dtype=np.float32)
    assert HeidelbergFile(path, 20).labels.tolist() == [1, 3]  # whole-number floats are exact


def test_fractional_units_are_never_truncated(tmp_path):
    with pytest.raises(ValueError, match=r"rec: unit index 34.9 is not a whole number"):
        bin_spike_train(np.array([0.1]), np.array([34.9]), 700, 140, n_steps=2, where="rec")
    _raw_h5(tmp_path / "SHD" / "shd_train.h5", [[0.1, 0.2]], [[34.9, 5.0]], [0], unit_dtype=np.float32)
    write_heidelberg_file(tmp_path / "SHD" / "shd_test.h5", [np.array([0.1])], [np.array([3])], np.array([0]))
    dm = SHDDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    with pytest.raises(ValueError, match=r"shd_train.h5\[0\]: unit index 34.9\d* is not a whole number"):
        dm.splits["train"][0]  # before the fix: binned into a channel
    whole = bin_spike_train(np.array([0.1, 0.2]), np.array([35.0, 5.0]), 700, 140, n_steps=2)
    assert whole.sum() == 2 and whole[:, 7].sum() == 1


@pytest.mark.parametrize("times, units", [([], [3, 4]), ([0.1, 0.2], []), ([0.1, 0.2], [3])])
def test_times_and_units_of_different_lengths_are_refused(tmp_path, times, units):
    _raw_h5(tmp_path / "SHD" / "shd_train.h5", [times], [units], [0])
    write_heidelberg_file(tmp_path / "SHD" / "shd_test.h5", [np.array([0.1])], [np.array([3])], np.array([0]))
    dm = SHDDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    with pytest.raises(ValueError, match=r"shd_train.h5\[0\]: \(\d\,\) timestamps but \(\d,\) unit indices"):
        dm.splits["train"][0]  # before the fix: all-zero frames when times was empty


def _one_nmnist_file(tmp_path) -> Path:
    write_nmnist(tmp_path, {"Train": 1, "Test": 1})
    return sorted((tmp_path / "NMNIST" / "Test" / "4").glob("*.bin"))[0]


@pytest.mark.parametrize("extra", [1, 2, 4])
def test_nmnist_partial_event_is_an_error_naming_the_file(tmp_path, extra):
    """1 stray byte: tonic silently dropped the partial event; 2-4: a numpy broadcast error with no file name."""
    path = _one_nmnist_file(tmp_path)
    path.write_bytes(path.read_bytes() + b"\x01" * extra)
    dm = NMNISTDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    index = [str(p) for p in dm.splits["test"].source.dataset.data].index(str(path))
    with pytest.raises(ValueError, match=rf"{path}: size {200 + extra} bytes is not a multiple of 5"):
        dm.splits["test"][index]


@pytest.mark.parametrize("folder", ["backup_of_13", "3/old", "x"])
def test_nmnist_folder_outside_the_naming_scheme_is_refused(tmp_path, folder):
    path = _one_nmnist_file(tmp_path)
    stray = tmp_path / "NMNIST" / "Test" / folder / "00000.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=rf"recording {stray}: its folder '{folder}' is not one of the class folders"):
        NMNISTDataModule(data_dir=tmp_path).setup()  # before the fix: backup_of_13 labelled 3


# ---- 5. a corrupt archive beside a missing file leaves nothing behind ---------------------------------


def test_corrupt_gz_leaves_no_partial_file(tmp_path):
    d = tmp_path / "SHD"
    write_heidelberg_file(d / "shd_train.h5", [np.array([0.1])], [np.array([3])], np.array([0]))
    good = gzip.compress((d / "shd_train.h5").read_bytes())
    (d / "shd_test.h5.gz").write_bytes(good[: len(good) // 2])  # cut in the middle
    before = _hashes(tmp_path)
    for _ in range(2):  # the second run must say the same thing, not blame a 0-byte shd_test.h5
        with pytest.raises(ValueError, match=r"Archive .*shd_test.h5.gz cannot be extracted .*truncated or corrupt"):
            SHDDataModule(data_dir=tmp_path, val_fraction=0.0).setup()
        assert not (d / "shd_test.h5").exists()  # before the fix: a 0-byte shd_test.h5
        assert sorted(p.name for p in d.iterdir()) == ["shd_test.h5.gz", "shd_train.h5"]  # no temporary folder
    assert _hashes(tmp_path) == before
    (d / "shd_test.h5.gz").write_bytes(good)  # a good archive is extracted, and kept
    assert locate("shd_test.h5", [d]) == d / "shd_test.h5"
    assert (d / "shd_test.h5").read_bytes() == (d / "shd_train.h5").read_bytes()
    assert sorted(p.name for p in d.iterdir()) == ["shd_test.h5", "shd_test.h5.gz", "shd_train.h5"]


# ---- 8. clear errors for recordings that cannot be read ----------------------------------------------


def _dvs_file(tmp_path) -> tuple[Path, DVSGestureDataModule]:
    write_dvs_gesture(tmp_path, {"ibmGestureTrain": [("user01_led", 2)], "ibmGestureTest": [("user02_led", 5)]})
    return tmp_path / "DVSGesture" / "ibmGestureTest" / "user02_led" / "5.npy"


def _write_npy(path: Path, case: str) -> None:
    events = np.load(path)
    if case == "columns":
        np.save(path, np.concatenate([events, events[:, :1]], axis=1))
    elif case == "1d":
        np.save(path, events.ravel())
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:-9])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "pickled":
        np.save(path, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    elif case == "trailing":
        path.write_bytes(path.read_bytes() + b"\0" * 8)
    elif case == "text":
        path.write_bytes(pickle.dumps(events))


@pytest.mark.parametrize(
    "case, message",
    [
        ("columns", r"shape \(80, 5\) and dtype int64; expected a \(N, 4\) integer array"),
        ("1d", r"shape \(320,\) and dtype int64; expected a \(N, 4\)"),
        ("truncated", r"header declares shape \(80, 4\) .* it is truncated"),
        ("trailing", r"it is followed by extra bytes"),
        ("empty", r"the file is empty \(0 bytes\); expected a \(N, 4\)"),
        ("pickled", r"holds Python objects \(a pickled array\), which are never loaded"),
        ("text", r"the file is not a NumPy .npy file"),
    ],
)
def test_dvs_gesture_bad_npy_names_the_file(tmp_path, case, message):
    path = _dvs_file(tmp_path)
    _write_npy(path, case)
    dm = DVSGestureDataModule(data_dir=tmp_path, val_fraction=0.0)
    dm.setup()
    with pytest.raises(ValueError, match=rf"recording {path}: .*{message}.*Extract it again"):
        dm.splits["test"][0]


def test_dvs_gesture_empty_event_array_gives_zero_frames(tmp_path):
    path = _dvs_file(tmp_path)
    np.save(path, np.zeros((0, 4), dtype=np.int64))
    dm = DVSGestureDataModule(data_dir=tmp_path, n_time_bins=3, spatial_factor=0.25, val_fraction=0.0)
    dm.setup()
    assert dm.splits["test"][0][0].shape == (3, 2, 32, 32) and dm.splits["test"][0][0].sum() == 0


@pytest.mark.parametrize(
    "folder, name, message",
    [
        ("user02_led", "5_copy.npy", r"file name '5_copy.npy' is not '<label>.npy'"),
        ("backup", "5.npy", r"its folder 'backup' is not a user folder named like 'user01_fluorescent'"),
        ("userX_led", "5.npy", r"its folder 'userX_led' is not a user folder"),
        ("user02_led/old", "5.npy", r"its folder 'user02_led/old' is not a user folder"),
    ],
)
def test_dvs_gesture_names_outside_the_scheme_are_refused(tmp_path, folder, name, message):
    path = _dvs_file(tmp_path)
    stray = path.parents[1] / folder / name
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=rf"recording {stray}: {message}.*\. Expected layout: .*user<NN>_<lighting>"):
        DVSGestureDataModule(data_dir=tmp_path).setup()


def test_cifar10dvs_truncated_recording_and_bad_folder_name_the_file(tmp_path):
    pytest.importorskip("aedat", reason="CIFAR10-DVS needs the 'aedat' package (pip install aedat)")
    files = write_cifar10dvs(tmp_path, per_class=1, n_events=30)
    path = files[3][0]
    path.write_bytes(path.read_bytes()[:-100])
    dm = CIFAR10DVSDataModule(data_dir=tmp_path, val_fraction=0.0, test_fraction=0.5)
    dm.setup()
    dataset = dm.splits["train"].dataset
    index = [str(p) for p in dataset.source.dataset.data].index(str(path))
    with pytest.raises(ValueError, match=rf"CIFAR10DVS: recording {path} cannot be read .*truncated or corrupt"):
        dataset[index]  # before the fix: "failed to fill whole buffer", no file name
    stray = tmp_path / "CIFAR10DVS" / "airplanes" / "x.aedat4"
    stray.parent.mkdir()
    stray.write_bytes(files[0][0].read_bytes())
    with pytest.raises(ValueError, match=rf"recording {stray}: its folder 'airplanes' is not one of the class folders"):
        CIFAR10DVSDataModule(data_dir=tmp_path).setup()  # before the fix: KeyError: 'airplanes'


# ---- 9. an HDF5 file that cannot be opened for another reason than corruption --------------------------


def test_directory_in_place_of_the_hdf5_file(tmp_path):
    (tmp_path / "SHD" / "shd_train.h5").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=r"shd_train.h5 is a directory, expected an SHD/SSC HDF5 file") as e:
        HeidelbergFile(tmp_path / "SHD" / "shd_train.h5", 20)
    assert "corrupt" not in str(e.value) and "Delete" not in str(e.value)


def test_permission_denied_is_not_reported_as_corruption(tmp_path, monkeypatch):
    path = write_heidelberg_file(tmp_path / "shd_train.h5", [np.array([0.1])], [np.array([3])], np.array([0]))

    def denied(file, *args, **kwargs):  # tests run as root: chmod does not deny reading
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(shd_module, "open", denied, raising=False)
    before = path.read_bytes()
    with pytest.raises(PermissionError, match=rf"{path} cannot be read: permission denied .*not damaged") as e:
        HeidelbergFile(path, 20)
    assert "corrupt" not in str(e.value) and "Delete" not in str(e.value)
    assert path.read_bytes() == before


def test_hdf5_lock_failure_is_not_reported_as_corruption(tmp_path, monkeypatch):
    path = write_heidelberg_file(tmp_path / "shd_train.h5", [np.array([0.1])], [np.array([3])], np.array([0]))

    def locked(*args, **kwargs):
        raise OSError("Unable to synchronously open file (unable to lock file, errno = 11)")

    monkeypatch.setattr(shd_module.h5py, "File", locked)
    with pytest.raises(OSError, match="could not lock it .*HDF5_USE_FILE_LOCKING=FALSE") as e:
        HeidelbergFile(path, 20)
    assert "corrupt" not in str(e.value)


# ---- 11. sequential MNIST labels -----------------------------------------------------------------------


def test_sequential_mnist_label_out_of_range_names_the_file(tmp_path):
    write_mnist(tmp_path)
    labels = np.zeros(12, dtype=np.uint8)
    labels[7] = 255
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    dm = SequentialMNISTDataModule(data_dir=str(tmp_path), n_val=2)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: label 255 at index 7 is out of range \[0, 10\)"):
        dm.setup()  # before the fix: "Target 255 is out of bounds" in the loss


# ---- 13. cache_dir that cannot hold the cache -----------------------------------------------------------


def test_cache_dir_that_is_a_file(tmp_path):
    _write_nmnist(tmp_path / "d", seed=0)
    (tmp_path / "cache").write_text("not a folder")
    dm = _nmnist(tmp_path / "d", tmp_path / "cache")
    with pytest.raises(NotADirectoryError, match=r"cache_dir '.*cache' cannot be used .* is not a directory"):
        dm.setup()
    assert (tmp_path / "cache").read_text() == "not a folder"


def test_read_only_cache_dir(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):  # tests run as root: chmod does not make a folder read-only
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(PermissionError, match=r"cache_dir '.*ro' cannot be used .*not writable.*cache_dir=null"):
        CachedFrames(lambda i: np.zeros(2), [0], tmp_path / "ro", "X", "train", {})


# ---- done means: the package never modifies a source file -------------------------------------------


def test_source_files_are_never_modified(tmp_path):
    """A run that builds and then rebuilds a corrupted cache, and every failing case, leaves the sources intact."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    _write_nmnist(data, seed=0)
    _write_dvs(data, seed=0)
    write_heidelberg_file(data / "SHD" / "shd_train.h5", [np.array([0.1, 0.3])] * 4, [np.array([3, 9])] * 4, [0] * 4)
    (data / "SHD" / "shd_test.h5.gz").write_bytes(b"\x1f\x8b broken gzip")
    before = _hashes(data)
    assert len(before) == 28  # 20 N-MNIST, 6 DVS Gesture, 2 SHD

    for make in (_nmnist, _dvs):
        dm = make(data, cache)
        dm.prepare_data()
        dm.setup()
        frames = _all_frames(dm.splits["test"])
        entry = dm.splits["test"].path(1)
        entry.write_bytes(entry.read_bytes()[:30])  # corrupt a cache entry: it is rebuilt from the source
        dm = make(data, cache)
        with pytest.warns(UserWarning, match="Corrupt cache entry"):
            dm.prepare_data()
        dm.setup()
        assert torch.equal(_all_frames(dm.splits["test"]), frames)
    with pytest.raises(ValueError, match="Archive .* cannot be extracted"):
        SHDDataModule(data_dir=data, cache_dir=cache).prepare_data()
    assert _hashes(data) == before

    bad = data / "NMNIST" / "Test" / "2" / "00000.bin"
    bad.write_bytes(bad.read_bytes() + b"\x07")
    bad_npy = data / "DVSGesture" / "ibmGestureTest" / "user01_led" / "3.npy"
    _write_npy(bad_npy, "truncated")
    stray = data / "NMNIST" / "Train" / "backup_of_13" / "x.bin"
    before = _hashes(data)
    for make in (_nmnist, _dvs):
        with pytest.raises(ValueError, match="recording"):
            make(data, cache).prepare_data()
    assert _hashes(data) == before
    stray.parent.mkdir()
    stray.write_bytes(b"")
    before = _hashes(data)
    with pytest.raises(ValueError, match="backup_of_13"):
        _nmnist(data, cache).prepare_data()
    assert _hashes(data) == before
