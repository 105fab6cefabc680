"""Paper A (Moro et al. 2024) on Multi-Time-Scale XOR in the authors' regime, with their training rules.

The network is the hSNN of ``EIS-Hub/hSNN`` (``docs/fidelity/hsnn.md``): 40 → hidden layers of
:class:`~lightning_snn.neurons.hsnn_lif.HSNNLIF` (subtractive reset a step later, not detached, box
surrogate, batch norm on every layer, dropout 0.1 on spikes) → :class:`~lightning_snn.neurons.hsnn_readout.HSNNReadout`
(LI with (1-α)I, τ_out = 5 steps), cross-entropy on every step (``target="all_steps"``), Adam lr 0.01,
accuracy on the 60 active steps. Two experiments:

- ``claim1``: τ fixed, τ̄ = 30 steps, tanh schedule, normal jitter 0.1, Δτ ∈ {-40, 0, +40} steps
  (their Fig. 2b sweep, ``sweep.py:129-148``), 2 or 3 (``--layers``) hidden layers of 10 neurons;
- ``claim2``: α learned (gradient ×0.1, clip 0.98, penalties, output α frozen) from a homogeneous
  τ = 20 steps, 3 hidden layers of 32 (their notebook ``hsnn_optimization_finds_hierarchy.ipynb``, cell 6).

Each run prints one JSON line (seed, setting, test accuracy, mean τ per layer, wall time).

    python examples/paper_a_hierarchy.py claim1 --seeds 8 --epochs 8 --n-train 2048 --layers 2
    python examples/paper_a_hierarchy.py claim2 --seeds 8 --epochs 8 --n-train 2048
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import lightning as L
import torch

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TauSchedule
from lightning_snn.neurons.hsnn_lif import HSNNLIF
from lightning_snn.neurons.hsnn_readout import HSNNReadout


def hsnn_network(hidden: list[int], tau, learn_alpha: bool, alpha_spread_weight: float) -> FeedForwardSNN:
    """The hSNN of the authors' MTS-XOR runs (see the module docstring)."""
    neuron = {
        "class_path": HSNNLIF,
        "init_args": {"learn_alpha": learn_alpha, "spike_dropout": 0.1, "alpha_spread_weight": alpha_spread_weight},
    }
    net = FeedForwardSNN(40, hidden, 2, tau=tau, neuron=neuron, batch_norm=True)
    net.output = HSNNReadout(2, tau=5.0)  # LI with (1-α)I and batch norm; α_out = exp(-1/5), frozen
    return net


def train(seed: int, net: FeedForwardSNN, epochs: int, n_train: int, batch_size: int) -> dict:
    model = SpikingClassifier(net, readout="per_step", lr=0.01, tau_lr=0.01, scheduler="none")
    data = MTSXORDataModule(
        n_train=n_train, n_val=256, n_test=512, batch_size=batch_size, seed=seed, target="all_steps"
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    wall = time.perf_counter() - start
    acc = trainer.test(model, data, verbose=False)[0]["test_acc"]
    taus = [n.tau.mean().item() for n in net.neurons]
    return {"test_acc": acc, "tau_per_layer": taus, "train_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", choices=("claim1", "claim2"))
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed ... first-seed + seeds - 1")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--n-train", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--deltas", type=float, nargs="+", default=[-40.0, 0.0, 40.0])
    p.add_argument("--layers", type=int, default=3, help="hidden layers in claim1 (their Fig. 2b: 2 or 3)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if args.experiment == "claim1":
            settings = {
                f"delta={d:+g}": TauSchedule(
                    mean=30.0, delta=d, kind="tanh", jitter=0.1, jitter_kind="normal", seed=seed
                )
                for d in args.deltas
            }
            hidden, learn, spread = [10] * args.layers, False, 1e-2
        else:
            settings = {"homogeneous tau=20, alpha learned": 20.0}
            hidden, learn, spread = [32, 32, 32], True, 1e-3
        for name, tau in settings.items():
            L.seed_everything(seed, verbose=False)
            result = train(seed, hsnn_network(hidden, tau, learn, spread), args.epochs, args.n_train, args.batch_size)
            print(json.dumps({"experiment": args.experiment, "seed": seed, "setting": name, **result}), flush=True)


if __name__ == "__main__":
    main()
