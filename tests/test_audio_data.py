"""SHD-format writer/reader with any n_units, cache_dir inside data_dir, audio folders, spoken digits."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from data_files import write_tone_folder

from lightning_snn.data.audio import AudioFolderDataModule, SpokenDigitsDataModule
from lightning_snn.data.shd import HeidelbergFile, SHDDataModule, write_heidelberg_file

ROOT = Path(__file__).resolve().parents[1]
TONES = {"high": 3000.0, "low": 250.0}


@pytest.mark.parametrize("n_units", [64, 1000])
def test_writer_reader_round_trip_with_any_n_units(tmp_path, n_units):
    rng = np.random.default_rng(n_units)
    times = [np.sort(rng.uniform(0, 1, 30)) for _ in range(6)]
    units = [rng.integers(0, n_units, 30) for _ in range(6)]
    units[0][0] = n_units - 1  # the top unit is legal
    labels = np.array([0, 1, 2, 0, 1, 2])
    path = write_heidelberg_file(
        tmp_path / "SHD" / "shd_train.h5",
        times,
        units,
        labels,
        ["a", "b", "c"],
        speakers=[5, 5, 6, 6, 7, 7],
        n_units=n_units,
    )
    shutil.copy(path, tmp_path / "SHD" / "shd_test.h5")
    with h5py.File(path) as f:
        assert [k.decode() if isinstance(k, bytes) else k for k in f["extra/keys"][:]] == ["a", "b", "c"]
        np.testing.assert_array_equal(f["extra/speaker"][:], [5, 5, 6, 6, 7, 7])
        assert f.attrs["n_units"] == n_units
    reader = HeidelbergFile(path, 3, n_units)
    t, u = reader.events(0)
    np.testing.assert_array_equal(u, units[0])
    np.testing.assert_array_equal(t, times[0].astype(np.float16))
    dm = SHDDataModule(data_dir=tmp_path, n_units=n_units, n_channels=16, n_steps=10, duration=1.0, val_fraction=0.0)
    x, y = dm.frames("train")[0]
    expected = np.zeros((10, 16))
    np.add.at(expected, (np.floor(t.astype(np.float64) * 10).astype(int), units[0] * 16 // n_units), 1)
    np.testing.assert_array_equal(np.asarray(x), expected)
    assert int(y) == 0


def test_units_beyond_n_units_raise_a_clear_error(tmp_path):
    write_heidelberg_file(tmp_path / "SHD" / "shd_train.h5", [np.array([0.1, 0.2])], [np.array([3, 650])], [0])
    shutil.copy(tmp_path / "SHD" / "shd_train.h5", tmp_path / "SHD" / "shd_test.h5")
    dm = SHDDataModule(data_dir=tmp_path, n_units=64, n_channels=16, n_steps=10, val_fraction=0.0)
    with pytest.raises(ValueError, match=r"unit index 650 does not fit n_units=64.*Pass n_units"):
        dm.frames("train")[0]
    write_heidelberg_file(tmp_path / "x.h5", [np.array([0.1])], [np.array([3])], [0], n_units=128)
    with pytest.raises(ValueError, match=r"records n_units=128.*given n_units=700.*Pass n_units=128"):
        HeidelbergFile(tmp_path / "x.h5", 20, 700)
    with pytest.raises(ValueError, match="unit 3 does not fit n_units=2"):
        write_heidelberg_file(tmp_path / "y.h5", [np.array([0.1])], [np.array([3])], [0], n_units=2)


def test_relative_cache_dir_is_inside_data_dir(tmp_path):
    dm = SHDDataModule(data_dir=tmp_path / "d", cache_dir="cache")
    assert dm.cache_dir == tmp_path / "d" / "cache"
    assert SHDDataModule(data_dir=tmp_path, cache_dir=tmp_path / "abs").cache_dir == tmp_path / "abs"
    assert SHDDataModule(data_dir=tmp_path).cache_dir is None
    for name in ("shd", "ssc", "spoken_digits", "spoken_digits_delays"):
        config = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
        assert config["data"]["init_args"]["cache_dir"] == "cache", name


def tone_module(data_dir, **kw) -> AudioFolderDataModule:
    settings = dict(n_units=8, n_channels=8, n_steps=10, sample_rate=8000, clip_duration=0.25, batch_size=4)
    return AudioFolderDataModule(data_dir=data_dir, **{**settings, **kw})


def test_audio_folder_builds_shd_files_once_and_serves_batches(tmp_path):
    write_tone_folder(tmp_path, TONES, per_class=4)
    dm = tone_module(tmp_path, test_fraction=0.25, val_fraction=0.0)
    dm.prepare_data()
    folder = dm.spikes_folder()
    assert folder.parent == tmp_path / "spikes" and dm.num_classes == 2
    with h5py.File(folder / "train.h5") as f:
        assert len(f["labels"]) == 6 and f.attrs["n_units"] == 8
        assert [k.decode() if isinstance(k, bytes) else k for k in f["extra/keys"][:]] == ["high", "low"]
    with h5py.File(folder / "test.h5") as f:
        assert len(f["labels"]) == 2
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (10, 4, 8) and x.sum() > 0
    # the cochlea separates the classes: high tones excite the base (low unit indices), low tones the apex
    profile = {c: np.zeros(8) for c in (0, 1)}
    for i in range(len(dm.splits["train"])):
        xi, yi = dm.splits["train"][i]
        profile[int(yi)] += np.asarray(xi).sum(0)
    assert np.argmax(profile[0]) < np.argmax(profile[1])
    mtime = (folder / "train.h5").stat().st_mtime_ns
    again = tone_module(tmp_path, test_fraction=0.25, val_fraction=0.0)
    again.prepare_data()
    assert again.spikes_folder() == folder and (folder / "train.h5").stat().st_mtime_ns == mtime
    assert tone_module(tmp_path, test_fraction=0.25, n_units=16).spikes_folder() != folder  # settings in the key


def test_manifest_with_speakers_gives_a_speaker_independent_split(tmp_path):
    write_tone_folder(tmp_path / "audio", TONES, per_class=4)
    with open(tmp_path / "list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker"])
        for name in TONES:
            for i in range(4):
                writer.writerow([f"audio/{name}/{i}.wav", name, f"spk{i}"])
    dm = tone_module(tmp_path, manifest="list.csv", test_fraction=0.25)
    utts = dm.utterances()
    train = {u.speaker for u in utts if u.split == "train"}
    test = {u.speaker for u in utts if u.split == "test"}
    assert len(test) == 1 and len(train) == 3 and not train & test
    dm.prepare_data()
    with h5py.File(dm.spikes_folder() / "test.h5") as f:
        assert len(set(f["extra/speaker"][:].tolist())) == 1 and len(f["labels"]) == 2


def test_missing_espeak_ng_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    dm = SpokenDigitsDataModule(data_dir=tmp_path, n_voices=2, test_voices=1, repeats=1, n_units=8, n_channels=8)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        dm.prepare_data()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (CI installs it)")
def test_spoken_digits_tiny_set(tmp_path):
    settings = dict(n_voices=2, test_voices=1, repeats=1, n_units=8, n_channels=8, n_steps=10, sample_rate=8000)
    dm = SpokenDigitsDataModule(data_dir=tmp_path, clip_duration=0.8, val_fraction=0.0, batch_size=8, **settings)
    dm.prepare_data()
    folder = dm.spikes_folder()
    speakers = {}
    for split in ("train", "test"):
        with h5py.File(folder / f"{split}.h5") as f:
            np.testing.assert_array_equal(np.sort(f["labels"][:]), np.arange(20))
            speakers[split] = set(f["extra/speaker"][:].tolist())
            keys = [k.decode() if isinstance(k, bytes) else k for k in f["extra/keys"][:]]
            assert keys[0] == "english zero" and keys[19] == "german neun"
            assert sum(len(u) for u in f["spikes/units"][:]) > 100
    assert len(speakers["train"]) == len(speakers["test"]) == 1 and not speakers["train"] & speakers["test"]
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (10, 8, 8)
    same = SpokenDigitsDataModule(data_dir=tmp_path, clip_duration=0.8, **settings)
    assert same.spikes_folder() == folder  # seeded and cached
    other = SpokenDigitsDataModule(data_dir=tmp_path, clip_duration=0.8, pitch_jitter=5, **settings)
    assert other.spikes_folder() != folder  # every setting is in the key


@pytest.mark.parametrize(
    "kwargs, match", [({"test_voices": 0}, "test_voices"), ({"n_voices": 99}, "n_voices"), ({"repeats": 0}, "repeats")]
)
def test_spoken_digits_bad_settings(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpokenDigitsDataModule(data_dir=tmp_path, **kwargs)
