"""AudioToSpikes vs stock lauscher 1.0.1 (``Wave2Spike``) on one short word, 700 channels.

    nice -n 10 python benchmarks/cochlea_speed.py                      # lauscher takes minutes: it runs once
    python benchmarks/cochlea_speed.py --channels 128 --seconds 0.3     # quicker

The word is a synthetic vowel sequence (harmonic complex with moving formants, ``--seconds`` long at 16 kHz;
the cost does not depend on what is said). Both sides may use every core (lauscher: a multiprocessing pool;
ours: scipy's FFT workers; the numba loops run on one thread). Reported per side: wall time and CPU time
(this process plus its children, which counts lauscher's pool workers); on a shared machine the CPU-time
ratio is the steadier one.

Ours is timed *cold* (first call of a length: the basilar-membrane transfer matrix is computed, numba is
already compiled) and *warm* (the matrix cached, as for every further recording of that length, e.g. in a
data set whose clips are padded to one length): the mean of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

RATE = 16000


def word(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 40 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formant = 500 + 1500 * t / seconds
    x = sum(np.sin(k * phase) * np.exp(-(((k * f0 - formant) / 400) ** 2)) for k in range(1, 40))
    return x * np.sin(np.pi * t / seconds) ** 2


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=700)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.transformations.wave2spike import Wave2Spike

    from lightning_snn.data.audio import AudioToSpikes

    x = word(args.seconds)
    fast = AudioToSpikes(args.channels)
    AudioToSpikes(4)(word(0.05), RATE)  # compile the numba kernels outside the timings
    cold_wall, cold_cpu, (times, _) = timed(lambda: fast(x, RATE, seed=0))
    warm = [timed(lambda s=s: fast(x, RATE, seed=s)) for s in range(1, args.repeats + 1)]
    warm_wall, warm_cpu = np.mean([w for w, _, _ in warm]), np.mean([c for _, c, _ in warm])
    print(f"ours, fast mode: cold {cold_wall:.2f} s wall / {cold_cpu:.2f} s CPU; warm {warm_wall:.3f} s wall / "
          f"{warm_cpu:.3f} s CPU; {times.size} spikes", flush=True)  # fmt: skip
    np.random.seed(0)
    ref_wall, ref_cpu, ref = timed(lambda: MonoAudioWave(x.copy(), RATE).transform(Wave2Spike(args.channels)))
    print(f"lauscher: {ref_wall:.1f} s wall / {ref_cpu:.1f} s CPU; {ref.spike_times.size} spikes", flush=True)
    print(f"\n{args.channels} channels, {args.seconds} s word at {RATE} Hz")
    print("| | wall ratio (lauscher / ours) | CPU ratio |")
    print("|---|---|---|")
    print(f"| warm (transfer matrix cached) | {ref_wall / warm_wall:.0f}× | {ref_cpu / warm_cpu:.0f}× |")
    print(f"| cold (first call of this length) | {ref_wall / cold_wall:.1f}× | {ref_cpu / cold_cpu:.1f}× |")


if __name__ == "__main__":
    main()
