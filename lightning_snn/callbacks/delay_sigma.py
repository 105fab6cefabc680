r"""``DelaySigmaSchedule``: the width σ of DCLS delay kernels decays during training.

.. math::
    \sigma(p) = \sigma_0 \Big(\frac{\sigma_1}{\sigma_0}\Big)^{\min(p / f,\ 1)}, \qquad
    p = \frac{\text{step}}{\text{total steps}} \in [0, 1]

an exponential decay from :math:`\sigma_0` (default ``max_delay / 2`` of each layer) to
:math:`\sigma_1 = 0.23` over the first fraction :math:`f` of training (Hammouamri et al. 2024 decay it
over the epochs; Mészáros et al. 2024 over the first quarter), then constant. σ is set on every
:class:`~lightning_snn.layers.delayed_linear.DelayedLinear` of the model before each training batch
(``interval="step"``) or epoch (``interval="epoch"``); it is a buffer of the layer, so it is also in
the model checkpoint, and the schedule's own position is in ``state_dict``. Each layer reports its σ in
``temporal_statistics()``, so :class:`~lightning_snn.callbacks.temporal_stats.TemporalStatsLogger` logs it
as ``delay_sigma/<layer>``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_snn.layers.delayed_linear import DelayedLinear

INTERVALS = ("step", "epoch")


def sigma_at(progress: float, start: float, end: float, fraction: float) -> float:
    """σ after ``progress`` ∈ [0, 1] of training (see the module docstring)."""
    if start == 0:
        return 0.0
    return start * (end / start) ** min(max(progress, 0.0) / fraction, 1.0)


class DelaySigmaSchedule(Callback):
    """Exponential decay of the delay-kernel width σ (see the module docstring)."""

    def __init__(
        self, start: float | None = None, end: float = 0.23, fraction: float = 0.25, interval: str = "step"
    ) -> None:
        super().__init__()
        if end < 0:
            raise ValueError(f"DelaySigmaSchedule: end must be >= 0, got {end}.")
        if start is not None and end > start:
            raise ValueError(
                f"DelaySigmaSchedule: end={end} is above start={start}; σ must decay. "
                "Swap the values or lower end (the papers use end=0.23)."
            )
        if not 0 < fraction <= 1:
            raise ValueError(f"DelaySigmaSchedule: fraction must be in (0, 1], got {fraction}.")
        if interval not in INTERVALS:
            raise ValueError(f"DelaySigmaSchedule: unknown interval {interval!r}; expected one of {INTERVALS}.")
        self.start, self.end, self.fraction, self.interval = start, end, fraction, interval
        self.progress = 0.0
        self.sigmas: dict[str, float] = {}

    def _layer_start(self, layer: DelayedLinear) -> float:
        start = self.start if self.start is not None else layer.max_delay / 2
        if self.end > start:
            raise ValueError(
                f"DelaySigmaSchedule: end={self.end} is above the start σ={start} of a layer with "
                f"max_delay={layer.max_delay}; pass a smaller end or an explicit start."
            )
        return start

    def apply(self, pl_module: L.LightningModule, progress: float) -> dict[str, float]:
        """Set σ on every ``DelayedLinear`` for ``progress`` ∈ [0, 1]; returns ``{layer: σ}``."""
        self.progress = progress
        self.sigmas = {}
        for name, layer in pl_module.named_modules():
            if isinstance(layer, DelayedLinear):
                sigma = sigma_at(progress, self._layer_start(layer), self.end, self.fraction)
                layer.set_sigma(sigma)
                self.sigmas[name] = sigma
        return self.sigmas

    def _total(self, trainer: L.Trainer) -> float:
        """Training length in the schedule's unit (epochs or optimizer steps)."""
        if self.interval == "epoch":
            return trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else float("inf")
        total = trainer.estimated_stepping_batches
        return total if total is not None and total > 0 else float("inf")

    def _progress(self, trainer: L.Trainer) -> float:
        step = trainer.current_epoch if self.interval == "epoch" else trainer.global_step
        return step / self._total(trainer)

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for layer in pl_module.modules():
            if isinstance(layer, DelayedLinear):
                self._layer_start(layer)  # fail before training, not after the first batch
        if self._total(trainer) == float("inf"):
            raise ValueError(
                f"DelaySigmaSchedule(interval={self.interval!r}) needs a finite training length to place σ on "
                "its schedule: set Trainer(max_epochs=...) for interval='epoch', or max_steps / max_epochs "
                "for interval='step'."
            )

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.interval == "epoch":
            self.apply(pl_module, self._progress(trainer))

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.interval == "step":
            self.apply(pl_module, self._progress(trainer))

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "sigmas": dict(self.sigmas)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.progress = float(state_dict["progress"])
        self.sigmas = dict(state_dict["sigmas"])
