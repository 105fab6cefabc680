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
histogram. Logging and plots happen on rank zero.

At the end of fit, figures are written to the run's directory (:func:`~lightning_snn.loggers.run_directory`:
``<save_dir>/<name>/<version>`` of the logger, the Trainer's ``default_root_dir`` without one):

- ``<statistic>_per_layer.png``: the distribution of the final values in each layer (the τ hierarchy at a
  glance);
- ``<statistic>_over_epochs.png``: the mean per layer over the training epochs, with its min–max band;
- ``spike_raster.png``: the spikes of one training sample (the first of the last epoch's first batch) in
  each spiking layer (a module with ``call_statistics``), recorded by a forward hook on that batch only.

Units: τ, delays and σ are plotted in time steps (τ divided by its ``TimeConstant.dt``). When the duration
of a step is known, a second axis shows milliseconds: ``step_ms`` given to the callback, else a
``TimeConstant.dt`` other than 1 (then in seconds, as in :mod:`lightning_snn.nir`), else the DataModule's
``dt`` (seconds per bin, as the SHD/SSC DataModules take it). The per-epoch history (summaries in the
plotted units) is part of the callback's ``state_dict``, so a resumed run plots the whole run.
"""

from __future__ import annotations

import functools
import math
import os
from collections import defaultdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from lightning_snn.call_statistics import CallStatistics
from lightning_snn.loggers import run_directory

#: Statistics measured in time steps (plotted in steps, with a millisecond axis when a step's length is known).
STEP_STATISTICS = ("tau", "delay", "delay_sigma")
#: Axis labels of the other statistics the package reports.
UNITS = {
    "spike_rate": "spikes per neuron per step",
    "delay_at_bounds": "fraction of delays",
    "ssm_dt": "S4D step (dt)",
}
#: At most this many neurons per layer in the spike raster.
RASTER_NEURONS = 256


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

    def __init__(self, histograms: bool = True, plot: bool = True, step_ms: float | None = None) -> None:
        super().__init__()
        if step_ms is not None and not (float(step_ms) > 0 and math.isfinite(float(step_ms))):
            raise ValueError(f"step_ms must be a finite positive number of milliseconds per step, got {step_ms!r}.")
        self.histograms, self.plot = histograms, plot
        self.step_ms = None if step_ms is None else float(step_ms)
        self.recorder: CallStatistics | None = None
        self.epoch_call_statistics: dict[str, dict[str, torch.Tensor]] = {}
        #: One entry per training epoch: ``{"epoch": e, "stats": {statistic: {layer: summary}}}``, in plot units.
        self.history: list[dict[str, Any]] = []
        #: ``{layer: (T, N) bool}``: one training sample's spikes per spiking layer, from the latest epoch.
        self.raster: dict[str, torch.Tensor] = {}
        self._raster_handles: list[Any] = []

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
        self._remove_raster_hooks()

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.reset()

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.recorder is not None:
            self.recorder.recording = True
        if self.plot and batch_idx == 0 and trainer.is_global_zero:
            self._add_raster_hooks(pl_module)

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if self.recorder is not None:
            self.recorder.recording = False
        self._remove_raster_hooks()

    def _add_raster_hooks(self, pl_module: L.LightningModule) -> None:
        """Hook every spiking layer for this batch: keep the spikes of its first sample (the first call)."""
        self._remove_raster_hooks()
        self.raster = {}
        for name, module in pl_module.named_modules():
            if callable(getattr(module, "call_statistics", None)):
                hook = functools.partial(self._record_raster, name or "root")
                self._raster_handles.append(module.register_forward_hook(hook))

    def _record_raster(self, layer: str, module: torch.nn.Module, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        if layer in self.raster or not isinstance(out, torch.Tensor) or out.dim() < 2:
            return
        sample = out.detach()[:, 0].reshape(out.shape[0], -1)[:, :RASTER_NEURONS]  # time-major (T, B, ...)
        self.raster[layer] = (sample != 0).cpu()

    def _remove_raster_hooks(self) -> None:
        for handle in self._raster_handles:
            handle.remove()
        self._raster_handles = []

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
        stats = {**collect_statistics(pl_module), **self.epoch_call_statistics}
        self._log(trainer, stats)
        plotted = in_steps(stats, layer_dt(pl_module))
        # an epoch run again after a resume from inside it replaces its entry
        self.history = [entry for entry in self.history if entry["epoch"] < trainer.current_epoch]
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                "stats": {
                    key: {layer: summarise(v.float()) for layer, v in layers.items()} for key, layers in plotted.items()
                },
            }
        )

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
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    @override
    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plot:
            stats = in_steps({**collect_statistics(pl_module), **self.epoch_call_statistics}, layer_dt(pl_module))
            step_ms = self.step_ms or module_step_ms(pl_module) or datamodule_step_ms(trainer)
            self.save_plots(stats, run_directory(trainer), history=self.history, raster=self.raster, step_ms=step_ms)

    @staticmethod
    def save_plots(
        stats: dict[str, dict[str, torch.Tensor]],
        directory: str,
        history: list[dict[str, Any]] | None = None,
        raster: dict[str, torch.Tensor] | None = None,
        step_ms: float | None = None,
    ) -> list[str]:
        """The figures of the module docstring; ``stats`` and ``history`` in plot units (τ in steps)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        os.makedirs(directory, exist_ok=True)
        paths = []

        def save(fig, name: str) -> None:
            fig.tight_layout()
            path = os.path.join(directory, name)
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)

        for key, layers in stats.items():
            vectors = {k: v.flatten().numpy() for k, v in layers.items()}
            fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(vectors)), 3.5))
            ax.boxplot(list(vectors.values()), showmeans=True)
            ax.set_xticks(range(1, len(vectors) + 1), list(vectors), rotation=30, ha="right", fontsize=7)
            label_axis(ax, key, step_ms)
            ax.set_title(f"{key} per layer (end of fit)")
            save(fig, f"{key.replace('/', '_')}_per_layer.png")

        epochs_of: dict[str, dict[str, list[tuple[int, dict[str, float]]]]] = defaultdict(lambda: defaultdict(list))
        for entry in history or []:
            for key, layers in entry["stats"].items():
                for layer, summary in layers.items():
                    epochs_of[key][layer].append((entry["epoch"], summary))
        for key, layers in epochs_of.items():
            fig, ax = plt.subplots(figsize=(7.5, 3.5))
            for layer, points in layers.items():
                epochs = [e for e, _ in points]
                mean = [p.get("mean", p.get("value")) for _, p in points]
                (line,) = ax.plot(epochs, mean, marker="o", markersize=3, label=layer)
                if all("min" in p for _, p in points):
                    low, high = [p["min"] for _, p in points], [p["max"] for _, p in points]
                    ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            label_axis(ax, key, step_ms)
            ax.set_title(f"{key} per layer over epochs (mean, min–max band)", fontsize=10)
            beside = 1.15 if key in STEP_STATISTICS and step_ms else 1.0  # right of the millisecond axis
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(beside, 1))
            save(fig, f"{key.replace('/', '_')}_over_epochs.png")

        if raster:
            fig, axes = plt.subplots(len(raster), 1, figsize=(7, 1.2 + 1.6 * len(raster)), sharex=True, squeeze=False)
            for ax, (layer, spikes) in zip(axes[:, 0], raster.items()):
                times, neurons = torch.nonzero(spikes, as_tuple=True)
                ax.scatter(times.numpy(), neurons.numpy(), s=8, marker="|", linewidths=0.8, color="black")
                ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
                ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
                ax.set_ylabel("neuron")
                rate = spikes.float().mean().item()
                ax.set_title(f"{layer}: {int(spikes.sum())} spikes, {rate:.3f} per neuron per step", fontsize=8)
            axes[-1, 0].set_xlabel(f"time step ({step_ms:g} ms per step)" if step_ms else "time step")
            fig.suptitle("spikes of one training sample (last epoch)", fontsize=9)
            save(fig, "spike_raster.png")
        return paths


