"""Paper E (Yang 2020, arXiv 2011.09964): does keeping the reset gradient make training robust to the lr?

Trains the same network on the delay-pattern task (:class:`~lightning_snn.data.delay_task.DelayTaskDataModule`,
6 channels, 5 classes coded by the lags between channels, gap 3 steps, onset in [0, 20], T = 45 steps) with
``detach_reset=True`` (the reset path spike[t] → reset → V[t+1] cut from the gradient) and
``detach_reset=False`` (kept), over a learning-rate sweep of ×0.1 … ×30 of the default 0.01, for several
seeds. Network: 6 → 32 :class:`~lightning_snn.neurons.lif.LearnableLIF` (hard reset to 0, ATan surrogate,
native backend, τ learned from 10 steps, input not scaled: ``decay_input=False``) → leaky readout (τ = 5),
mean over time, cross-entropy, Adam with a constant lr, 1024 training samples in batches of 64.
Each run prints one JSON line: test accuracy (512 samples) and the training wall time (the cost of each choice).

    python examples/paper_e_reset_gradient.py --seeds 8 --epochs 8
    python examples/paper_e_reset_gradient.py --cost   # forward + backward time of one layer, each choice
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import lightning as L
import torch

from lightning_snn import FeedForwardSNN, SpikingClassifier
from lightning_snn.data.delay_task import DelayTaskDataModule

LR_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def run(seed: int, lr: float, detach_reset: bool, epochs: int, n_train: int) -> dict:
    L.seed_everything(seed, verbose=False)
    neuron = {"decay_input": False, "detach_reset": detach_reset}
    net = FeedForwardSNN(6, [32], 5, tau=10.0, readout_tau=5.0, neuron=neuron)
    model = SpikingClassifier(net, readout="mean", lr=lr, scheduler="none")
    data = DelayTaskDataModule(gap=3, onset_range=20, n_train=n_train, n_val=128, n_test=512, batch_size=64, seed=seed)
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
    return {"test_acc": acc, "train_s": wall, "steps": trainer.global_step}


def layer_cost(repeats: int = 15) -> None:
    """Median CPU time (one thread; robust to a shared machine) of forward + backward of one layer on
    ``(T, B, N) = (100, 64, 256)``, per neuron and choice."""
    from lightning_snn.neurons import HSNNLIF, LearnableLIF

    x = torch.rand(100, 64, 256) * 0.6
    for name, make in (("LearnableLIF (native, hard reset)", LearnableLIF), ("HSNNLIF (loop)", HSNNLIF)):
        for detach in (True, False):
            layer = make(256, tau=10.0, detach_reset=detach)
            times = []
            for _ in range(repeats):
                xi = x.clone().requires_grad_(True)
                start = time.process_time()
                layer(xi).sum().backward()
                times.append(time.process_time() - start)
            median = sorted(times)[len(times) // 2]
            print(json.dumps({"layer": name, "detach_reset": detach, "median_cpu_ms": 1000 * median}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed ... first-seed + seeds - 1")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--base-lr", type=float, default=0.01)
    p.add_argument("--cost", action="store_true", help="only time one layer's forward + backward")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    if args.cost:
        layer_cost()
        return
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for factor in LR_FACTORS:
            for detach in (True, False):
                result = run(seed, args.base_lr * factor, detach, args.epochs, args.n_train)
                row = {"seed": seed, "lr_factor": factor, "detach_reset": detach, **result}
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
