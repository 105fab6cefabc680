"""DelaySNN vs the same network without delays on the delay-pattern task, over several seeds.

    OMP_NUM_THREADS=1 python examples/delays_vs_no_delays.py            # 4 seeds, about 5 min on 1 core
    python examples/delays_vs_no_delays.py --seeds 0 1 --epochs 10      # quicker

The task (``lightning_snn.data.delay_task``) codes the class only in the lags between channels. Both
networks have one hidden LIF layer and a leaky-integrator readout; the baseline has plain Linear
synapses and a wider hidden layer, so it has at least as many parameters as the delay network.
Prints a Markdown table of test accuracy (integer delays at test time) and parameter counts.
"""
from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule
from lightning_snn.data.delay_task import DelayTaskDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.models.feedforward import FeedForwardSNN

TASK = dict(n_channels=6, n_classes=5, gap=2, onset_range=30, tail=10, n_train=2048, batch_size=128)
COMMON = dict(n_inputs=6, n_outputs=5, tau=2.0, readout_tau=5.0)


def build(kind: str, hidden_delay: int, hidden_plain: int, max_delay: int):
    common = COMMON
    if kind == "delays":
        net = DelaySNN(hidden=[hidden_delay], max_delay=max_delay, delay_output=False, **common)
        return net, [DelaySigmaSchedule(fraction=0.5)]
    return FeedForwardSNN(hidden=[hidden_plain], **common), []


def run(kind: str, seed: int, epochs: int, args) -> tuple[float, int, float]:
    L.seed_everything(seed, workers=True)
    net, callbacks = build(kind, args.hidden_delay, args.hidden_plain, args.max_delay)
    model = SpikingClassifier(net, readout="mean", lr=args.lr, delay_lr=args.delay_lr)
    data = DelayTaskDataModule(seed=seed, **TASK)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                        deterministic=True)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    acc = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return acc, n_params, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--hidden-delay", type=int, default=32)
    parser.add_argument("--hidden-plain", type=int, default=64)
    parser.add_argument("--max-delay", type=int, default=11)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--delay-lr", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for kind in ("delays", "no delays"):
        runs = [run(kind, s, args.epochs, args) for s in args.seeds]
        results[kind] = runs
        print(f"{kind}: " + ", ".join(f"{a:.3f}" for a, _, _ in runs), flush=True)
    print(f"\n| network | params | test acc (mean ± sd over {len(args.seeds)} seeds) | per seed | s/run |")
    print("|---|---|---|---|---|")
    for kind, runs in results.items():
        accs = [a for a, _, _ in runs]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        width = args.hidden_delay if kind == "delays" else args.hidden_plain
        name = f"DelaySNN 6-{width}-5, D={args.max_delay}" if kind == "delays" else f"FeedForwardSNN 6-{width}-5"
        print(f"| {name} | {runs[0][1]} | {statistics.mean(accs):.3f} ± {sd:.3f} | "
              f"{' '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(t for _, _, t in runs):.0f} |")


if __name__ == "__main__":
    main()