def layer_dt(module: torch.nn.Module) -> dict[str, float]:
    """``{layer: dt}`` of the layers whose τ is a ``TimeConstant`` (a ``.tau`` with a float ``dt``)."""
    out = {}
    for name, sub in module.named_modules():
        dt = getattr(getattr(sub, "tau", None), "dt", None)
        if isinstance(dt, float) and dt > 0:
            out[name or "root"] = dt
    return out


def in_steps(stats: dict[str, dict[str, torch.Tensor]], dts: dict[str, float]) -> dict[str, dict[str, torch.Tensor]]:
    """``stats`` with τ in time steps: divided by the ``dt`` of its ``TimeConstant`` where it is not 1."""
    if "tau" not in stats:
        return stats
    tau = {layer: v / dts[layer] if dts.get(layer, 1.0) != 1.0 else v for layer, v in stats["tau"].items()}
    return {**stats, "tau": tau}


def module_step_ms(module: torch.nn.Module) -> float | None:
    """Milliseconds per step from the ``TimeConstant``s: their ``dt`` in seconds when it is not 1 and all agree."""
    dts = {dt for dt in layer_dt(module).values() if dt != 1.0}
    return 1000.0 * dts.pop() if len(dts) == 1 else None


def datamodule_step_ms(trainer: L.Trainer) -> float | None:
    """Milliseconds per step from the DataModule's ``dt`` (seconds per bin), when it has one."""
    dt = getattr(getattr(trainer, "datamodule", None), "dt", None)
    return 1000.0 * float(dt) if isinstance(dt, (int, float)) and not isinstance(dt, bool) and dt > 0 else None


def label_axis(ax, key: str, step_ms: float | None) -> None:
    """The y label of ``key`` with its unit; for step-valued statistics a millisecond axis when ``step_ms``, and a
    log scale when the values span more than two decades (a slow readout next to fast hidden layers)."""
    low, high = ax.dataLim.y0, ax.dataLim.y1
    if key in STEP_STATISTICS and math.isfinite(low) and low > 0 and high / low > 100:
        ax.set_yscale("log")
    if key in STEP_STATISTICS:
        ax.set_ylabel(f"{key} (steps)")
        if step_ms:
            right = ax.secondary_yaxis("right", functions=(lambda s: s * step_ms, lambda m: m / step_ms))
            right.set_ylabel(f"{key} (ms, {step_ms:g} ms/step)")
    else:
        ax.set_ylabel(f"{key} ({UNITS[key]})" if key in UNITS else key)
