"""One GPU check: the CUDA tests, the fused LIF against the floor and the other libraries, one training epoch.

On a CUDA machine, in one process and in under 5 minutes (H100-class GPU; budgets below):

1. **tests**: ``pytest tests/test_cuda_path.py tests/test_lif_fused.py -k cuda`` (the CUDA-marked tests;
   subprocess, 150 s limit), pass/fail counts;
2. **LIF fwd+bwd**: network 700-256-256-20, batch 256, T in 25, 100, 400, median of repeats after warm-up:
   the dense ``matmul floor`` (the three Linear layers, no neuron; from ``lif_speed.py``), ``native``
   (``FeedForwardSNN``: the Triton kernels on CUDA), ``native torch loop`` (``LIGHTNING_SNN_TRITON=0``), ``native bf16``
   (autocast), SpikingJelly's ``ParametricLIFNode`` with each implementation it can load (2.0 selects among
   ``cuda`` (its compiled extension), ``triton`` and ``torch``; forced one at a time through its selection object),
   and ``snntorch`` (``Leaky`` stepped in Python, from ``lif_speed.py``);
3. **epoch**: one training epoch (the second; the first compiles) of ``FeedForwardSNN`` and ``DelaySNN``
   (140-256-256-20, T = 100) on a generated SHD-format file (512 samples, batch 256).

It prints one Markdown table with the device name and the versions. The goal it measures (issue 16): fused LIF
fwd+bwd at most 1.5x the matmul floor at T = 100, and at least as fast as SpikingJelly's fastest implementation.
Without a CUDA device it says so and exits 0.

    python benchmarks/gpu_check.py             # everything
    python benchmarks/gpu_check.py --skip-tests --T 100
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lif_speed  # noqa: E402  (the floor, snnTorch and the timing of benchmarks/lif_speed.py)

ROOT = Path(__file__).resolve().parent.parent
ROWS: list[tuple[str, str, str, str, str]] = []  # section, case, T, ms, note


def versions() -> str:
    import importlib.metadata as md

    parts = [f"torch {torch.__version__} (CUDA {torch.version.cuda})"]
    for name in ("triton", "lightning", "spikingjelly", "snntorch"):
        with contextlib.suppress(md.PackageNotFoundError):
            parts.append(f"{name} {md.version(name)}")
    return ", ".join(parts)


def run_tests(limit_s: int) -> None:
    cmd = [sys.executable, "-m", "pytest", "tests/test_cuda_path.py", "tests/test_lif_fused.py", "-k", "cuda", "-q"]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit_s)
        last = (out.stdout.strip().splitlines() or ["no output"])[-1]
        note = f"rc={out.returncode}: {last}"
        if out.returncode != 0:
            print(out.stdout[-4000:], out.stderr[-2000:], sep="\n")
    except subprocess.TimeoutExpired:
        note = f"timed out after {limit_s} s"
    ROWS.append(("tests", " ".join(cmd[3:]), "", f"{(time.perf_counter() - t0) * 1e3:.0f}", note))


@contextlib.contextmanager
def env(name: str, value: str):
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name) if previous is None else os.environ.update({name: previous})


def native_torch_loop(device):
    net = lif_speed.native(device)

    def run(x):
        with env("LIGHTNING_SNN_TRITON", "0"):  # the backward reads the path chosen in forward
            return net(x)

    return run


@contextlib.contextmanager
def spikingjelly_implementation(name: str):
    """Force SpikingJelly 2.0's PLIF implementation (``cuda``, ``triton`` or ``torch``) for the block."""
    from spikingjelly._ops.plif import _selection as selection

    saved = selection._requested
    selection._requested = name
    selection._selections.clear()
    selection._compiled_selections.clear()
    try:
        yield
    finally:
        selection._requested = saved
        selection._selections.clear()
        selection._compiled_selections.clear()


def spikingjelly_plif(name: str):
    def make(device):
        from spikingjelly.activation_based import functional, neuron, surrogate

        lins = lif_speed.make_linears(device)
        nodes = torch.nn.ModuleList(
            neuron.ParametricLIFNode(
                init_tau=2.0, detach_reset=True, surrogate_function=surrogate.ATan(), step_mode="m"
            )
            for _ in range(2)
        ).to(device)
        readout_beta = torch.tensor(0.5, device=device)

        def run(x):
            with spikingjelly_implementation(name):
                functional.reset_net(nodes)
                for lin, node in zip(lins[:-1], nodes):
                    x = node(lin(x))
                return lif_speed.leaky_integrate(lins[-1](x), readout_beta, decay_input=False)

        return run

    return make


