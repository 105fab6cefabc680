"""DelaySNN vs the same network without delays on the delay-pattern task, over several seeds.

    OMP_NUM_THREADS=1 python examples/delays_vs_no_delays.py            # 5 seeds x 3 networks, about 4 min on 1 core
    python examples/delays_vs_no_delays.py --seeds 0 1 --epochs 10      # quicker

The task (``lightning_snn.data.delay_task``) codes the class only in the lags between channels. All
networks have one hidden LIF layer (τ = 2 steps) and a leaky-integrator readout. The baselines have plain
Linear synapses and a wider hidden layer, so at least as many parameters as the delay network; one
keeps τ fixed like the delay network, the other may learn slower membranes.
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

TASK = dict(n_channels=6, n_classes=5, onset_range=30, tail=10, n_train=2048, batch_size=128)
COMMON = dict(n_inputs=6, n_outputs=5, tau=2.0, readout_tau=5.0)
#: name -> (uses delays, learn τ). The first two differ only in the synapses; the third lets the
#: delay-free network learn slow membranes instead.
VARIANTS = {
    "delays": (True, False),
    "no delays": (False, False),
    "no delays, learned tau": (False, True),
}


def build(variant: str, args):
    delays, learn_tau = VARIANTS[variant]
    if delays:
        neuron = {"decay_input": False, "learn_tau": learn_tau}
        net = DelaySNN(
            hidden=[args.hidden_delay], max_delay=args.max_delay, delay_output=False, neuron=neuron, **COMMON
        )
        return net, [DelaySigmaSchedule(fraction=args.sigma_fraction)]
    neuron = {"decay_input": False, "learn_tau": learn_tau}
    return FeedForwardSNN(hidden=[args.hidden_plain], neuron=neuron, **COMMON), []


def run(variant: str, seed: int, args) -> tuple[float, int, float]:
    L.seed_everything(seed, workers=True)
    net, callbacks = build(variant, args)
    model = SpikingClassifier(net, readout="mean", lr=args.lr, delay_lr=args.delay_lr)
    data = DelayTaskDataModule(seed=seed, gap=args.gap, **TASK)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        deterministic=True,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    acc = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return acc, n_params, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--hidden-delay", type=int, default=32)
    parser.add_argument("--hidden-plain", type=int, default=64)
    parser.add_argument("--gap", type=int, default=6, help="steps between the channels' offsets")
    parser.add_argument("--max-delay", type=int, default=None, help="default: the pattern length + 1")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--delay-lr", type=float, default=1.0)
    parser.add_argument("--sigma-fraction", type=float, default=0.5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.max_delay is None:
        args.max_delay = (TASK["n_channels"] - 1) * args.gap + 1
    results = {}
    for kind in args.variants:
        runs = [run(kind, s, args) for s in args.seeds]
        results[kind] = runs
        print(f"{kind}: " + ", ".join(f"{a:.3f}" for a, _, _ in runs), flush=True)
    print(f"\n| network | params | test acc (mean ± sd over {len(args.seeds)} seeds) | per seed | s/run |")
    print("|---|---|---|---|---|")
    for kind, runs in results.items():
        accs = [a for a, _, _ in runs]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        delays, learn_tau = VARIANTS[kind]
        tau = "τ learned from 2" if learn_tau else "τ = 2 fixed"
        if delays:
            name = f"DelaySNN 6-{args.hidden_delay}-5, max delay {args.max_delay}, {tau}"
        else:
            name = f"FeedForwardSNN 6-{args.hidden_plain}-5 (no delays), {tau}"
        print(
            f"| {name} | {runs[0][1]} | {statistics.mean(accs):.3f} ± {sd:.3f} | "
            f"{' '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(t for _, _, t in runs):.0f} |"
        )


if __name__ == "__main__":
    main()
