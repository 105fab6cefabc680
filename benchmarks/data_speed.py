"""Throughput of the SHD pipeline (samples/s): HDF5 read + binning ("cold"), first cached epoch (cache
build), and reading the frame cache ("cached"), with 0 and 2 DataLoader workers.

The data is a generated file in the real SHD layout and of full-size shape (700 units, 0.6–1.4 s
recordings, ``--events`` spikes per sample on average), in a temporary directory. A DataLoader is built
per epoch, so with workers each epoch includes starting them.

    python benchmarks/data_speed.py --samples 400 --events 8000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lightning_snn.data.shd import SHDDataModule, write_heidelberg_file


def generate(root: Path, n: int, mean_events: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", max(n // 4, 1))):
        sizes = rng.poisson(mean_events, count)
        times = [np.sort(rng.uniform(0, rng.uniform(0.6, 1.4), k)) for k in sizes]
        units = [rng.integers(0, 700, k) for k in sizes]
        write_heidelberg_file(root / "SHD" / f"shd_{split}.h5", times, units, rng.integers(0, 20, count))


def epoch_rate(dm: SHDDataModule) -> float:
    start = time.perf_counter()
    n = sum(batch[0].shape[1] for batch in dm.train_dataloader())
    return n / (time.perf_counter() - start)


def run(root: Path, workers: int, batch_size: int) -> dict[str, float]:
    common = dict(n_steps=100, n_channels=140, batch_size=batch_size, val_fraction=0.0, num_workers=workers)
    cold = SHDDataModule(data_dir=root, **common)
    cold.setup()
    cache = root / f"cache-{workers}"
    cached = SHDDataModule(data_dir=root, cache_dir=cache, **common)
    cached.setup()
    rates = {"cold": epoch_rate(cold), "cache build": epoch_rate(cached), "cached": epoch_rate(cached)}
    cold.teardown()
    cached.teardown()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--events", type=int, default=8000, help="mean spikes per sample")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.samples, args.events)
        size = (root / "SHD" / "shd_train.h5").stat().st_size / 2**20
        print(f"SHD-shaped file: {args.samples} samples, ~{args.events} spikes each, {size:.1f} MiB; T=100, 700→140")
        print("| workers | cold (HDF5 + binning) | first cached epoch (build) | cached |")
        print("|---|---|---|---|")
        for workers in (0, 2):
            r = run(root, workers, args.batch_size)
            cold, build, cached = r["cold"], r["cache build"], r["cached"]
            print(f"| {workers} | {cold:.0f} samples/s | {build:.0f} samples/s | {cached:.0f} samples/s |")


if __name__ == "__main__":
    main()
