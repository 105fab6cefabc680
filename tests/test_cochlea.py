"""AudioToSpikes against stock lauscher 1.0.1: exact mode spike for spike, fast mode statistically."""

from __future__ import annotations

import numpy as np
import pytest
from lauscher.audiowaves import MonoAudioWave
from lauscher.transformations import BasilarMembrane, HairCell, HanningWindow, RmsNormalizer
from lauscher.transformations.wave2spike import Wave2Spike

from lightning_snn.data.audio import AudioToSpikes

RATE = 16000
CHANNELS = 16


def vowel(seconds: float = 0.25, f0: float = 180.0) -> np.ndarray:
    """A harmonic complex (a crude vowel) with a rising-falling envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 20))
    return harmonics * np.sin(np.pi * t / seconds) ** 2


def lauscher_reference(samples: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    np.random.seed(seed)
    spikes = MonoAudioWave(samples.copy(), RATE).transform(Wave2Spike(num_channels=CHANNELS))
    return spikes.spike_times, spikes.spike_labels.astype(np.int64)


def test_exact_mode_reproduces_lauscher_spike_for_spike():
    x = vowel()
    ours = AudioToSpikes(CHANNELS, mode="exact")
    # the stages one by one: the same numbers, not just close ones
    wave = HanningWindow()(RmsNormalizer(0.3)(MonoAudioWave(x.copy(), RATE)))
    np.testing.assert_array_equal(ours.normalized(x, RATE), wave.samples)
    bm = BasilarMembrane(channels=CHANNELS)
    n_freq = wave.num_samples // 2 + 1
    omega = 2 * np.pi * np.linspace(1, RATE // 2, n_freq)
    stim_fft = np.fft.fft(wave.samples)[:n_freq]
    velocity_ref = np.array([bm.process_single_channel(c, omega, stim_fft) for c in bm.ch])
    velocity, rate = ours.basilar_membrane_velocity(wave.samples, RATE)
    assert rate == RATE // 2
    np.testing.assert_array_equal(velocity, velocity_ref)
    probability_ref = np.array([HairCell()._meddis(v, rate) for v in velocity_ref])
    np.testing.assert_array_equal(ours.firing_probability(velocity, rate), probability_ref)
    # the whole chain with lauscher's global RNG seeded like ours
    times_ref, units_ref = lauscher_reference(x, seed=7)
    times, units = ours(x, RATE, seed=7)
    assert times_ref.size > 50
    np.testing.assert_array_equal(units, units_ref)
    np.testing.assert_array_equal(times, times_ref)


def per_channel_counts(transform: AudioToSpikes, x: np.ndarray, seeds) -> np.ndarray:
    return np.stack([np.bincount(transform(x, RATE, seed=s)[1], minlength=CHANNELS) for s in seeds])


def test_fast_mode_matches_lauscher_statistics():
    x = vowel(f0=140.0)
    seeds = range(6)
    exact = per_channel_counts(AudioToSpikes(CHANNELS, mode="exact"), x, seeds).astype(float)
    fast = per_channel_counts(AudioToSpikes(CHANNELS, mode="fast"), x, seeds).astype(float)
    # total spike count: the fast runs' mean within what exact runs scatter (3 standard errors of the difference)
    spread = exact.sum(1).std(ddof=1)
    assert abs(fast.sum(1).mean() - exact.sum(1).mean()) <= 3 * spread * np.sqrt(2 / len(seeds)) + 2
    # per-channel profile: a fast run correlates with an exact run as well as two exact runs do
    exact_pairs = [np.corrcoef(exact[i], exact[j])[0, 1] for i in range(3) for j in range(3, 6)]
    mixed_pairs = [np.corrcoef(fast[i], exact[j])[0, 1] for i in range(3) for j in range(3, 6)]
    assert np.mean(mixed_pairs) >= np.mean(exact_pairs) - 2 * np.std(exact_pairs) - 0.02
    # mean profiles agree channel by channel within the per-channel sampling noise
    se = np.sqrt((exact.var(0, ddof=1) + fast.var(0, ddof=1)) / len(seeds)) + 0.5
    assert np.all(np.abs(fast.mean(0) - exact.mean(0)) <= 4 * se)


def test_fast_mode_is_seeded_and_sorted_like_lauscher():
    x = vowel(0.1)
    transform = AudioToSpikes(8)
    t1, u1 = transform(x, RATE, seed=3)
    t2, u2 = transform(x, RATE, seed=3)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(u1, u2)
    assert not np.array_equal(u1, transform(x, RATE, seed=4)[1])
    order = np.lexsort((u1, t1))  # by time, then channel
    np.testing.assert_array_equal(order, np.arange(t1.size))
    assert t1.max() < x.size / RATE


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_channels": 0}, "n_channels"), ({"mode": "approx"}, "mode"), ({"hair_cell": 3}, "hair_cell")],
)
def test_bad_settings_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AudioToSpikes(**kwargs)


def test_silent_or_stereo_input_is_refused():
    with pytest.raises(ValueError, match="silent"):
        AudioToSpikes(4)(np.zeros(800), RATE)
    with pytest.raises(ValueError, match="mono"):
        AudioToSpikes(4)(np.ones((800, 2)), RATE)
