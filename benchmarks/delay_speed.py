"""Speed of learnable delays: every path of DelayedLinear against a plain Linear layer of the same shape, in one run.

    OMP_NUM_THREADS=1 python benchmarks/delay_speed.py                 # 700 -> 256, T=100, B=64, K = 5 25 50
    python benchmarks/delay_speed.py --delays 25 --repeats 5 --threads 2

Training (forward + backward to weight and delay positions, on a spike input of ``--density``) is timed for
the DCLS reference (``backend="dcls"``), the PyTorch FFT path (``delay_fft.gaussian_delay_fft``) and the
Numba spectral path (``delay_spectral.gaussian_delay_spectral``, what ``backend="fft"`` runs on a CPU), and
divided by a Linear training step (forward + weight gradient). Eval (rounded integer delays, forward only,
``torch.no_grad``) is timed for shifting and summing and for the event path, and divided by a Linear
forward. Milliseconds are the median of ``--repeats`` after one warm-up. All training paths give the same
values and gradients, and both eval paths the same values (``tests/test_delay_paths.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_snn.layers import delay_spectral
from lightning_snn.layers.delay_fft import gaussian_delay_fft
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import event_delay_linear, shift_and_sum_delay_linear


def timed(step, repeats: int) -> float:
    step()  # warm-up (allocations, DCLS index cache, Numba compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def train_step(forward, *params):
    def step():
        for p in params:
            p.grad = None
        forward().sum().backward()

    return step


def eval_step(forward):
    def step():
        with torch.no_grad():
            forward()

    return step


def paths(x: torch.Tensor, layer: DelayedLinear) -> tuple[dict, dict]:
    """``({name: training forward}, {name: eval forward})`` for one layer."""
    k = layer.max_delay
    weight, delay = layer.to_integer_delays()
    train = {
        "DCLS (backend='dcls')": lambda: layer(x),
        "FFT, PyTorch (delay_fft)": lambda: gaussian_delay_fft(x, layer.weight, layer.delay(), layer.sigma, k),
        "spectral, Numba (delay_spectral)": lambda: delay_spectral.gaussian_delay_spectral(
            x, layer.weight, layer.delay(), layer.sigma, k
        ),
    }
    evals = {
        "shift and sum (one matmul per delay)": lambda: shift_and_sum_delay_linear(x, weight, delay),
        "events, Numba (event_delay_linear)": lambda: event_delay_linear(x, weight, delay),
    }
    return train, evals


def bench(args) -> list[tuple[str, str, float]]:
    """Rows ``(path, mode, ms)``; mode is ``"train"`` or ``"eval"``, the first row of each mode is Linear."""
    torch.manual_seed(0)
    x = (torch.rand(args.steps, args.batch, args.inputs) < args.density).float()
    linear = torch.nn.Linear(args.inputs, args.outputs, bias=False)
    rows = [
        ("Linear", "train", timed(train_step(lambda: x @ linear.weight.t(), linear.weight), args.repeats)),
        ("Linear", "eval", timed(eval_step(lambda: x @ linear.weight.t()), args.repeats)),
    ]
    print(rows, flush=True)
    for k in args.delays:
        layer = DelayedLinear(args.inputs, args.outputs, max_delay=k, sigma=k / 2)
        train, evals = paths(x, layer)
        for name, forward in train.items():
            layer.backend = "dcls" if name.startswith("DCLS") else "fft"
            step = train_step(forward, layer.weight, layer.delay_position)
            rows.append((f"K={k}, {name}", "train", timed(step, args.repeats)))
            print(rows[-1], flush=True)
        for name, forward in evals.items():
            rows.append((f"K={k}, {name}", "eval", timed(eval_step(forward), args.repeats)))
            print(rows[-1], flush=True)
    # Linear again at the end: the machine's load drifts during a run
    rows.append(
        ("Linear (again)", "train", timed(train_step(lambda: x @ linear.weight.t(), linear.weight), args.repeats))
    )
    rows.append(("Linear (again)", "eval", timed(eval_step(lambda: x @ linear.weight.t()), args.repeats)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=700)
    parser.add_argument("--outputs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.05, help="fraction of nonzero (spike) inputs")
    parser.add_argument("--delays", type=int, nargs="+", default=[5, 25, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = bench(args)
    base = {mode: ms for name, mode, ms in rows if name == "Linear"}
    print(
        f"\n{args.inputs} -> {args.outputs}, T={args.steps}, B={args.batch}, density {args.density}, "
        f"{args.threads} thread(s), torch {torch.__version__}"
    )
    print("| path | mode | ms | × Linear (same mode) |\n|---|---|---|---|")
    for name, mode, ms in rows:
        print(f"| {name} | {mode} | {ms:.1f} | {ms / base[mode]:.2f} |")


if __name__ == "__main__":
    main()
