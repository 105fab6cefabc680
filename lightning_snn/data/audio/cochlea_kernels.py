r"""Numba loops of the Heidelberg cochlea model (lauscher 1.0.1), transcribed statement by statement.

Three loops, each over samples and run for every channel:

- ``meddis_hair_cell``: the Meddis (1986, 1988) transmitter-pool hair cell, lauscher's
  ``HairCell._meddis`` (``lauscher/transformations/hair_cell.py``), in the same order of floating-point
  operations, so that it returns the same numbers.
- ``bushy_cells_exact``: lauscher's bushy-cell LIF ``BushyCell._lif`` on given fibre spikes, keeping one
  synaptic current per fibre and summing them as ``numpy.sum`` does (eight-way pairwise blocks), so that the
  threshold crossings, hence the spikes, are the same.
- ``bushy_cells_fast``: the same neuron driven by the *number* of fibres that spike per sample, drawn
  from its exact distribution: ``Binomial(n_available, p)``, where ``n_available`` are the fibres out of
  their refractory period. Statistically the same as lauscher, not spike for spike.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def meddis_hair_cell(bm: np.ndarray, fs: float, y, g, l, r, x, a, b, h, m) -> np.ndarray:  # noqa: E741
    r"""Firing probability per sample ``(C, T)`` of the Meddis hair cell for basilar-membrane velocity ``bm``.

    .. math::
        k(t) &= g\,\frac{v + a}{v + a + b}\ (0 \text{ if } v + a \le 0),\\
        \dot q &= y(m - q)^{+} - k q + x w,\quad \dot c = k q - (l + r) c,\quad \dot w = r c - x w,

    integrated with Euler steps of ``1/fs`` and clipped at 0; the output is ``c · h / fs``.
    """
    n_channels, n_samples = bm.shape
    out = np.zeros((n_channels, n_samples))
    ymdt = y * m / fs
    xdt = x / fs
    ydt = y / fs
    rdt = r / fs
    gdt = g / fs
    hdt = h / fs
    lplusrdt = (l + r) / fs
    kt0 = g * a / (a + b)
    c0 = m * y * kt0 / (l * kt0 + y * (l + r))
    q0 = c0 * (l + r) / kt0
    w0 = c0 * r / x
    for i in range(n_channels):
        hair_c, hair_q, hair_w = c0, q0, w0
        for j in range(n_samples):
            v = bm[i, j]
            if (v + a) > 0:
                kt = gdt * (v + a) / (v + a + b)
            else:
                kt = 0.0
            if hair_q < m:
                replenish = ymdt - ydt * hair_q
            else:
                replenish = 0.0
            eject = kt * hair_q
            reuptakeandloss = lplusrdt * hair_c
            reuptake = rdt * hair_c
            reprocess = xdt * hair_w
            hair_q = max(hair_q + replenish - eject + reprocess, 0.0)
            hair_c = max(hair_c + eject - reuptakeandloss, 0.0)
            hair_w = max(hair_w + reuptake - reprocess, 0.0)
            out[i, j] = hair_c * hdt
    return out


@numba.njit(cache=True)
def _numpy_sum(values: np.ndarray) -> float:
    """``numpy.sum`` of a short contiguous float64 vector, bit for bit (numpy's pairwise_sum for n ≤ 128)."""
    n = values.shape[0]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += values[i]
        return res
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    i = 8
    while i < n - (n % 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[i]
        i += 1
    return res


@numba.njit(cache=True)
def bushy_cells_exact(fibres: np.ndarray, fs: float, tau_mem, tau_syn, tau_refrac, weight) -> np.ndarray:
    r"""Spikes ``(T,)`` of one bushy cell driven by fibre spikes ``fibres`` ``(T, n_convergence)`` (0/1).

    .. math::
        I_k[t] = I_k[t-1]\, e^{-\Delta t/\tau_\mathrm{syn}} + s_k[t],\qquad
        V[t] = V[t-1]\, e^{-\Delta t/\tau_\mathrm{mem}} + w\,\Delta t \textstyle\sum_k I_k[t],

    ``V`` clipped at 1; reaching 1 is a spike (recorded one sample early, as lauscher does), followed by
    ``tau_refrac`` of reset and no integration. ``weight`` is already divided by ``n_convergence``.
    """
    n_samples, n_fibres = fibres.shape
    dt = 1 / float(fs)
    decay_mem = np.exp(-dt / tau_mem)
    decay_syn = np.exp(-dt / tau_syn)
    n_refrac_samples = tau_refrac * fs
    vm = np.zeros(n_samples)
    spikes = np.zeros(n_samples)
    isyn = np.zeros(n_fibres)
    refrac_counter = 0.0
    for step in range(n_samples):
        if step > 0:
            if refrac_counter <= 0:
                if vm[step - 1] < 1.0:
                    vm[step] = vm[step - 1] * decay_mem
                else:
                    refrac_counter = n_refrac_samples
                    vm[step] = 0.0
                    spikes[step - 1] = 1.0
            for k in range(n_fibres):
                isyn[k] = isyn[k] * decay_syn
        for k in range(n_fibres):
            isyn[k] += fibres[step, k]
        if refrac_counter <= 0:
            vm[step] += _numpy_sum(isyn) * weight * dt
        if vm[step] > 1.0:
            vm[step] = 1.0
        refrac_counter -= 1
    return spikes


@numba.njit(cache=True)
def _uniform(state: np.ndarray) -> float:
    """Next uniform in [0, 1) of a SplitMix64 stream held in ``state[0]`` (counter-based, per channel)."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _binomial(n: int, p: float, state: np.ndarray) -> int:
    """``Binomial(n, p)`` by inversion of its CDF with one uniform (n ≤ a few dozen, p small: ~1 + n·p steps)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    u = _uniform(state)
    q = 1.0 - p
    prob = q**n
    cdf = prob
    k = 0
    ratio = p / q
    while u >= cdf and k < n:
        prob *= (n - k) / (k + 1) * ratio
        k += 1
        cdf += prob
    return k


@numba.njit(cache=True)
def bushy_cells_fast(
    probability: np.ndarray, fs: float, n_convergence, tau_mem, tau_syn, tau_refrac, weight, seed
) -> np.ndarray:
    """Spikes ``(C, T)`` (0/1) of the bushy cells of all channels; fibre spikes drawn per sample as counts.

    Each of ``n_convergence`` fibres spikes with probability ``probability[c, t]`` unless it spiked less than
    ``tau_refrac · fs`` samples before (lauscher's ``BushyCell._correct``); the count of spiking fibres is
    ``Binomial(n_available, p)``. The LIF is ``bushy_cells_exact`` with the fibre currents summed
    (the sum decays with the same constant). Channel ``c`` draws from its own stream seeded by ``(seed, c)``.
    """
    n_channels, n_samples = probability.shape
    dt = 1 / float(fs)
    decay_mem = np.exp(-dt / tau_mem)
    decay_syn = np.exp(-dt / tau_syn)
    refrac = tau_refrac * fs
    n_blocked = max(int(math.ceil(refrac)) - 1, 0)  # samples after a fibre spike with j - last < refrac
    out = np.zeros((n_channels, n_samples), dtype=np.uint8)
    for c in range(n_channels):
        state = np.zeros(1, dtype=np.uint64)
        state[0] = np.uint64(seed) * np.uint64(0x632BE59BD9B4E019) + np.uint64(c + 1) * np.uint64(0x9E3779B97F4A7C15)
        recent = np.zeros(n_blocked + 1, dtype=np.int64)  # ring buffer of fibre-spike counts
        in_refrac = 0
        vm_prev = 0.0
        isyn = 0.0
        refrac_counter = 0.0
        for step in range(n_samples):
            vm = 0.0
            if step > 0:
                if refrac_counter <= 0:
                    if vm_prev < 1.0:
                        vm = vm_prev * decay_mem
                    else:
                        refrac_counter = refrac
                        out[c, step - 1] = 1
                isyn = isyn * decay_syn
            slot = step % (n_blocked + 1)
            if n_blocked > 0:
                in_refrac -= recent[slot]  # the count from n_blocked + 1 samples ago is available again
            count = _binomial(n_convergence - in_refrac, probability[c, step], state)
            if n_blocked > 0:
                recent[slot] = count
                in_refrac += count
            isyn += count
            if refrac_counter <= 0:
                vm += isyn * weight * dt
            if vm > 1.0:
                vm = 1.0
            vm_prev = vm
            refrac_counter -= 1
    return out
