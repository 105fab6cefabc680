"""Paper D (Mészáros, Knight, Nowotny 2024): does dynamic rewiring hold accuracy better than a static mask?

Raw-SHD-style network (40 inputs → 1 hidden LIF layer → leaky-integrator readout) on Multi-Time-Scale XOR
with per-step targets. The input→hidden synapses are made sparse at each sparsity in the sweep, three ways,
with the same number of training epochs E:

- ``static``: dense training for E/2 epochs, magnitude pruning to the sparsity, then E/2 epochs with the
  mask frozen (``Rewiring(regrow="none", init_mask="magnitude")``);
- ``rigl``: sparse from the start (random mask, fixed signs), DEEP R removal + RigL regrowth, E epochs;
- ``random``: the same with random regrowth.

Sparsity 0 is the dense network (two-phase for ``static``, one run of E epochs for the other two).
Prints per-seed test accuracies and a mean ± std table (markdown).

    OMP_NUM_THREADS=1 python examples/rewiring_sweep.py --seeds 3 --epochs 30
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L

from lightning_snn.callbacks.rewiring import Rewiring
from lightning_snn.data.mtsxor import MTSXORDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.feedforward import FeedForwardSNN

LAYER = "network.synapses.0.synapse"  # input → hidden; the readout stays dense
METHODS = ("static", "rigl", "random")


def make_model(args, seed: int) -> SpikingClassifier:
    L.seed_everything(seed, verbose=False)
    net = FeedForwardSNN(40, [args.hidden], 2, tau=args.tau, readout_tau=5.0, neuron={"decay_input": False})
    return SpikingClassifier(net, readout="per_step", lr=args.lr)


def train(model, data, epochs: int, callbacks=()) -> float:
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=list(callbacks),
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, data)
    return trainer.test(model, data, verbose=False)[0]["test_acc"]


def run_seed(args, seed: int) -> tuple[dict, dict]:
    """Test accuracy and the number of synapses rewired, per (method, sparsity)."""
    data = MTSXORDataModule(n_train=args.n_train, n_val=64, n_test=args.n_test, batch_size=128, seed=seed)
    half = args.epochs // 2
    acc, rewired = {}, {}
    if "static" in args.methods:
        dense = make_model(args, seed)
        train(dense, data, half)
        dense_state = dense.state_dict()
    for s in args.sparsities if "static" in args.methods else []:
        model = make_model(args, seed)
        model.load_state_dict(dense_state)
        pruning = Rewiring(s, sign="free", regrow="none", layers=[LAYER], init_mask="magnitude", seed=seed)
        acc["static", s] = train(model, data, args.epochs - half, [pruning])
    dense_full = train(make_model(args, seed), data, args.epochs) if 0 in args.sparsities else None
    for method in [m for m in ("rigl", "random") if m in args.methods]:
        for s in args.sparsities:
            if s == 0:
                acc[method, s] = dense_full
                continue
            rewiring = Rewiring(s, sign="fixed", regrow=method, layers=[LAYER], seed=seed, rigl_score=args.rigl_score)
            acc[method, s] = train(make_model(args, seed), data, args.epochs, [rewiring])
            rewired[method, s] = rewiring.state_dict()["layers"][LAYER]["rewired_total"]
    return acc, rewired


def summary(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.75, 0.9, 0.95])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--tau", type=float, default=50.0)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--n-test", type=int, default=512)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--rigl-score", choices=("magnitude", "aligned"), default="magnitude")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    churn: dict[tuple[str, float], list[int]] = {}
    results = {(m, s): [] for m in args.methods for s in args.sparsities}
    start = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        acc, rewired = run_seed(args, seed)
        for key, value in acc.items():
            results[key].append(value)
        for key, value in rewired.items():
            churn.setdefault(key, []).append(value)
        print(
            f"seed {seed} ({time.time() - start:.0f} s): "
            + "  ".join(f"{m}@{s}={acc[m, s]:.3f}" for s in args.sparsities for m in args.methods),
            flush=True,
        )
    print(f"\n{args.seeds} seeds, {args.epochs} epochs, 40 → {args.hidden} LIF → 2, {time.time() - start:.0f} s\n")
    names = {"static": "dense → static mask", "rigl": f"DEEP R + RigL ({args.rigl_score})", "random": "DEEP R + random"}
    print("| sparsity | active synapses | " + " | ".join(names[m] for m in args.methods) + " |")
    print("|---|---|" + "---|" * len(args.methods))
    for s in args.sparsities:
        active = round((1 - s) * 40 * args.hidden)
        print(f"| {s} | {active} | " + " | ".join(summary(results[m, s]) for m in args.methods) + " |")
    print(
        "\nsynapses rewired per run (mean over seeds): "
        + ", ".join(f"{m}@{s}: {statistics.mean(v):.0f}" for (m, s), v in churn.items() if v)
    )


if __name__ == "__main__":
    main()
