"""Spoken digits (espeak-ng, English + German, 20 classes → cochlea spikes): τ hierarchy, delays, baseline.

    nice -n 10 python examples/spoken_digits_benchmark.py                 # the table in docs/results/spoken-digits.md
    python examples/spoken_digits_benchmark.py --seeds 0 1 --epochs 3     # quicker

One data set (SpokenDigitsDataModule, data seed 0, speaker-independent test split) and, per seed, five models:

- ``lif-hier``: FeedForwardSNN C-H-H-20, τ initialised as a hierarchy (linear, layer τ = mean ∓ delta/2), τ learned;
- ``lif-homog``: the same with every layer's τ = mean (homogeneous), τ learned;
- ``delays``: DelaySNN C-Hd-20 (DCLS delays up to ``max_delay`` steps, τ fixed);
- ``no-delays``: FeedForwardSNN C-Hp-20 with the same fixed τ and Hp chosen for the parameter count of ``delays``;
- ``logreg``: scikit-learn logistic regression on log(1 + spike counts) per channel in 5 time windows of 200 ms
  (deterministic: every seed gives the same model).

Prints a Markdown table: test accuracy mean ± sd and per seed, parameters, seconds per run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import numpy as np
import torch

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule
from lightning_snn.data.audio import SpokenDigitsDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.models.feedforward import FeedForwardSNN

VARIANTS = ("lif-hier", "lif-homog", "delays", "no-delays", "logreg")


def data_module(args, seed: int) -> SpokenDigitsDataModule:
    return SpokenDigitsDataModule(
        data_dir=args.data_dir,
        n_voices=args.voices,
        test_voices=args.test_voices,
        repeats=args.repeats,
        n_units=args.units,
        n_channels=args.channels,
        n_steps=args.steps,
        duration=1.0,
        batch_size=args.batch_size,
        val_fraction=0.0,  # validation = test; we report the test accuracy after the last epoch (no model selection)
        seed=seed,
    )


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def build(variant: str, args):
    common = dict(n_inputs=args.channels, n_outputs=20, readout_tau=args.tau_mean)
    if variant in ("lif-hier", "lif-homog"):
        kind = "linear" if variant == "lif-hier" else "constant"
        tau = {"kind": kind, "mean": args.tau_mean, "delta": args.tau_delta}
        return FeedForwardSNN(hidden=[args.hidden, args.hidden], tau=tau, readout="membrane", **common), []
    neuron = {"learn_tau": False}
    delay_net = DelaySNN(
        hidden=[args.hidden_delay], max_delay=args.max_delay, tau=args.tau_mean, neuron=neuron, **common
    )
    if variant == "delays":
        return delay_net, [DelaySigmaSchedule(fraction=0.5)]
    target = n_params(delay_net)

    def plain(width: int) -> FeedForwardSNN:
        return FeedForwardSNN(hidden=[width], tau=args.tau_mean, neuron=neuron, readout="membrane", **common)

    width = min(range(1, 4 * args.hidden_delay), key=lambda h: abs(n_params(plain(h)) - target))
    return plain(width), []


def run(variant: str, seed: int, args) -> tuple[float, int, float]:
    start = time.perf_counter()
    data = data_module(args, 0)
    if variant == "logreg":
        acc, params = logistic_regression(data, seed)
        return acc, params, time.perf_counter() - start
    L.seed_everything(seed, workers=True)
    net, callbacks = build(variant, args)
    model = SpikingClassifier(net, readout="mean", lr=args.lr, tau_lr=args.lr, delay_lr=args.delay_lr)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
        deterministic=True,
    )
    trainer.fit(model, datamodule=data)
    acc = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
    return acc, n_params(net), time.perf_counter() - start


def spike_counts(dataset, windows: int = 5) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in range(len(dataset)):
        x, y = dataset[i][:2]
        x = torch.as_tensor(x)
        xs.append(torch.stack([c.sum(0) for c in x.chunk(windows, dim=0)]).flatten().numpy())
        ys.append(int(y))
    return np.log1p(np.stack(xs)), np.array(ys)


def logistic_regression(data: SpokenDigitsDataModule, seed: int) -> tuple[float, int]:
    """Test accuracy and parameter count of L2-regularised logistic regression (lbfgs: the seed does not matter)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    data.prepare_data()
    data.setup("fit")
    x_train, y_train = spike_counts(data.frames("train"))
    x_test, y_test = spike_counts(data.frames("test"))
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed).fit(scaler.transform(x_train), y_train)
    return float(clf.score(scaler.transform(x_test), y_test)), clf.coef_.size + clf.intercept_.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--voices", type=int, default=16)
    parser.add_argument("--test-voices", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--units", type=int, default=64, help="cochlea channels")
    parser.add_argument("--channels", type=int, default=32, help="input channels after sum-pooling")
    parser.add_argument("--steps", type=int, default=50, help="time steps over 1 s")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--hidden-delay", type=int, default=48)
    parser.add_argument("--max-delay", type=int, default=10)
    parser.add_argument("--tau-mean", type=float, default=5.0)
    parser.add_argument("--tau-delta", type=float, default=3.0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--delay-lr", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = data_module(args, 0)
    data.prepare_data()
    print(f"data ready in {time.perf_counter() - start:.0f} s: {data.spikes_folder()}", flush=True)
    results = {}
    for variant in args.variants:
        runs = []
        for seed in args.seeds:
            runs.append(run(variant, seed, args))
            print(f"{variant} seed {seed}: acc {runs[-1][0]:.4f} params {runs[-1][1]} {runs[-1][2]:.0f} s", flush=True)
        results[variant] = runs
    print(f"\n| model | params | test acc (mean ± sd, {len(args.seeds)} seeds) | per seed | s/run |")
    print("|---|---|---|---|---|")
    for variant, runs in results.items():
        accs = [a for a, _, _ in runs]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        per_seed = " ".join(f"{a:.3f}" for a in accs)
        print(
            f"| {variant} | {runs[0][1]} | {statistics.mean(accs):.3f} ± {sd:.3f} | {per_seed} | "
            f"{statistics.mean(t for _, _, t in runs):.0f} |"
        )


if __name__ == "__main__":
    main()
