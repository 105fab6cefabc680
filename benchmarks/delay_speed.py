"""Speed of learnable delays: DelayedLinear (DCLS reference vs our FFT path) against a plain Linear layer.

    OMP_NUM_THREADS=1 python benchmarks/delay_speed.py                 # 700 -> 256, T=100, B=64
    python benchmarks/delay_speed.py --delays 25 --repeats 5 --threads 2

Times one training step (forward + backward to weights and positions) on a spike input (5 % density)
and prints a Markdown table: milliseconds (median of ``--repeats`` after one warm-up) and the ratio to
``nn.Linear``. Also times the eval path (rounded integer delays, forward only). Both training paths give
the same values (``tests/test_delays.py::test_fft_path_equals_dcls_in_value_and_gradient``).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from lightning_snn.layers.delayed_linear import DelayedLinear


def timed(step, repeats: int) -> float:
    step()  # warm-up (allocations, DCLS index cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def train_step(module, x, *params):
    def step():
        for p in params:
            p.grad = None
        module(x).sum().backward()

    return step


def bench(args) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    x = (torch.rand(args.steps, args.batch, args.inputs) < 0.05).float()
    linear = torch.nn.Linear(args.inputs, args.outputs, bias=False)
    rows = [("Linear", timed(train_step(lambda v: v @ linear.weight.t(), x, linear.weight), args.repeats))]
    for d in args.delays:
        layer = DelayedLinear(args.inputs, args.outputs, max_delay=d, sigma=d / 2)
        params = (layer.weight, layer.delay_position)
        for backend in ("dcls", "fft"):
            layer.backend = backend
            rows.append((f"DelayedLinear K={d}, train, {backend}", timed(train_step(layer, x, *params), args.repeats)))
            print(rows[-1], flush=True)
        layer.eval()
        with torch.no_grad():
            rows.append(
                (f"DelayedLinear K={d}, eval (integer delays)", timed(functools.partial(layer, x), args.repeats))
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=700)
    parser.add_argument("--outputs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--delays", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = bench(args)
    base = rows[0][1]
    print(
        f"\n{args.inputs} -> {args.outputs}, T={args.steps}, B={args.batch}, {args.threads} thread(s), "
        f"torch {torch.__version__}"
    )
    print("| layer | ms | × Linear |\n|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} | {ms / base:.1f} |")


if __name__ == "__main__":
    main()
