"""Binning of spike trains and camera events (lightning_snn.data.events)."""

from __future__ import annotations

import numpy as np
import pytest
import tonic

from lightning_snn.data.events import EventFrames, SpikeTrainBinning, bin_spike_train


def test_golden_binning_and_pooling():
    # 4 units pooled to 2 channels, 4 steps over 1 s.
    times = np.array([0.0, 0.1, 0.3, 0.5, 0.99, 0.99])
    units = np.array([0, 1, 2, 3, 3, 0])
    got = bin_spike_train(times, units, n_units=4, n_channels=2, n_steps=4, duration=1.0)
    want = np.array([[2, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(got, want)


def test_event_counts_preserved_and_unsorted_equals_sorted():
    rng = np.random.default_rng(1)
    times, units = rng.uniform(0, 1.3, 500), rng.integers(0, 700, 500)
    frames = bin_spike_train(times, units, 700, 140, n_steps=100)  # sample's own duration
    assert frames.shape == (100, 140) and frames.sum() == 500
    # per-channel counts equal the pooled unit histogram
    np.testing.assert_array_equal(frames.sum(0), np.bincount(units // 5, minlength=140))
    order = rng.permutation(500)
    np.testing.assert_array_equal(bin_spike_train(times[order], units[order], 700, 140, n_steps=100), frames)


def test_fixed_duration_drops_late_events_and_dt_variant_has_variable_length():
    times, units = np.array([0.0, 0.5, 1.39, 1.5]), np.zeros(4, dtype=int)
    fixed = bin_spike_train(times, units, 700, 700, n_steps=14, duration=1.4)
    assert fixed.sum() == 3 and fixed[13, 0] == 1  # 1.5 s is outside the 1.4 s window
    raw = bin_spike_train(times, units, 700, 140, dt=0.01)
    assert raw.shape == (151, 140) and raw.sum() == 4 and raw[150, 0] == 1


def test_bad_input():
    with pytest.raises(ValueError, match="timestamps must be finite and >= 0"):
        bin_spike_train(np.array([0.1, -0.2]), np.array([0, 1]), 700, 140, n_steps=10)
    with pytest.raises(ValueError, match=r"unit indices must be in \[0, 700\)"):
        bin_spike_train(np.array([0.1]), np.array([700]), 700, 140, n_steps=10)
    empty = bin_spike_train(np.zeros(0), np.zeros(0, dtype=int), 700, 140, n_steps=10)
    assert empty.shape == (10, 140) and empty.sum() == 0
    with pytest.raises(ValueError, match="exactly one of n_steps"):
        SpikeTrainBinning(n_steps=10, dt=0.01)
    with pytest.raises(ValueError, match="n_channels must be in"):
        SpikeTrainBinning(n_channels=701)


def _camera_events(rng, n, size=34, t_max=300_000):
    ev = np.zeros(n, dtype=tonic.datasets.NMNIST.dtype)
    ev["x"], ev["y"] = rng.integers(0, size, n), rng.integers(0, size, n)
    ev["t"], ev["p"] = np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n)
    return ev


def test_event_frames_equal_tonic_plus_the_last_event_tonic_drops():
    rng = np.random.default_rng(0)
    ev = _camera_events(rng, 400)
    ev["t"][0], ev["t"][-1] = 0, 300_000  # span a multiple of T: bin edges agree with tonic's
    frames = EventFrames((34, 34, 2), n_time_bins=10)(ev)
    tonic_frames = tonic.transforms.ToFrame(sensor_size=(34, 34, 2), n_time_bins=10)(ev)
    last = ev[-1]
    tonic_frames[9, int(last["p"]), last["y"], last["x"]] += 1  # tonic's half-open last bin loses it
    np.testing.assert_array_equal(frames, tonic_frames)
    assert frames.shape == (10, 2, 34, 34) and frames.sum() == 400
    small = EventFrames((34, 34, 2), n_time_bins=10, spatial_factor=0.5)(ev)
    assert small.shape == (10, 2, 17, 17) and small.sum() == 400
    np.testing.assert_array_equal(small.sum((0, 2, 3)), np.bincount(ev["p"], minlength=2))


def test_event_frames_bad_input():
    rng = np.random.default_rng(0)
    ev = _camera_events(rng, 200)
    tf = EventFrames((34, 34, 2), n_time_bins=5)
    shuffled = ev[rng.permutation(200)]
    np.testing.assert_array_equal(tf(shuffled), tf(ev))  # unsorted: same frames as sorted (documented)
    single = tf(ev[:1])  # zero time span: everything in the first frame, nothing lost
    assert single.sum() == 1 and single[0].sum() == 1
    empty = tf(ev[:0])
    assert empty.shape == (5, 2, 34, 34) and empty.sum() == 0
    wide = ev.copy()
    wide["x"][3] = 34
    with pytest.raises(ValueError, match=r"rec.bin: event x must be in \[0, 34\)"):
        tf(wide, where="rec.bin")
    neg = ev.copy()
    neg["t"][0] = -5
    with pytest.raises(ValueError, match="rec.bin: timestamps must be finite and >= 0"):
        tf(neg, where="rec.bin")


def test_dt_mode_drops_events_after_the_duration():
    counts = bin_spike_train(np.array([0.05, 1.05, 1.15]), np.array([0, 1, 2]), 3, 3, duration=1.0, dt=0.3)
    assert counts.shape == (4, 3)  # ceil(1.0 / 0.3) bins
    assert counts.sum() == 1.0 and counts[0, 0] == 1.0
