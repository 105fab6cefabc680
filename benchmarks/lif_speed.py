"""LIF network speed and memory: our fused native backend against snnTorch, SpikingJelly and the floor.

Network 700-256-256-20 (LIF after each hidden layer, leaky-integrator readout), batch 64, forward plus
backward, median over repeats after warm-up, all measured in this one process:

- ``dense floor``   the same three Linear layers over all T·B rows, no neuron at all;
- ``snntorch``      ``snntorch.Leaky`` stepped in the usual Python loop (Linear per step, as in its tutorials);
- ``spikingjelly``  ``ParametricLIFNode`` multi-step (Linear over T·B rows, SpikingJelly's own multi-step path);
- ``plain loop``    our LIF equations as a plain-autograd loop (``lif_reference``), Linear hoisted;
- ``native``        ``FeedForwardSNN`` with the fused native backend (the default; on CPU its loops are
                    the compiled Numba kernels when numba is installed);
- ``native, reset grad``  the native backend with ``detach_reset=False`` (paper E's extra gradient path);
- ``native torch``  the same with the PyTorch loops (``LIGHTNING_SNN_NUMBA=0``; what CUDA runs);
- ``native bf16``   the native backend under bf16 autocast (membrane integrated in fp32).

"saved" is the memory kept for backward (bytes of distinct tensors saved by autograd, counted with
``torch.autograd.graph.saved_tensors_hooks``). On CUDA the peak allocated memory is reported too.

    python benchmarks/lif_speed.py                # T in 25, 100, 400 on CPU (and CUDA when present)
    python benchmarks/lif_speed.py --T 100 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch
from torch import nn

from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference
from lightning_snn.models.feedforward import FeedForwardSNN

SIZES = (700, 256, 256, 20)
NEURON = {"decay_input": True, "detach_reset": True, "reset": "hard"}


def make_linears(device) -> nn.ModuleList:
    torch.manual_seed(0)
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])).to(device)


def dense_floor(device):
    lins = make_linears(device)

    def run(x):
        for lin in lins:
            x = lin(x)
        return x

    return run


def native(device, **neuron):
    return FeedForwardSNN(SIZES[0], list(SIZES[1:-1]), SIZES[-1], tau=2.0, neuron={**NEURON, **neuron}).to(device)


def native_full_reset_gradient(device):
    """Paper E: keep the gradient through the reset (``detach_reset=False``)."""
    return native(device, detach_reset=False)


def plain_loop(device):
    lins = make_linears(device)
    beta = nn.Parameter(torch.full((3,), 0.5, device=device))
    cfg = LIFConfig(**NEURON)
    thr = torch.tensor(1.0, device=device)

    def run(x):
        for i, lin in enumerate(lins[:-1]):
            x = lif_reference(lin(x), beta[i], thr, cfg)
        return leaky_integrate(lins[-1](x), beta[2], decay_input=False)

    return run


def snntorch_loop(device):
    import snntorch as snn

    lins = make_linears(device)
    lifs = nn.ModuleList(
        snn.Leaky(beta=torch.tensor(0.5), learn_beta=True, reset_mechanism="zero") for _ in range(2)
    ).to(device)
    out = snn.Leaky(beta=torch.tensor(0.5), learn_beta=True, reset_mechanism="none").to(device)

    def run(x):
        mems = [torch.zeros(x.shape[1], n, device=device) for n in SIZES[1:]]
        outs = []
        for x_t in x.unbind(0):
            h = x_t
            for i in range(2):
                h, mems[i] = lifs[i](lins[i](h), mems[i])
            _, mems[2] = out(lins[2](h), mems[2])
            outs.append(mems[2])
        return torch.stack(outs)

    return run


def spikingjelly_multistep(device):
    from spikingjelly.activation_based import functional, neuron

    lins = make_linears(device)
    nodes = nn.ModuleList(
        neuron.ParametricLIFNode(init_tau=2.0, detach_reset=True, step_mode="m") for _ in range(2)
    ).to(device)

    def run(x):
        functional.reset_net(nodes)
        for lin, node in zip(lins[:-1], nodes):
            x = node(lin(x))
        return leaky_integrate(lins[-1](x), torch.tensor(0.5, device=device), decay_input=False)

    return run


def native_torch_loops(device):
    net = native(device)

    def run(x):
        previous = os.environ.get("LIGHTNING_SNN_NUMBA")
        os.environ["LIGHTNING_SNN_NUMBA"] = "0"
        try:
            return net(x)  # the backward reads the path chosen in forward
        finally:
            os.environ.pop("LIGHTNING_SNN_NUMBA") if previous is None else os.environ.update(
                LIGHTNING_SNN_NUMBA=previous
            )

    return run


def native_bf16(device):
    net = native(device)

    def run(x):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            return net(x)

    return run


CANDIDATES = {
    "dense floor": dense_floor,
    "snntorch": snntorch_loop,
    "spikingjelly": spikingjelly_multistep,
    "plain loop": plain_loop,
    "native": native,
    "native, reset grad": native_full_reset_gradient,
    "native torch": native_torch_loops,
    "native bf16": native_bf16,
}


def saved_bytes(fn, x) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    out.float().sum().backward()
    return sum(seen.values())


def time_fwd_bwd(fn, x, repeats: int, warmup: int, device) -> float:
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(x).float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench(device: torch.device, steps: list[int], batch: int, repeats: int, warmup: int) -> None:
    network = "-".join(map(str, SIZES))
    print(f"\n## {device.type.upper()}: {torch.get_num_threads()} threads, batch {batch}, network {network}\n")
    print(
        "| T | path | ms (fwd+bwd) | × floor | saved for backward (MB) |"
        + (" peak alloc (MB) |" if device.type == "cuda" else "")
    )
    print("|---|---|---|---|---|" + ("---|" if device.type == "cuda" else ""))
    for T in steps:
        torch.manual_seed(0)
        x = (torch.rand(T, batch, SIZES[0], device=device) < 0.1).float()
        floor = None
        for name, make in CANDIDATES.items():
            try:
                fn = make(device)
            except ImportError as err:
                print(f"| {T} | {name} | skipped ({err}) | | |")
                continue
            ms = time_fwd_bwd(fn, x, repeats, warmup, device)
            floor = floor or ms
            mem = saved_bytes(fn, x) / 2**20
            peak = ""
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
                fn(x).float().sum().backward()
                peak = f" {torch.cuda.max_memory_allocated() / 2**20:.0f} |"
            print(f"| {T} | {name} | {ms:.1f} | {ms / floor:.2f} | {mem:.1f} |{peak}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[25, 100, 400])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--cpu-only", action="store_true")
    args = p.parse_args()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    for device in devices:
        with contextlib.suppress(KeyboardInterrupt):
            bench(device, args.T, args.batch, args.repeats, args.warmup)


if __name__ == "__main__":
    main()
