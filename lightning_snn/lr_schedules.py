r"""Learning-rate schedules with a different schedule per optimiser group (weights, τ, delays, ...).

The delay papers train weights and delay positions with different schedules from the same loss: in
``Thvnvtos/SNN-delays`` (``model.py:56-84``, ``best_config_SHD.py``) the weights follow a one-cycle
schedule up to :math:`5\,\mathrm{lr}_w` and the positions a cosine annealing, both stepped once per
epoch. torch's schedulers act on every group of an optimiser; :class:`GroupSchedules` gives each group of
:class:`~lightning_snn.lit.classifier.SpikingClassifier`'s one optimiser its own closed-form schedule,
equal to torch's scheduler of the same name run on that group alone (tested):

- ``"cosine"`` (``CosineAnnealingLR``, :math:`\eta_{\min} = 0`):
  :math:`\mathrm{lr}_t = \mathrm{lr}_0\,(1 + \cos(\pi t / T)) / 2`;
- ``"onecycle"`` (``OneCycleLR``, two phases, cosine annealing): from :math:`m/d` up to
  :math:`m = f\,\mathrm{lr}_0` over the first ``pct_start`` of the :math:`T` steps, then down to
  :math:`m / (d\,d_f)`; with ``cycle_momentum`` Adam's :math:`\beta_1` (or SGD's momentum) goes the
  opposite way between ``max_momentum`` and ``base_momentum``;
- ``"constant"``: :math:`\mathrm{lr}_t = \mathrm{lr}_0`.

``t`` counts scheduler steps (optimiser steps or epochs, as the classifier's ``scheduler_interval``
says); past :math:`T` every schedule holds its value at :math:`T`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

GROUP_SCHEDULES = ("cosine", "onecycle", "constant")
#: torch's OneCycleLR defaults, and our ``max_lr_factor`` (the peak as a multiple of the group's lr; 5 in
#: Thvnvtos/SNN-delays' ``max_lr_w = 5 * lr_w``).
ONECYCLE_DEFAULTS = {
    "max_lr_factor": 5.0,
    "pct_start": 0.3,
    "div_factor": 25.0,
    "final_div_factor": 1e4,
    "cycle_momentum": True,
    "base_momentum": 0.85,
    "max_momentum": 0.95,
}


def annealing_cos(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from ``start`` (pct 0) to ``end`` (pct 1), as torch's ``OneCycleLR``."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def onecycle_phase(step: int, total: int, pct_start: float) -> tuple[int, float]:
    """``(phase, pct)`` of ``step`` in the two-phase one-cycle schedule of ``total`` steps (torch's phase
    boundaries: the warm-up ends at step ``pct_start·total − 1``, the annealing at ``total − 1``)."""
    warm_end = float(pct_start * total) - 1
    if step <= warm_end:
        return 0, step / warm_end
    return 1, (step - warm_end) / (total - 1 - warm_end)


def onecycle_value(step: int, total: int, peak: float, cfg: Mapping[str, Any]) -> float:
    """The one-cycle learning rate at ``step`` for a peak ``peak``."""
    phase, pct = onecycle_phase(step, total, cfg["pct_start"])
    initial = peak / cfg["div_factor"]
    if phase == 0:
        return annealing_cos(initial, peak, pct)
    return annealing_cos(peak, initial / cfg["final_div_factor"], pct)


def onecycle_momentum(step: int, total: int, cfg: Mapping[str, Any]) -> float:
    """The one-cycle momentum (Adam's β₁) at ``step``: high → low during warm-up, back after."""
    phase, pct = onecycle_phase(step, total, cfg["pct_start"])
    low, high = cfg["base_momentum"], cfg["max_momentum"]
    return annealing_cos(high, low, pct) if phase == 0 else annealing_cos(low, high, pct)


def check_group_schedules(schedules: Mapping[str, str], known_groups: tuple[str, ...]) -> None:
    """Raise ``ValueError`` for an unknown group or schedule name in a ``{group: schedule}`` mapping."""
    for group, name in schedules.items():
        if group not in known_groups:
            raise ValueError(
                f"scheduler names the optimiser group {group!r}; the groups are {known_groups} "
                "(one per parameter role). Fix the key, e.g. scheduler: {weight: onecycle, delay: cosine}."
            )
        if name not in GROUP_SCHEDULES:
            raise ValueError(
                f"scheduler[{group!r}] = {name!r} is not a per-group schedule; expected one of {GROUP_SCHEDULES}."
            )


class GroupSchedules(LRScheduler):
    """One closed-form schedule per optimiser group (see the module docstring).

    ``schedules`` maps a group's ``"name"`` to ``"cosine"``, ``"onecycle"`` or ``"constant"`` (a group
    not named is constant); ``total`` is :math:`T`; ``onecycle`` overrides :data:`ONECYCLE_DEFAULTS`."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedules: Mapping[str, str],
        total: int,
        onecycle: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 2:
            raise ValueError(
                f"GroupSchedules: total (number of scheduler steps) must be an integer >= 2; got {total!r}."
            )
        unknown = set(onecycle or {}) - set(ONECYCLE_DEFAULTS)
        if unknown:
            raise ValueError(
                f"Unknown one-cycle settings {sorted(unknown)}; expected some of {sorted(ONECYCLE_DEFAULTS)}."
            )
        self.schedules = dict(schedules)
        self.total = total
        self.onecycle = {**ONECYCLE_DEFAULTS, **(onecycle or {})}
        self.names = [group.get("name", str(i)) for i, group in enumerate(optimizer.param_groups)]
        if self.onecycle["cycle_momentum"]:
            for name, group in zip(self.names, optimizer.param_groups):
                if self.schedules.get(name) == "onecycle" and "betas" not in group and "momentum" not in group:
                    raise ValueError(
                        f"onecycle with cycle_momentum on group {name!r} needs an optimiser with momentum or "
                        "betas (Adam, AdamW, SGD); pass scheduler_kwargs: {cycle_momentum: false}."
                    )
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        step = min(self.last_epoch, self.total)
        rates = []
        for name, base, group in zip(self.names, self.base_lrs, self.optimizer.param_groups):
            kind = self.schedules.get(name, "constant")
            if kind == "cosine":
                rates.append(base * (1 + math.cos(math.pi * step / self.total)) / 2)
            elif kind == "onecycle":
                rates.append(onecycle_value(step, self.total, self.onecycle["max_lr_factor"] * base, self.onecycle))
                if self.onecycle["cycle_momentum"]:
                    momentum = onecycle_momentum(step, self.total, self.onecycle)
                    if "betas" in group:
                        group["betas"] = (momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = momentum
            else:
                rates.append(base)
        return rates
