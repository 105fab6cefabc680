"""Frame cache (lightning_snn.data.cache): keys follow the settings, writes are atomic, corruption is rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_snn.data.cache import CachedFrames, cache_key
from lightning_snn.data.events import EventFrames, SpikeTrainBinning


class CountingSource:
    def __init__(self, scale: float = 1.0) -> None:
        self.calls, self.scale = 0, scale

    def __call__(self, index: int) -> np.ndarray:
        self.calls += 1
        return np.full((4, 3), index * self.scale, dtype=np.float32)


def test_cache_key_changes_with_every_transform_setting():
    base = SpikeTrainBinning(n_steps=100)
    keys = {
        cache_key("SHD", "train", base),
        cache_key("SHD", "train", SpikeTrainBinning(n_steps=50)),
        cache_key("SHD", "train", SpikeTrainBinning(n_steps=100, n_channels=70)),
        cache_key("SHD", "train", SpikeTrainBinning(n_steps=100, duration=1.4)),
        cache_key("SHD", "test", base),
        cache_key("SSC", "train", base),
        cache_key("NMNIST", "train", EventFrames((34, 34, 2), 10)),
        cache_key("NMNIST", "train", EventFrames((34, 34, 2), 10, spatial_factor=0.5)),
    }
    assert len(keys) == 8
    assert cache_key("SHD", "train", base) == cache_key("SHD", "train", SpikeTrainBinning(n_steps=100))


def test_cached_frames_are_built_once_and_stale_settings_never_read(tmp_path):
    src = CountingSource()
    ds = CachedFrames(src, [0, 1, 2], tmp_path, "toy", "train", {"scale": 1})
    assert ds.warm() == 3 and src.calls == 3
    x, y = ds[2]
    assert src.calls == 3 and y.item() == 2 and x.dtype.is_floating_point and x[0, 0].item() == 2.0
    assert not list(ds.directory.glob(".*.tmp"))  # no temporary files left behind
    # other settings → other directory → rebuilt from the new source, not served from the old entries
    src2 = CountingSource(scale=10.0)
    ds2 = CachedFrames(src2, [0, 1, 2], tmp_path, "toy", "train", {"scale": 10})
    assert ds2.directory != ds.directory and ds2[2][0][0, 0].item() == 20.0 and src2.calls == 1


def test_counts_are_stored_compactly_and_exactly(tmp_path):
    ds = CachedFrames(lambda i: np.array([[0.0, 3.0], [300.0, 1.0]]), [0], tmp_path, "toy", "train", {})
    ds.warm()
    assert np.load(ds.path(0)).dtype == np.uint16
    assert ds[0][0].tolist() == [[0.0, 3.0], [300.0, 1.0]]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupt_entry_is_rebuilt_with_a_warning(tmp_path, damage):
    src = CountingSource()
    check = lambda f: None if f.shape == (4, 3) else f"shape {f.shape}"  # noqa: E731
    ds = CachedFrames(src, [0, 1], tmp_path, "toy", "train", {}, shape_check=check)
    ds.warm()
    path = ds.path(1)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file")
    else:
        np.save(path, np.zeros((2, 2), dtype=np.uint8))
    with pytest.warns(UserWarning, match=f"Corrupt cache entry {path}"):
        x, _ = ds[1]
    assert x.shape == (4, 3) and (x == 1.0).all() and src.calls == 3
    assert np.load(path).shape == (4, 3)  # repaired on disk


def _warm(root):
    CachedFrames(CountingSource(), list(range(40)), root, "toy", "train", {"k": 1}).warm()


def test_concurrent_writers_leave_a_valid_cache(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_warm, args=(tmp_path,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    ds = CachedFrames(CountingSource(), list(range(40)), tmp_path, "toy", "train", {"k": 1})
    assert all(ds[i][0][0, 0].item() == i for i in range(40)) and ds.source.calls == 0
    assert not list(ds.directory.glob(".*.tmp"))


def test_changed_source_never_reuses_old_frames(tmp_path):
    """Same dataset, split and settings, but a different source: a new cache entry, correct frames."""
    settings = {"n_steps": 2}

    def frames_from(offset):
        return lambda i: np.full((2, 1), float(offset + i), dtype=np.float32)

    first = CachedFrames(frames_from(0), [0, 1, 0], tmp_path, "X", "train", settings)
    assert first.warm() == 3
    second = CachedFrames(frames_from(10), [1, 1, 0, 1, 0], tmp_path, "X", "train", settings)
    assert second.directory != first.directory
    assert [second[i][0][0, 0].item() for i in range(5)] == [10.0, 11.0, 12.0, 13.0, 14.0]
    renamed = CachedFrames(frames_from(20), [0, 1, 0], tmp_path, "X", "train", settings, source_id="other.h5")
    assert renamed.directory != first.directory
