"""P-SpikeSSM (paper C) on sequential and permuted sequential 8×8 digits, several seeds.

    OMP_NUM_THREADS=1 python examples/pspikessm_digits.py --preset paper --seeds 0 1 2 3 4 5 6 7 --epochs 10

For each task and seed: train with ``Trainer.fit``, then report the test accuracy of the last epoch's
model with the three inference modes of the samplers (``threshold``: spike iff p > 0.5; ``expectation``:
emit p; ``sample``: Bernoulli draws, as in training and as the authors evaluate) and the mean spike rate
of every sampler over the test set in each mode. ``--preset paper`` is the authors' block at digits size
(``configs/pspikessm_sdigits.yaml``: S4 DPLR two-sided kernel, pre-norm BatchNorm, no residual, final
BatchNorm, GELU + tied dropout 0.1 after the SSM); ``--preset previous`` is the v0.1 default (S4D-Lin,
post-norm residual LayerNorm block). Both train with AdamW lr 0.01 (SSM parameters 0.001), weight decay
0.01, cosine schedule, batch 64, gradient clipping 1.0. ``--out`` appends one JSON line per run.
Ends with a Markdown table (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics

import lightning as L
import torch

from lightning_snn.call_statistics import CallStatistics
from lightning_snn.data.sequential_digits import SequentialDigitsDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.pspikessm import PSpikeSSM
from lightning_snn.neurons.spike_sampler import SpikeSampler

MODES = ("threshold", "expectation", "sample")

#: The authors' (ps)MNIST block (``configs/experiment/lra/pSpikeSSM-mnist.yaml``) at sequence length 64.
PAPER_BLOCK = dict(
    kernel="dplr",
    init="legs",
    l_max=64,
    two_sided=True,
    prenorm=True,
    residual=False,
    norm="batch",
    ssm_activation=True,
    tie_dropout=True,
    dropout=0.1,
    sampler={"eval_mode": "sample"},
)


def evaluate(model: SpikingClassifier, datamodule: SequentialDigitsDataModule, mode: str):
    """Test accuracy and mean spike rate per sampler, with every sampler in ``mode``."""
    samplers = {n: m for n, m in model.network.named_modules() if isinstance(m, SpikeSampler)}
    for sampler in samplers.values():
        sampler.eval_mode = mode
    model.eval()
    correct = total = 0
    with torch.no_grad(), CallStatistics(model.network) as recorder:  # rates over all test batches
        for x, y in datamodule.test_dataloader():
            correct += (model(x).argmax(-1) == y).sum().item()
            total += len(y)
    rates = recorder.means()["spike_rate"]
    return correct / total, {name: rates[name].mean().item() for name in samplers}


def run(task: str, seed: int, args) -> dict:
    torch.set_num_threads(1)
    L.seed_everything(seed, verbose=False)
    data = SequentialDigitsDataModule(batch_size=64, seed=0, permute=task == "psdigits", permutation_seed=0)
    if args.preset == "paper":
        net = PSpikeSSM(1, 10, d_model=args.d_model, d_state=args.d_state, n_layers=args.layers, **PAPER_BLOCK)
    else:
        net = PSpikeSSM(1, 10, d_model=args.d_model, d_state=args.d_state, n_layers=args.layers)
    model = SpikingClassifier(net, lr=0.01, tau_lr=0.001, optimizer="adamw", weight_decay=0.01)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        gradient_clip_val=1.0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    result = {"task": task, "seed": seed, "preset": args.preset, "epochs": args.epochs, "d_model": args.d_model}
    for mode in MODES:
        acc, rates = evaluate(model, data, mode)
        result[f"acc_{mode}"] = acc
        result[f"rates_{mode}"] = rates
        if mode == "threshold":
            result["rates"] = rates
    print(result, flush=True)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(json.dumps(result) + "\n")
    return result


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * std:.1f}"


def summary(results: list[dict]) -> str:
    layers = list(results[0]["rates"])
    head = "| task | seeds | " + " | ".join(f"test acc, {m} (%)" for m in MODES) + " | "
    head += " | ".join(f"rate {name}" for name in layers) + " |"
    lines = [head, "|" + "---|" * (2 + len(MODES) + len(layers))]
    for task in dict.fromkeys(r["task"] for r in results):
        rows = [r for r in results if r["task"] == task]
        accs = [mean_std([r[f"acc_{m}"] for r in rows]) for m in MODES]
        rates = [f"{statistics.mean(r['rates'][n] for r in rows):.3f}" for n in layers]
        lines.append(f"| {task} | {len(rows)} | " + " | ".join(accs + rates) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["sdigits", "psdigits"], choices=["sdigits", "psdigits"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--preset", choices=["paper", "previous"], default="paper")
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args()
    results = [run(task, seed, args) for task in args.tasks for seed in args.seeds]
    print(
        f"\n{args.preset}: PSpikeSSM(d_model={args.d_model}, d_state={args.d_state}, n_layers={args.layers}), "
        f"{args.epochs} epochs, last-epoch model\n"
    )
    print(summary(results))


if __name__ == "__main__":
    main()
