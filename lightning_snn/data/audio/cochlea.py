r"""Audio → spikes with the Heidelberg cochlea model of lauscher (Cramer et al., IEEE TNNLS 2020), fast.

The chain and its defaults are lauscher 1.0.1's ``Wave2Spike`` (``lauscher/transformations/wave2spike.py``),
the converter that made SHD and SSC:

1. RMS normalisation to 0.3, then a Hanning window over the whole recording (lauscher's own
   ``RmsNormalizer`` and ``HanningWindow`` are called);
2. the hydrodynamic basilar membrane of Sieroka et al. (2006): channel ``c`` (of ``n_channels`` places
   ``linspace(0, 3.5)``, base to apex) is ``Re(IFFT(V(ω, c) · FFT(x)[:N/2+1]))`` with lauscher's transfer
   function ``V`` (``BasilarMembrane._v``, called as is). ``V`` depends only on the waveform length, the
   sample rate and the parameters: it is computed once and cached;
3. the Meddis (1986, 1988) hair cell → firing probability per sample (numba,
   ``meddis_hair_cell`` in :mod:`lightning_snn.data.audio.cochlea_kernels`);
4. ``n_convergence = 40`` auditory-nerve fibres per channel with a 1 ms refractory period converge onto one
   LIF bushy cell per channel (numba).

Like lauscher, the output sample rate after the basilar membrane is ``fs // 2`` (``N/2 + 1`` samples).

Two modes for step 4:

- ``mode="exact"`` draws the fibre spikes as lauscher does, ``numpy.random.rand(T, 40) < p`` channel after
  channel from ``numpy.random.RandomState(seed)`` (the stream of ``numpy.random.seed(seed)``), and
  reproduces lauscher's spike train spike for spike. Slow at 700 channels (the random numbers dominate).
- ``mode="fast"`` (default) draws only the *number* of spiking fibres per sample, ``Binomial(n_available, p)``
  — the same distribution, one uniform per sample instead of 40 — from counter-based per-channel streams.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Literal

import numpy as np
import scipy.fft
from lauscher.audiowaves import MonoAudioWave
from lauscher.transformations import BasilarMembrane, BushyCell, HairCell, HanningWindow, RmsNormalizer

from lightning_snn.data.audio.cochlea_kernels import bushy_cells_exact, bushy_cells_fast, meddis_hair_cell

_TRANSFER_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_TRANSFER_CACHE_SIZE = 4


@dataclasses.dataclass(frozen=True)
class AudioToSpikes:
    r"""Waveform → ``(times, units)`` spikes with lauscher's cochlea model (see the module docstring).

    ``basilar_membrane``, ``hair_cell`` and ``bushy_cell`` are keyword arguments of lauscher's
    ``BasilarMembrane``, ``HairCell`` and ``BushyCell`` (their defaults are lauscher's); ``rms_level`` is
    ``Wave2Spike``'s 0.3. The bushy cell of channel ``c`` is

    .. math::
        V[t] = V[t-1]\,e^{-\Delta t/\tau_\mathrm{mem}} + \frac{w}{n}\,\Delta t \sum_{k=1}^{n} I_k[t],\quad
        I_k[t] = I_k[t-1]\,e^{-\Delta t/\tau_\mathrm{syn}} + s_k[t],\quad s_k[t] \sim \mathrm{Bernoulli}(p_c[t])

    with ``p_c`` the Meddis hair-cell output and fibre ``k`` silent for ``τ_refrac`` after each spike.

    Calling it returns spike times in seconds (float64, sorted) and channel indices (int64) — lauscher's
    ``SpikeTrain`` order (by time, then channel). ``seed`` fixes the random fibres.
    """

    n_channels: int = 700
    mode: Literal["fast", "exact"] = "fast"
    rms_level: float = 0.3
    basilar_membrane: dict = dataclasses.field(default_factory=dict)
    hair_cell: dict = dataclasses.field(default_factory=dict)
    bushy_cell: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.n_channels, int) or self.n_channels < 1:
            raise ValueError(f"AudioToSpikes: n_channels={self.n_channels!r}; expected a positive integer (700 = SHD).")
        if self.mode not in ("fast", "exact"):
            raise ValueError(f"AudioToSpikes: mode={self.mode!r}; expected 'fast' or 'exact'.")
        for name in ("basilar_membrane", "hair_cell", "bushy_cell"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"AudioToSpikes: {name} must be a dict of lauscher keyword arguments.")

    # ---- stages --------------------------------------------------------------------------------
    def normalized(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """RMS normalisation and Hanning window (lauscher's ``RmsNormalizer`` and ``HanningWindow``)."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 1 or samples.size < 4:
            raise ValueError(
                f"AudioToSpikes: samples of shape {samples.shape}; expected a mono waveform (1-d, ≥ 4 samples). "
                "Average the channels of a stereo file first."
            )
        if not np.all(np.isfinite(samples)) or not np.any(samples):
            raise ValueError(
                "AudioToSpikes: the waveform is silent (all zeros) or has NaN/inf; RMS normalisation needs sound. "
                "Drop the recording or add the background noise before converting."
            )
        wave = MonoAudioWave(samples.copy(), int(sample_rate))
        wave = HanningWindow()(RmsNormalizer(self.rms_level)(wave))
        return wave.samples

    def basilar_membrane_velocity(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Membrane velocity ``(n_channels, N/2+1)`` and its sample rate ``fs // 2`` (lauscher's convention)."""
        transfer = self.transfer(samples.size, sample_rate)
        stim_fft = np.fft.fft(samples)[: transfer.shape[1]]
        if self.mode == "exact":  # lauscher's per-channel numpy FFTs, same numbers
            return np.real(np.fft.ifft(transfer * stim_fft, axis=-1)), sample_rate // 2
        return _real_ifft(transfer * stim_fft.astype(transfer.dtype)), sample_rate // 2

    def transfer(self, n_samples: int, sample_rate: int) -> np.ndarray:
        """``V(ω, c)`` ``(n_channels, N/2+1)`` from lauscher's ``BasilarMembrane._v``, cached per length and rate."""
        key = (n_samples, sample_rate, self.n_channels, self.mode, tuple(sorted(self.basilar_membrane.items())))
        if key in _TRANSFER_CACHE:
            _TRANSFER_CACHE.move_to_end(key)
            return _TRANSFER_CACHE[key]
        bm = BasilarMembrane(channels=self.n_channels, **self.basilar_membrane)
        n_freq = n_samples // 2 + 1
        omega = 2 * np.pi * np.linspace(1, sample_rate // 2, n_freq)
        with np.errstate(all="ignore"):
            matrix = np.stack([bm._v(omega, c) for c in bm.ch])
        if self.mode == "fast":
            matrix = matrix.astype(np.complex64)
        _TRANSFER_CACHE[key] = matrix
        while len(_TRANSFER_CACHE) > _TRANSFER_CACHE_SIZE:
            _TRANSFER_CACHE.popitem(last=False)
        return matrix

    def firing_probability(self, velocity: np.ndarray, sample_rate: int) -> np.ndarray:
        """Meddis hair-cell output ``(n_channels, T)``, lauscher's ``HairCell._meddis`` for every channel."""
        hc = HairCell(**self.hair_cell)
        return meddis_hair_cell(
            np.ascontiguousarray(velocity), float(sample_rate), hc.y, hc.g, hc.l, hc.r, hc.x, hc.a, hc.b, hc.h, hc.m
        )

    def bushy_spikes(self, probability: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
        """Dense spikes ``(n_channels, T)`` of the bushy cells (``mode`` picks the fibre sampler)."""
        bc = BushyCell(**self.bushy_cell)
        params = (bc.tau_mem, bc.tau_syn, bc.tau_refrac, bc.weight)
        if self.mode == "fast":
            return bushy_cells_fast(probability, float(sample_rate), bc.n_convergence, *params, int(seed) % 2**63)
        rng = np.random.RandomState(seed)
        refrac_samples = bc.tau_refrac * sample_rate
        out = np.zeros(probability.shape, dtype=np.uint8)
        for c in range(probability.shape[0]):  # lauscher's BushyCell._sample, channel after channel
            fibres = rng.rand(probability.shape[1], bc.n_convergence) < probability[c][:, None]
            fibres = BushyCell._correct(fibres, refrac_samples).astype(np.float64)
            out[c] = bushy_cells_exact(fibres, float(sample_rate), *params)
        return out

    def __call__(self, samples: np.ndarray, sample_rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        x = self.normalized(samples, sample_rate)
        velocity, rate = self.basilar_membrane_velocity(x, int(sample_rate))
        probability = self.firing_probability(velocity, rate)
        dense = self.bushy_spikes(probability, rate, seed)
        steps, units = np.nonzero(dense.T)  # lauscher's SpikeTrain.from_dense: by time, then channel
        return steps / rate, units.astype(np.int64)


def _real_ifft(spectrum: np.ndarray) -> np.ndarray:
    """``Re(ifft(spectrum, axis=-1))`` as the inverse real FFT of its Hermitian part (half the work)."""
    m = spectrum.shape[-1]
    k = m // 2 + 1
    mirrored = np.concatenate([spectrum[:, :1], spectrum[:, : m - k : -1]], axis=1)
    hermitian = 0.5 * (spectrum[:, :k] + np.conj(mirrored))
    return scipy.fft.irfft(hermitian, n=m, axis=-1, workers=-1).astype(np.float64)
