"""Claim B (PLIF, Fang et al. 2021): learned τ is insensitive to τ₀ and learns faster; fixed-τ LIF degrades
with a large τ₀.

A τ₀ sweep {2, 4, 8, 16} of fixed-τ LIF against PLIF (learned τ, one per layer) on scikit-learn's 8×8
digits as static images with direct encoding: a small :class:`~lightning_snn.models.static_image_snn.StaticImageSNN`
(the MNIST network of the paper, ``stages=(1, 1)``, with 8 channels instead of 128, a 32-wide hidden FC
layer instead of 2048 and no dropout), T = 8 steps, 10 votes per class, MSE between the voted output rate and the
one-hot target, Adam 1e-3 with ``CosineAnnealingLR(T_max=64)`` stepped per epoch, batch 16 with
``drop_last`` (all as ``codes/train.py``). Fixed split: 1437 training and 360 test images (seeded,
seed 0); each run's seed sets the initial weights and the batch order. Test accuracy after every epoch.

Writes one JSON line per run to ``--out`` (appending, so a stopped sweep keeps its runs) and a summary
table at the end::

    nice -n 10 python examples/paper_b_tau0_sweep.py --seeds 8 --epochs 12 --out logs/paper_b_tau0.jsonl

The measured results (64 runs, 2026-11-30) and where they disagree with the paper: ``docs/results/paper-b.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_snn.data.base import seeded_split
from lightning_snn.models.static_image_snn import StaticImageSNN


def digits_split(n_test: int = 360) -> tuple[torch.Tensor, ...]:
    """Standardised 8×8 digits ``(N, 1, 8, 8)`` and labels, cut into a fixed train/test split (seed 0)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.long)
    test, train = seeded_split(len(y), [n_test, None], seed=0)
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


def make_network(learn_tau: bool, tau0: float) -> StaticImageSNN:
    return StaticImageSNN(
        input_shape=(1, 8, 8),
        n_outputs=10,
        n_steps=8,
        channels=8,
        stages=(1, 1),
        fc_hidden=32,
        votes=10,
        dropout=(0.0, 0.0),
        tau=tau0,
        neuron={"learn_tau": learn_tau},
    )


@torch.no_grad()
def accuracy(net: StaticImageSNN, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    rate = net(x[None]).mean(0)
    net.train()
    return (rate.argmax(1) == y).float().mean().item()


def run(learn_tau: bool, tau0: float, seed: int, epochs: int, data: tuple[torch.Tensor, ...]) -> dict:
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    net = make_network(learn_tau, tau0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=64)
    order = torch.Generator().manual_seed(seed)
    curve, start = [], time.time()
    for _ in range(epochs):
        perm = torch.randperm(len(y_train), generator=order)
        for i in range(0, len(perm) - 15, 16):  # batch 16, drop_last
            idx = perm[i : i + 16]
            rate = net(x_train[idx][None]).mean(0)
            loss = F.mse_loss(rate, F.one_hot(y_train[idx], 10).float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        curve.append(accuracy(net, x_test, y_test))
    taus = [m.tau.value.detach().flatten()[0].item() for m in net.modules() if hasattr(m, "tau") and hasattr(m, "cfg")]
    return {
        "neuron": "PLIF" if learn_tau else "LIF",
        "tau0": tau0,
        "seed": seed,
        "epochs": epochs,
        "test_acc": curve,
        "final_acc": curve[-1],
        "tau_final": taus,
        "seconds": round(time.time() - start, 1),
    }


def epochs_to(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, a in enumerate(curve) if a >= target), None)


def summarise(rows: list[dict], target: float) -> str:
    lines = [
        f"| neuron | τ₀ | final test acc % (mean ± sd) | epochs to {target:.0%} (mean ± sd; runs that got there) "
        "| final τ per layer (mean over seeds) | per-seed final acc % |",
        "|---|---|---|---|---|---|",
    ]
    for neuron in ("LIF", "PLIF"):
        for tau0 in sorted({r["tau0"] for r in rows}):
            group = sorted((r for r in rows if r["neuron"] == neuron and r["tau0"] == tau0), key=lambda r: r["seed"])
            if not group:
                continue
            acc = [100 * r["final_acc"] for r in group]
            hit = [e for e in (epochs_to(r["test_acc"], target) for r in group) if e is not None]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            hit_sd = statistics.stdev(hit) if len(hit) > 1 else 0.0
            reach = f"{statistics.mean(hit):.1f} ± {hit_sd:.1f}" if hit else "never"
            reach += f" ({len(hit)}/{len(group)})"
            taus = np.mean([r["tau_final"] for r in group], axis=0)
            lines.append(
                f"| {neuron} | {tau0:g} | {statistics.mean(acc):.1f} ± {sd:.1f} | {reach} | "
                f"{', '.join(f'{t:.2f}' for t in taus)} | {', '.join(f'{a:.1f}' for a in acc)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. seeds-1 (to split a sweep)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--taus", type=float, nargs="+", default=[2.0, 4.0, 8.0, 16.0])
    parser.add_argument("--target", type=float, default=0.8, help="accuracy for 'epochs to target'")
    parser.add_argument("--out", type=Path, default=Path("logs/paper_b_tau0.jsonl"))
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="more JSON-lines files of finished runs")
    parser.add_argument("--summary-only", action="store_true", help="only print the table of --out (and --also)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = [
        json.loads(line) for path in [args.out, *args.also] if path.exists() for line in path.read_text().splitlines()
    ]
    if not args.summary_only:
        data = digits_split()
        for seed in range(
            args.first_seed, args.seeds
        ):  # seed-major, so a stopped sweep has every setting for the first seeds
            for tau0 in args.taus:
                for learn_tau in (False, True):
                    key = ("PLIF" if learn_tau else "LIF", tau0, seed, args.epochs)
                    if any((r["neuron"], r["tau0"], r["seed"], r["epochs"]) == key for r in done):
                        continue
                    row = run(learn_tau, tau0, seed, args.epochs, data)
                    done.append(row)
                    with args.out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{key}: final {row['final_acc']:.3f} in {row['seconds']} s", flush=True)
    print(summarise([r for r in done if r["epochs"] == args.epochs], args.target))


if __name__ == "__main__":
    main()
