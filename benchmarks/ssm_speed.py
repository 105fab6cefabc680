"""FFT convolution vs sequential recurrence of the S4D layer: forward + backward time and memory.

    OMP_NUM_THREADS=1 python benchmarks/ssm_speed.py --steps 64 256 1024 4096

Both paths use the same :class:`~lightning_snn.layers.ssm.S4DLayer` parameters (they agree to 1e-4,
``tests/test_ssm.py``). Time is the minimum wall time (over repeats) of forward + ``backward()`` of ``sum(y**2)``.
Memory is what autograd keeps for the backward pass: the total bytes of the tensors saved in the graph
(measured with ``torch.autograd.graph.saved_tensors_hooks``), i.e. the activation memory that grows
with ``T``; a tensor saved twice is counted once.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lightning_snn.layers.ssm import S4DLayer


def saved_bytes(layer: S4DLayer, u: torch.Tensor, mode: str) -> int:
    """Bytes of the distinct tensors autograd saves for the backward pass of one forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(u, mode=mode)
    return sum(seen.values())


def time_fwd_bwd(layer: S4DLayer, u: torch.Tensor, mode: str, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        layer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        (layer(u, mode=mode) ** 2).sum().backward()
        times.append(time.perf_counter() - start)
    return min(times[1:])  # the minimum is the least disturbed by other processes on a shared CPU


def run(steps: list[int], batch: int, d_model: int, d_state: int, repeats: int, max_recurrence: int) -> list[dict]:
    torch.manual_seed(0)
    layer = S4DLayer(d_model, d_state)
    rows = []
    for t in steps:
        u = torch.randn(t, batch, d_model, requires_grad=True)
        row = {"T": t, "fft_s": time_fwd_bwd(layer, u, "fft", repeats), "fft_mb": saved_bytes(layer, u, "fft") / 2**20}
        if t <= max_recurrence:
            row["rec_s"] = time_fwd_bwd(layer, u, "recurrence", max(1, repeats // 3))
            row["rec_mb"] = saved_bytes(layer, u, "recurrence") / 2**20
        rows.append(row)
        print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    base = rows[0]
    lines = [
        f"| T | FFT fwd+bwd (ms) | recurrence fwd+bwd (ms) | speed-up | FFT time / (T log2 T), rel. to T={base['T']} |"
        " FFT saved (MiB) | recurrence saved (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        norm = (r["fft_s"] / (r["T"] * math.log2(r["T"]))) / (base["fft_s"] / (base["T"] * math.log2(base["T"])))
        rec = f"{1e3 * r['rec_s']:.1f}" if "rec_s" in r else "—"
        speedup = f"{r['rec_s'] / r['fft_s']:.0f}×" if "rec_s" in r else "—"
        rec_mb = f"{r['rec_mb']:.1f}" if "rec_mb" in r else "—"
        lines.append(
            f"| {r['T']} | {1e3 * r['fft_s']:.2f} | {rec} | {speedup} | {norm:.2f} | {r['fft_mb']:.1f} | {rec_mb} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-recurrence", type=int, default=4096, help="skip the recurrence above this T")
    args = parser.parse_args()
    rows = run(args.steps, args.batch, args.d_model, args.d_state, args.repeats, args.max_recurrence)
    print(
        f"\nS4DLayer(d_model={args.d_model}, d_state={args.d_state}), batch {args.batch}, "
        f"torch threads {torch.get_num_threads()}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
