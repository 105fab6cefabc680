"""``TemporalStatsLogger``: per-layer statistics of temporal parameters and spiking, logged every epoch.

Two kinds of statistics, both reported under the layer's qualified name:

- **parameter statistics**: any submodule with ``temporal_statistics() -> dict[str, Tensor]`` (τ,
  delays, σ), read at the end of each training epoch;
- **per-call statistics**: any submodule with ``call_statistics(output) -> dict[str, Tensor]`` (spike
  rates), gathered through forward hooks over the *training* batches of the epoch only
  (:class:`~lightning_snn.call_statistics.CallStatistics`; validation and sanity-check batches are not
  recorded), averaged with each call weighted by its ``T·B`` rows and summed over DDP ranks.

A 0-d tensor is logged as it is (e.g. the fraction of delays at their bounds); a vector is summarised
by mean, std, min and max (``tau/<layer>/mean`` ...) and, with a ``WandbLogger``, also sent as a
histogram. At the end of fit a PNG per statistic (the value per layer, e.g. the τ hierarchy at a
glance) is written to the log directory. Logging and plots happen on rank zero.
"""

from __future__ import annotations

import os
from collections import defaultdict

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from lightning_snn.call_statistics import CallStatistics


def collect_statistics(module: torch.nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """``{statistic: {layer_name: values}}`` over every submodule that reports statistics."""
    out: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for name, sub in module.named_modules():
        report = getattr(sub, "temporal_statistics", None)
        if callable(report):
            for key, values in report().items():
                out[key][name or "root"] = values.detach().float().cpu()
    return dict(out)


def summarise(values: torch.Tensor) -> dict[str, float]:
    if values.dim() == 0:
        return {"value": values.item()}
    std = values.std().item() if values.numel() > 1 else 0.0
    return {"mean": values.mean().item(), "std": std, "min": values.min().item(), "max": values.max().item()}


class TemporalStatsLogger(Callback):
    """Log τ, spike-rate and other temporal statistics per layer (see the module docstring)."""

    def __init__(self, histograms: bool = True, plot: bool = True) -> None:
        super().__init__()
        self.histograms, self.plot = histograms, plot
        self.recorder: CallStatistics | None = None
        self.epoch_call_statistics: dict[str, dict[str, torch.Tensor]] = {}

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.recorder = CallStatistics(pl_module).attach()
            self.recorder.recording = False

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.recorder is not None:
            self.recorder.detach()
            self.recorder = None

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.reset()

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.recorder is not None:
            self.recorder.recording = True

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if self.recorder is not None:
            self.recorder.recording = False

    def _reduced_call_statistics(self, trainer: L.Trainer) -> dict[str, dict[str, torch.Tensor]]:
        """The epoch's per-call means over the training batches of every rank."""
        recorder = self.recorder
        if recorder is None:
            return {}
        out: dict[str, dict[str, torch.Tensor]] = {}
        for index in sorted(recorder.sums):  # the same order on every rank
            total = trainer.strategy.reduce(recorder.sums[index].clone(), reduce_op="sum")
            count = torch.tensor(recorder.counts[index], device=total.device)
            count = trainer.strategy.reduce(count, reduce_op="sum")
            out.setdefault(index[0], {})[index[1]] = (total / count).cpu()
        return out

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_call_statistics = self._reduced_call_statistics(trainer)  # a collective: every rank
        self._log(trainer, {**collect_statistics(pl_module), **self.epoch_call_statistics})

    @rank_zero_only
    def _log(self, trainer: L.Trainer, stats: dict[str, dict[str, torch.Tensor]]) -> None:
        scalars = {}
        for key, layers in stats.items():
            for layer, values in layers.items():
                for stat, v in summarise(values).items():
                    scalars[f"{key}/{layer}" if stat == "value" else f"{key}/{layer}/{stat}"] = v
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
            if self.histograms and type(logger).__name__ == "WandbLogger":
                self._log_histograms(logger, stats, trainer.global_step)

    @staticmethod
    def _log_histograms(logger, stats, step: int) -> None:
        import wandb

        hists = {
            f"{key}/{layer}/hist": wandb.Histogram(values.numpy())
            for key, layers in stats.items()
            for layer, values in layers.items()
            if values.dim() > 0 and values.numel() > 1
        }
        if hists:
            logger.experiment.log({**hists, "trainer/global_step": step})

    @override
    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plot:
            stats = {**collect_statistics(pl_module), **self.epoch_call_statistics}
            self.save_plots(stats, trainer.log_dir or trainer.default_root_dir)

    @staticmethod
    def save_plots(stats: dict[str, dict[str, torch.Tensor]], directory: str) -> list[str]:
        """One PNG per statistic: the distribution of its values in each layer."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(directory, exist_ok=True)
        paths = []
        for key, layers in stats.items():
            vectors = {k: v.flatten().numpy() for k, v in layers.items()}
            fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(vectors)), 3.5))
            ax.boxplot(list(vectors.values()), showmeans=True)
            ax.set_xticks(range(1, len(vectors) + 1), list(vectors), rotation=30, ha="right", fontsize=7)
            ax.set_ylabel(key)
            ax.set_title(f"{key} per layer")
            fig.tight_layout()
            path = os.path.join(directory, f"{key.replace('/', '_')}_per_layer.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
        return paths
