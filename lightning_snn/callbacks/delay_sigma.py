r"""``DelaySigmaSchedule``: the width σ of DCLS delay kernels decays during training.

.. math::
    \sigma(p) = \sigma_0 \Big(\frac{\sigma_1}{\sigma_0}\Big)^{\min(p / f,\ 1)}, \qquad
    p = \frac{\text{step}}{\text{total steps}} \in [0, 1]

an exponential decay from :math:`\sigma_0` to :math:`\sigma_1 = 0.23` over the first fraction
:math:`f` of training (Hammouamri et al. 2024 decay it over the epochs; Mészáros et al. 2024 over the
first quarter), then constant. The schedule acts on every tensor that a module declares with the role
``"sigma"`` (:mod:`lightning_snn.roles`; :class:`~lightning_snn.layers.delayed_linear.DelayedLinear`
declares its ``sigma`` buffer), filling it in place before each training batch (``interval="step"``)
or epoch (``interval="epoch"``). :math:`\sigma_0` is ``start`` or, by default, each tensor's own value
when training starts (``max_delay / 2`` for a new ``DelayedLinear``). σ is in the model checkpoint;
the schedule's position and each layer's :math:`\sigma_0` are in its ``state_dict``. Each layer reports its
σ in ``temporal_statistics()``, so :class:`~lightning_snn.callbacks.temporal_stats.TemporalStatsLogger`
logs it as ``delay_sigma/<layer>``.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_snn.roles import named_tensors_by_role

INTERVALS = ("step", "epoch")


def sigma_at(progress: float, start: float, end: float, fraction: float) -> float:
    """σ after ``progress`` ∈ [0, 1] of training (see the module docstring)."""
    if start == 0:
        return 0.0
    return start * (end / start) ** min(max(progress, 0.0) / fraction, 1.0)


def start_from(sigma: float, progress: float, end: float, fraction: float) -> float | None:
    """The σ_0 for which :func:`sigma_at` gives ``sigma`` at ``progress`` (None once σ reached ``end``)."""
    a = min(max(progress, 0.0) / fraction, 1.0)
    if a >= 1.0 or sigma <= 0 or end <= 0:
        return None
    return math.exp((math.log(sigma) - a * math.log(end)) / (1.0 - a))


class DelaySigmaSchedule(Callback):
    """Exponential decay of the delay-kernel width σ (see the module docstring)."""

    def __init__(
        self, start: float | None = None, end: float = 0.23, fraction: float = 0.25, interval: str = "step"
    ) -> None:
        super().__init__()
        if not isinstance(end, (int, float)) or isinstance(end, bool) or not math.isfinite(end) or end < 0:
            raise ValueError(f"DelaySigmaSchedule: end must be >= 0 and finite, got {end!r}; the papers use end=0.23.")
        if start is not None and (
            not isinstance(start, (int, float)) or isinstance(start, bool) or not math.isfinite(start) or start < 0
        ):
            raise ValueError(f"DelaySigmaSchedule: start must be None or a finite number >= 0, got {start!r}.")
        if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not math.isfinite(fraction):
            raise ValueError(f"DelaySigmaSchedule: fraction must be a number in (0, 1], got {fraction!r}.")
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
        self.starts: dict[str, float] = {}

    def _start_of(self, name: str, tensor: torch.Tensor) -> float:
        """σ_0 of one declared σ: ``start``, the value recorded for it, or its value now (read once)."""
        if self.start is not None:
            start = float(self.start)
        elif name in self.starts:
            start = self.starts[name]
        else:
            start = float(tensor.detach().abs().max())
        if not math.isfinite(start):
            raise ValueError(
                f"DelaySigmaSchedule: the start σ of {name!r} is {start}; set it to a finite value "
                "(layer.set_sigma(...)) or pass an explicit start."
            )
        if self.end > start:
            raise ValueError(
                f"DelaySigmaSchedule: end={self.end} is above the start σ={start} of {name!r}; pass a smaller end "
                "or an explicit start."
            )
        self.starts[name] = start
        return start

    def apply(self, pl_module: L.LightningModule, progress: float) -> dict[str, float]:
        """Set every declared σ for ``progress`` ∈ [0, 1]; returns ``{layer: σ}``."""
        self.progress = progress
        self.sigmas = {}
        for name, _, _, tensor in named_tensors_by_role(pl_module, "sigma"):
            sigma = sigma_at(progress, self._start_of(name, tensor), self.end, self.fraction)
            with torch.no_grad():
                tensor.fill_(sigma)
            self.sigmas[name.rpartition(".")[0] or "root"] = sigma
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
        for name, _, _, tensor in named_tensors_by_role(pl_module, "sigma"):
            self._start_of(name, tensor)  # record σ_0 before σ moves, and fail before training
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
        return {"progress": self.progress, "sigmas": dict(self.sigmas), "starts": dict(self.starts)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.progress = float(state_dict["progress"])
        self.sigmas = dict(state_dict["sigmas"])
        if "starts" in state_dict:
            self.starts = dict(state_dict["starts"])
        else:  # version 0.1 saved no σ_0: recover it from the σ reached at the saved progress
            self.starts = {
                f"{layer}.sigma": start_from(sigma, self.progress, self.end, self.fraction)
                for layer, sigma in self.sigmas.items()
            }
            self.starts = {k: v for k, v in self.starts.items() if v is not None}
