"""Per-synapse delays vs DEEP R + RigL rewiring vs both, and our old defaults vs the delay papers' ingredients,
on the delay-pattern task (``lightning_snn.data.delay_task``), over several seeds.

    OMP_NUM_THREADS=1 nice -n 10 python examples/delays_vs_rewiring.py --out /tmp/dvr.jsonl    # everything
    python examples/delays_vs_rewiring.py --experiment sparse --seeds 0 1 --sparsities 0.9        # a part

Experiment ``sparse`` (paper D's claim: rewiring beats per-synapse delays when the network is sparse). Every
network is DelaySNN 6 → H → 5 in paper D's regime: Mészáros's lagged LIF (τ = 10.05 steps, β ≈ 0.90) and lagged
leaky readout, kaiming init, CE(Σ_t softmax(V_t)), Adam lr 5e-3 (their OneCycle peak) and delay lr 0.5 (100×).
At sparsity s every layer keeps exactly round((1 − s)·N) synapses, so all methods have equally many active ones:

- ``delays``: learned per-synapse delays on a fixed random sparse mask (``Rewiring(regrow="none")``);
- ``rewiring``: no delays (``max_delay=1``), DEEP R removal + RigL regrowth with the authors' recipe
  (L1 0.01 through Adam, signed score, regrown magnitude 1e-12, one sign per presynaptic neuron with 50 %
  excitatory, moments never reset, dense gradients into Adam);
- ``rewiring, no L1``: the same with ``l1_loss=0`` (removal only when the task gradient drives θ to 0);
- ``both``: learned delays and the authors' rewiring (the default of ``mbalazs98/spatiotemporal``).

Experiment ``ingredients`` (what the differences between our old defaults and the papers' code cost): the
dense delay network with the old defaults, then one paper ingredient at a time, then all of DCLS's and all of
Mészáros's together.

Each run prints one JSON line (also appended to ``--out``); ``--summary FILE`` turns such a file into the
Markdown tables of ``docs/results/delays-vs-rewiring.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import lightning as L
import torch

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule
from lightning_snn.callbacks.rewiring import Rewiring
from lightning_snn.data.delay_task import DelayTaskDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.delay_snn import DelaySNN

TASK = dict(n_channels=6, n_classes=5, gap=4, onset_range=20, tail=5, n_train=512, n_val=128, n_test=256)
MAX_DELAY = 21  # pattern length (6 - 1)·4 = 20 steps, + 1
#: The rewiring recipe of mbalazs98/spatiotemporal (see docs/fidelity/meszaros.md).
AUTHORS_REWIRING = dict(
    regrow="rigl",
    sign="dale",
    excitatory_fraction=0.5,
    rigl_score="signed",
    regrow_magnitude=1e-12,
    l1_loss=0.01,
    reset_moments=False,
    mask_inactive_grad=False,
)
OLD = dict(
    readout="mean", init="dcls", alpha=None, spike_dropout=0.0, batch_norm=False, schedule="cosine", lagged=False
)
INGREDIENTS = {
    "old defaults": {},
    "+ softmax_sum readout": dict(readout="softmax_sum"),
    "+ kaiming init": dict(init="kaiming"),
    "+ ATan alpha 5": dict(alpha=5.0),
    "+ spike dropout 0.4 (per sequence)": dict(spike_dropout=0.4),
    "all DCLS ingredients (tau 1.005)": dict(
        readout="softmax_sum",
        init="kaiming",
        alpha=5.0,
        spike_dropout=0.4,
        batch_norm=True,
        schedule="paper",
        dcls_tau=True,
    ),
    "all Meszaros ingredients (lagged LIF tau 10.05)": dict(
        readout="softmax_sum",
        init="kaiming",
        alpha=5.0,
        spike_dropout=0.4,
        batch_norm=True,
        schedule="paper",
        lagged=True,
    ),
}


def sparse_run(method: str, sparsity: float, seed: int, args) -> dict:
    delays = method in ("delays", "both")
    net = DelaySNN(
        6,
        [args.hidden],
        5,
        max_delay=MAX_DELAY if delays else 1,
        tau=10.05,
        readout_tau=10.05,
        delay_output=False,
        neuron={"class_path": "lightning_snn.neurons.lagged_lif.LaggedLIF"},
        readout="lagged",
        init="kaiming",
    )
    if method == "delays":
        rewiring = dict(regrow="none", sign="fixed")
    else:
        rewiring = dict(AUTHORS_REWIRING, l1_loss=0.0 if method == "rewiring, no L1" else AUTHORS_REWIRING["l1_loss"])
    callbacks = [Rewiring(sparsity=sparsity, seed=seed, **rewiring)]
    if delays:
        callbacks.append(DelaySigmaSchedule(fraction=0.5))
    lr = args.sparse_lr
    model = SpikingClassifier(net, readout="softmax_sum", lr=lr, delay_lr=100 * lr if delays else 0.0)
    return fit(model, callbacks, seed, args) | {"experiment": "sparse", "method": method, "sparsity": sparsity}


def ingredient_run(name: str, seed: int, args) -> dict:
    cfg = {**OLD, **INGREDIENTS[name]}
    neuron: dict = {"learn_tau": False, "decay_input": False}
    tau, readout_tau, extra = 2.0, 5.0, {}
    if cfg.get("dcls_tau"):
        tau, readout_tau, neuron["tau_min"], extra = 1.005, 1.005, 1.001, dict(readout_tau_min=1.001)
    if cfg["alpha"] is not None:
        neuron["surrogate_alpha"] = cfg["alpha"]
    if cfg["lagged"]:
        neuron = {"class_path": "lightning_snn.neurons.lagged_lif.LaggedLIF", "init_args": {}}
        tau, readout_tau, extra = 10.05, 10.05, dict(readout="lagged")
    net = DelaySNN(
        6,
        [args.hidden],
        5,
        max_delay=MAX_DELAY,
        tau=tau,
        readout_tau=readout_tau,
        delay_output=False,
        neuron=neuron,
        init=cfg["init"],
        spike_dropout=cfg["spike_dropout"],
        batch_norm=cfg["batch_norm"],
        **extra,
    )
    schedule = {}
    if cfg["schedule"] == "paper":
        schedule = dict(
            scheduler={"weight": "onecycle", "delay": "cosine", "tau": "constant", "threshold": "constant"},
            scheduler_interval="epoch",
        )
    model = SpikingClassifier(net, readout=cfg["readout"], lr=args.lr, delay_lr=args.delay_lr, **schedule)
    return fit(model, [DelaySigmaSchedule(fraction=0.5)], seed, args) | {"experiment": "ingredients", "method": name}


def fit(model: SpikingClassifier, callbacks: list, seed: int, args) -> dict:
    L.seed_everything(seed, workers=True)
    data = DelayTaskDataModule(seed=seed, batch_size=args.batch_size, **TASK)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    acc = trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]
    active = None
    rewirings = [c for c in callbacks if isinstance(c, Rewiring)]
    if rewirings:
        active = {name: int(mask.sum()) for name, mask in rewirings[0].masks.items()}
    return {"seed": seed, "test_acc": acc, "seconds": time.perf_counter() - start, "active": active}


def summarise(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    groups: dict[tuple, list] = defaultdict(list)
    seen = set()
    for r in rows:  # a run repeated (a sweep restarted) counts once: the first record
        key = (r["experiment"], r["method"], r.get("sparsity"))
        if (*key, r["seed"]) not in seen:
            seen.add((*key, r["seed"]))
            groups[key].append(r)
    for experiment in ("sparse", "ingredients"):
        print(
            f"\n### {experiment}\n\n| method | sparsity | active synapses | test acc (mean ± sd) | n | per seed "
            "| s/run |"
        )
        print("|---|---|---|---|---|---|---|")
        for (exp, method, sparsity), runs in groups.items():
            if exp != experiment:
                continue
            runs = sorted(runs, key=lambda r: r["seed"])
            accs = [r["test_acc"] for r in runs]
            sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
            active = runs[0]["active"]
            shown = "dense" if active is None else "+".join(str(v) for v in active.values())
            print(
                f"| {method} | {sparsity if sparsity is not None else '-'} | {shown} | "
                f"{statistics.mean(accs):.3f} ± {sd:.3f} | {len(accs)} | {' '.join(f'{a:.3f}' for a in accs)} | "
                f"{statistics.mean(r['seconds'] for r in runs):.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", nargs="+", default=["sparse", "ingredients"], choices=["sparse", "ingredients"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.9, 0.95])
    parser.add_argument("--methods", nargs="+", default=["delays", "rewiring", "rewiring, no L1", "both"])
    parser.add_argument("--ingredients", nargs="+", default=list(INGREDIENTS), choices=list(INGREDIENTS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--delay-lr", type=float, default=1.0)
    parser.add_argument("--sparse-lr", type=float, default=5e-3, help="weight lr of the sparse experiment")
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    parser.add_argument("--summary", default=None, help="print the tables of a results file and exit")
    args = parser.parse_args()
    if args.summary:
        return summarise(args.summary)
    torch.set_num_threads(1)
    jobs = []  # seed-major: a run stopped early still has every condition for its first seeds
    for seed in args.seeds:
        if "sparse" in args.experiment:
            jobs += [(sparse_run, (m, s, seed)) for s in args.sparsities for m in args.methods]
        if "ingredients" in args.experiment:
            jobs += [(ingredient_run, (name, seed)) for name in args.ingredients]
    for run, job in jobs:
        record = run(*job, args)
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
