"""FFT convolution vs sequential recurrence of an SSM layer: forward + backward time and memory.

    OMP_NUM_THREADS=1 python benchmarks/ssm_speed.py --steps 64 256 1024 4096
    OMP_NUM_THREADS=1 python benchmarks/ssm_speed.py --layer dplr --steps 64 256 1024

Both paths use the same :class:`~lightning_snn.layers.ssm.S4DLayer` (``--layer s4d``) or
:class:`~lightning_snn.layers.ssm.S4DPLRLayer` (``--layer dplr``, ``l_max`` = the largest ``T``; its
recurrence is the dense ``d_state × d_state`` one) parameters (they agree to 1e-4, ``tests/test_ssm.py``,
``tests/test_s4_dplr.py``). ``--kernel-only`` also times the kernel computation alone (forward + backward
of ``sum(K**2)``), to see whether it dominates the layer. Time is the minimum wall time (over repeats) of
forward + ``backward()`` of ``sum(y**2)``.
Memory is what autograd keeps for the backward pass: the total bytes of the tensors saved in the graph
(measured with ``torch.autograd.graph.saved_tensors_hooks``), i.e. the activation memory that grows
with ``T``; a tensor saved twice is counted once.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lightning_snn.layers.ssm import S4DLayer, S4DPLRLayer


def saved_bytes(layer: S4DLayer, u: torch.Tensor, mode: str) -> int:
    """Bytes of the distinct tensors autograd saves for the backward pass of one forward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(u, mode=mode)
    return sum(seen.values())


#: ``--cpu-time`` switches to the process's CPU time, which other jobs on a shared machine disturb less.
CLOCK = {"clock": time.perf_counter}


def time_fwd_bwd(layer: S4DLayer, u: torch.Tensor, mode: str, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        layer.zero_grad(set_to_none=True)
        start = CLOCK["clock"]()
        (layer(u, mode=mode) ** 2).sum().backward()
        times.append(CLOCK["clock"]() - start)
    return min(times[1:])  # the minimum is the least disturbed by other processes on a shared CPU


def time_kernel(layer: torch.nn.Module, steps: int, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        layer.zero_grad(set_to_none=True)
        start = CLOCK["clock"]()
        (layer.kernel(steps) ** 2).sum().backward()
        times.append(CLOCK["clock"]() - start)
    return min(times[1:])


def run(args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(0)
    steps, batch, d_model, d_state, repeats = args.steps, args.batch, args.d_model, args.d_state, args.repeats
    if args.layer == "dplr":
        layer = S4DPLRLayer(d_model, d_state, l_max=max(steps))
    else:
        layer = S4DLayer(d_model, d_state)
    rows = []
    for t in steps:
        u = torch.randn(t, batch, d_model, requires_grad=True)
        row = {"T": t, "fft_s": time_fwd_bwd(layer, u, "fft", repeats), "fft_mb": saved_bytes(layer, u, "fft") / 2**20}
        if args.kernel_only:
            row["kernel_s"] = time_kernel(layer, t, repeats)
        if t <= args.max_recurrence:
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
    parser.add_argument("--layer", choices=["s4d", "dplr"], default="s4d")
    parser.add_argument("--kernel-only", action="store_true", help="also time the kernel computation alone")
    parser.add_argument("--cpu-time", action="store_true", help="time with time.process_time (shared machines)")
    args = parser.parse_args()
    if args.cpu_time:
        CLOCK["clock"] = time.process_time
    rows = run(args)
    print(
        f"\n{args.layer}: d_model={args.d_model}, d_state={args.d_state}, batch {args.batch}, "
        f"torch threads {torch.get_num_threads()}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
