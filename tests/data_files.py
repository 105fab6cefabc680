"""Writers of tiny recordings in each dataset's real on-disk format (no download needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_snn.data.shd import write_heidelberg_file


def random_spike_trains(rng: np.random.Generator, n: int, max_events: int = 60, t_max: float = 1.0,
                        n_units: int = 700):
    times, units = [], []
    for _ in range(n):
        k = int(rng.integers(1, max_events))
        times.append(np.sort(rng.uniform(0, t_max, k)))
        units.append(rng.integers(0, n_units, k))
    return times, units


def write_heidelberg(root: Path, name: str, sizes: dict[str, int], num_classes: int, seed: int = 0) -> dict:
    """``root/<NAME>/<name>_<split>.h5`` for each split; returns {split: (times, units, labels)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in sizes.items():
        times, units = random_spike_trains(rng, n)
        labels = rng.integers(0, num_classes, n)
        write_heidelberg_file(root / name.upper() / f"{name}_{split}.h5", times, units, labels)
        # float16 storage rounds times: return what the file holds
        out[split] = ([t.astype(np.float16).astype(np.float64) for t in times], units, labels)
    return out


def encode_nmnist(x, y, t, p) -> bytes:
    """N-MNIST ``.bin``: 5 bytes per event, x, y, p<<7 | t[22:16], t[15:8], t[7:0] (t < 2**23 µs)."""
    x, y, t, p = (np.asarray(a, dtype=np.uint32) for a in (x, y, t, p))
    raw = np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1)
    return raw.astype(np.uint8).tobytes()


def write_nmnist(root: Path, per_class: dict[str, int], n_events: int = 40, seed: int = 0) -> dict:
    """``root/NMNIST/{Train,Test}/<digit>/<k>.bin``; returns {folder: [(path, label, n_events)]}."""
    rng = np.random.default_rng(seed)
    out = {}
    for folder, count in per_class.items():
        out[folder] = []
        for digit in range(10):
            d = root / "NMNIST" / folder / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                n = 0 if (folder == "Test" and digit == 0 and k == 0) else n_events  # one empty recording
                t = np.sort(rng.integers(0, 300_000, n))
                data = encode_nmnist(rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n))
                (d / f"{k:05d}.bin").write_bytes(data)
                out[folder].append((d / f"{k:05d}.bin", digit, n))
    return out


def write_dvs_gesture(root: Path, files: dict[str, list[tuple[str, int]]], n_events: int = 80, seed: int = 0) -> None:
    """``root/DVSGesture/<folder>/<user_lighting>/<label>.npy`` with columns x, y, p, t (ms)."""
    rng = np.random.default_rng(seed)
    for folder, entries in files.items():
        for user_dir, label in entries:
            d = root / "DVSGesture" / folder / user_dir
            d.mkdir(parents=True, exist_ok=True)
            t = np.sort(rng.integers(0, 6000, n_events))
            ev = np.stack([rng.integers(0, 128, n_events), rng.integers(0, 128, n_events),
                           rng.integers(0, 2, n_events), t], axis=1).astype(np.int64)
            np.save(d / f"{label}.npy", ev)
