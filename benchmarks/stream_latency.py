"""Per-step streaming latency on CPU: µs per time step, per layer and per network (``forward_with_state``).

Every stateful layer is called on one time step at a time (batch ``--batch``, width ``--width``) with its
state carried, as a sensor stream would feed it; the median over ``--steps`` steps after warm-up is
reported (no autograd: ``torch.no_grad``). The networks are timed the same way, one step per call, and
the per-layer figure of a network is its time divided by its number of stateful layers.

    python benchmarks/stream_latency.py
    python benchmarks/stream_latency.py --width 512 --batch 8 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lightning_snn import DelaySNN, FeedForwardSNN, TemporalConvSNN
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models.pspikessm import PSpikeSSM
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF


def per_step_us(call, x: torch.Tensor, steps: int, warmup: int = 20) -> float:
    """Median µs of ``state = call(x_t, state)`` over ``steps`` single-step calls."""
    state, times = None, []
    with torch.no_grad():
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            state = call(x, state)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def module_call(module: nn.Module):
    def call(x, state):
        return module.forward_with_state(x, state)[1]

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, b = args.width, args.batch
    x = torch.rand(1, b, n)
    print(f"CPU, {torch.get_num_threads()} threads, batch {b}, width {n}: median µs per time step")
    layers = {
        "LearnableLIF": LearnableLIF(n),
        "LeakyReadout": LeakyReadout(n),
        "DelayedLinear (integer, D=25)": DelayedLinear(n, n, 25).eval(),
        "CausalConv1d (k=7, δ=4)": CausalConv1d(n, n, 7, 4),
        "S4DLayer (d_state=64)": S4DLayer(n, 64),
    }
    for name, layer in layers.items():
        print(f"  layer    {name:32s} {per_step_us(module_call(layer), x, args.steps):9.1f}")
    linear = nn.Linear(n, n)
    us = per_step_us(lambda x, s: linear(x), x, args.steps)
    print(f"  layer    {'nn.Linear (stateless reference)':32s} {us:9.1f}")
    networks = {
        "FeedForwardSNN [w, w]": FeedForwardSNN(n, [n, n], 20),
        "DelaySNN [w] (integer, D=25)": DelaySNN(n, [n], 20, max_delay=25),
        "TemporalConvSNN [w, w]": TemporalConvSNN(n, [n, n], 20),
        "PSpikeSSM (2 blocks, d_state 64)": PSpikeSSM(n, 20, d_model=n, d_state=64, pool="none"),
    }
    for name, net in networks.items():
        net.eval()
        _, state = net.forward_with_state(x)
        us = per_step_us(module_call(net), x, args.steps)
        print(f"  network  {name:32s} {us:9.1f}   ({us / len(state):.1f} per stateful layer, {len(state)} layers)")


if __name__ == "__main__":
    main()
