"""Writers of tiny recordings in each dataset's real on-disk format (no download needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_snn.data.shd import write_heidelberg_file


def random_spike_trains(rng: np.random.Generator, n: int, max_events: int = 60, t_max: float = 1.0, n_units: int = 700):
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


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """One IDX file: magic ``0 0 <type> <ndim>``, big-endian uint32 sizes, then the data (uint8 or int32)."""
    import struct

    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(">u1" if code == 0x08 else ">i4").tobytes()


def write_mnist(directory: Path, n_train: int = 12, n_test: int = 5, gz: bool = False, rng=None) -> dict:
    """The four MNIST IDX files (``.gz`` with ``gz=True``) in ``directory``; returns {name: array}."""
    import gzip

    rng = rng or np.random.default_rng(0)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in data.items():
        raw = idx_bytes(array)
        if gz:
            with gzip.open(directory / f"{name}.gz", "wb") as f:
                f.write(raw)
        else:
            (directory / name).write_bytes(raw)
    return data


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
            ev = np.stack(
                [rng.integers(0, 128, n_events), rng.integers(0, 128, n_events), rng.integers(0, 2, n_events), t],
                axis=1,
            ).astype(np.int64)
            np.save(d / f"{label}.npy", ev)


def _aedat4_header(description: bytes, data_table_position: int) -> bytes:
    """IOHeader flatbuffer: {compression: NONE, dataTablePosition: int64, description: string}."""
    import struct

    vtable = struct.pack("<5H", 10, 20, 4, 8, 16)
    head = struct.pack("<I", 24) + b"\0" * 4 + vtable + b"\0" * 6  # root → table at 24 (8-aligned)
    table = struct.pack("<iiqI", 24 - 8, 0, data_table_position, 4)  # soffset, compression, position, → string
    return head + table + struct.pack("<I", len(description)) + description + b"\0"


def _aedat4_events_packet(t, x, y, p) -> bytes:
    """Size-prefixed EventPacket flatbuffer with identifier EVTS: a vector of 16-byte Event structs."""
    import struct

    events = np.zeros(len(t), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    events["t"], events["x"], events["y"], events["on"] = t, x, y, p
    body = (
        struct.pack("<I", 20)
        + b"EVTS"
        + b"\0" * 4
        + struct.pack("<3H", 6, 8, 4)
        + b"\0" * 2
        + struct.pack("<iI", 24 - 16, 8)
        + b"\0" * 4
        + struct.pack("<I", len(t))
        + events.tobytes()
    )
    return struct.pack("<I", len(body)) + body


def write_aedat4(path: Path, t, x, y, p, width: int = 128, height: int = 128) -> None:
    """A minimal uncompressed AEDAT 4.0 file with one event stream (what tonic reads for CIFAR10-DVS)."""
    import struct

    xml = (
        f'<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/"><node name="0" '
        f'path="/mainloop/Recorder/outInfo/0/"><attr key="typeIdentifier" type="string">EVTS</attr>'
        f'<node name="info" path="/mainloop/Recorder/outInfo/0/info/"><attr key="sizeX" type="int">{width}'
        f'</attr><attr key="sizeY" type="int">{height}</attr></node></node></node></dv>'
    ).encode()
    packet = _aedat4_events_packet(t, x, y, p)
    packets = struct.pack("<iI", 0, len(packet)) + packet
    header_len = len(_aedat4_header(xml, 0))
    end = 14 + 4 + header_len + len(packets)
    header = _aedat4_header(xml, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(header)) + header + packets)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10dvs(root: Path, per_class: int, n_events: int = 60, seed: int = 0) -> list[tuple[Path, int]]:
    """``root/CIFAR10DVS/<class>/cifar10_<class>_<k>.aedat4``; returns [(path, label)]."""
    rng = np.random.default_rng(seed)
    out = []
    for label, name in enumerate(CIFAR10_CLASSES):
        for k in range(per_class):
            path = root / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4"
            t = np.sort(rng.integers(0, 1_000_000, n_events))
            write_aedat4(
                path, t, rng.integers(0, 128, n_events), rng.integers(0, 128, n_events), rng.integers(0, 2, n_events)
            )
            out.append((path, label))
    return out


def write_tone_folder(root: Path, freqs: dict[str, float], per_class: int = 3, rate: int = 8000, seconds: float = 0.2):
    """``root/<class>/<i>.wav``: pure tones of each class's frequency (slightly detuned per file), 16-bit PCM."""
    import soundfile

    t = np.arange(int(rate * seconds)) / rate
    for name, freq in freqs.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            tone = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.02 * i) * t) * np.hanning(t.size)
            soundfile.write(root / name / f"{i}.wav", tone, rate, subtype="PCM_16")
    return root