CANDIDATES = {
    "matmul floor": lif_speed.dense_floor,
    "native": lif_speed.native,  # the Triton kernels on CUDA
    "native torch loop": native_torch_loop,
    "native bf16": lif_speed.native_bf16,
    "spikingjelly cuda": spikingjelly_plif("cuda"),
    "spikingjelly triton": spikingjelly_plif("triton"),
    "spikingjelly torch": spikingjelly_plif("torch"),
    "snntorch": lif_speed.snntorch_loop,
}


def bench_lif(device, steps: list[int], batch: int, repeats: int) -> None:
    for T in steps:
        x = (torch.rand(T, batch, lif_speed.SIZES[0], device=device) < 0.1).float()
        floor = None
        for name, make in CANDIDATES.items():
            if name == "snntorch" and T > 100:
                ROWS.append(("lif fwd+bwd", name, str(T), "", "skipped above T=100 (Python loop; time budget)"))
                continue
            try:
                ms = lif_speed.time_fwd_bwd(make(device), x, repeats, 2, device)
            except Exception as err:  # an implementation SpikingJelly cannot load here, say
                ROWS.append(("lif fwd+bwd", name, str(T), "", f"unavailable: {type(err).__name__}: {err}"[:120]))
                continue
            floor = floor or ms
            ROWS.append(("lif fwd+bwd", name, str(T), f"{ms:.2f}", f"{ms / floor:.2f}x floor"))
        if device.type == "cuda":
            torch.cuda.empty_cache()


class EpochTimer(L.Callback):
    """Wall time of each training epoch (CUDA synchronised at both ends)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        sync()
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        sync()
        self.times.append(time.perf_counter() - self.t0)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_epoch(accelerator: str, n_samples: int = 512, batch: int = 256, hidden: int = 256) -> None:
    import numpy as np

    from lightning_snn import DelaySNN, FeedForwardSNN, SpikingClassifier
    from lightning_snn.data.shd import SHDDataModule, write_heidelberg_file

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for split, n in (("train", n_samples), ("test", batch)):
            counts = rng.integers(50, 400, n)
            times = [np.sort(rng.uniform(0, 1.0, k)) for k in counts]
            units = [rng.integers(0, 700, k) for k in counts]
            write_heidelberg_file(Path(tmp) / "SHD" / f"shd_{split}.h5", times, units, rng.integers(0, 20, n))
        for name, make in (
            ("FeedForwardSNN", lambda: FeedForwardSNN(140, [hidden, hidden], 20)),
            ("DelaySNN", lambda: DelaySNN(140, [hidden, hidden], 20, max_delay=25)),
        ):
            data = SHDDataModule(data_dir=tmp, n_steps=100, n_channels=140, batch_size=batch, val_fraction=0.0)
            timer = EpochTimer()
            trainer = L.Trainer(
                accelerator=accelerator, devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], limit_val_batches=0,
            )  # fmt: skip
            t0 = time.perf_counter()
            trainer.fit(SpikingClassifier(make()), data)
            note = f"{n_samples} samples, batch {batch}, 140-{hidden}-{hidden}-20; first epoch {timer.times[0]:.2f} s"
            note += f"; fit {time.perf_counter() - t0:.1f} s"
            ROWS.append(("epoch", name, "100", f"{timer.times[-1] * 1e3:.0f}", note))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[25, 100, 400])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--test-limit-s", type=int, default=150)
    p.add_argument(
        "--cpu-dry-run", action="store_true", help="exercise this script on the CPU at toy sizes (no measurement)"
    )
    args = p.parse_args()
    if args.cpu_dry_run:  # checks the script's own code paths before a GPU is spent on it
        bench_lif(torch.device("cpu"), [4], 8, 1)
        bench_epoch("cpu", n_samples=16, batch=8, hidden=16)
        print_table("CPU DRY RUN (toy sizes; not a measurement)", 0.0)
        return 0
    if not torch.cuda.is_available():
        print(
            "No CUDA device is present (torch.cuda.is_available() is False): nothing to check or measure here. "
            f"Run this on a machine with an NVIDIA GPU. [{versions()}]"
        )
        return 0
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # the floor and every candidate in float32 as written
    started = time.perf_counter()
    if not args.skip_tests:
        run_tests(args.test_limit_s)
    bench_lif(device, args.T, args.batch, args.repeats)
    bench_epoch("gpu")
    print_table(f"GPU check: {torch.cuda.get_device_name(0)}", time.perf_counter() - started)
    return 0


def print_table(title: str, seconds: float) -> None:
    print(f"\n## {title}; {versions()}; {seconds:.0f} s\n")
    print("| section | case | T | ms | note |\n|---|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
