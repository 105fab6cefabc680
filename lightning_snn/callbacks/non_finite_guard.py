r"""``NonFiniteGuard``: stop training at the first non-finite loss, gradient or parameter, and say which.

A learned time constant that runs away (:math:`\tau \to \infty`, a decay :math:`\beta \to 1` that
lets the membrane grow without bound, or a NaN from a surrogate gradient) silently ruins a run that
may last days. The guard checks, every ``check_every_n_steps`` optimiser steps:

1. the loss, before ``backward`` (so the parameters are still intact);
2. every gradient, before the optimiser step (and before clipping), naming the first bad parameter;
3. every parameter, after the step.

and, whatever the interval, every parameter again before each checkpoint is saved
(``on_save_checkpoint``), so no checkpoint ever holds a non-finite parameter. When several
parameters are bad, the declared time constants (role ``"tau"``) are named first: a NaN τ poisons
every gradient and parameter downstream, so it is the likely cause.

The first failure raises :class:`NonFiniteError` whose message names the quantity, the step and
epoch and, for parameters declared as time constants (role ``"tau"``, :mod:`lightning_snn.roles`),
the module whose τ failed, with the fixes to try. Raising
(rather than ``trainer.should_stop``) keeps the last good checkpoint: nothing is saved after the
failure. Under DDP the decision is reduced over ranks (any rank failing stops every rank), so no
rank is left waiting in a collective. Gradient checks are skipped under 16-bit mixed precision,
where the gradient scaler expects and handles inf gradients itself.

Debug option: ``check_layer_inputs=True`` makes every layer look for NaN in its input during the
training steps (:func:`lightning_snn.validation.nan_checks`: one host sync per layer call, so off by
default), which names the first layer that receives a NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_snn import validation
from lightning_snn.roles import declared_roles, named_tensors_by_role

FIXES = (
    "lower the learning rate (or tau_lr), set trainer.gradient_clip_val, bound τ (tau_min/tau_max), "
    "or rerun with trainer.detect_anomaly=true to find the operation that produced it"
)


class NonFiniteError(FloatingPointError):
    """Raised by :class:`NonFiniteGuard`; the message names what became non-finite."""


def tau_layers(root: torch.nn.Module) -> dict[str, str]:
    """``{τ parameter name: layer name}`` for the parameters declared ``"tau"`` (:mod:`lightning_snn.roles`).

    The layer is the module that holds the parameter or, when that module holds nothing but time
    constants (a :class:`~lightning_snn.neurons.time_constant.TimeConstant`), its parent."""
    modules = dict(root.named_modules())
    layers = {}
    for name, owner, _, tensor in named_tensors_by_role(root, "tau"):
        if not isinstance(tensor, torch.nn.Parameter):
            continue
        layer = name.rpartition(".")[0]
        only_tau = set(declared_roles(owner).values()) == {"tau"} and all(
            declared_roles(owner).get(p) == "tau" for p, _ in owner.named_parameters(recurse=False)
        )
        if only_tau and layer and modules.get(layer) is owner:
            layer = layer.rpartition(".")[0]
        layers[name] = layer or "root"
    return layers


def describe(name: str, layers: dict[str, str] | None = None) -> str:
    """``'parameter x'``, or ``'τ parameter x (time constant of layer y)'`` for the τ parameters in ``layers``
    (from :func:`tau_layers`)."""
    if name in (layers or {}):
        return f"τ parameter {name!r} (time constant of layer {layers[name]!r})"
    return f"parameter {name!r}"


def first_non_finite(named: Iterable[tuple[str, torch.Tensor | None]]) -> tuple[str, torch.Tensor] | None:
    """The first ``(name, tensor)`` holding a NaN or ±inf (``None`` tensors are skipped).

    One device→host synchronisation for all tensors on the common (all finite) path."""
    named = [(n, t.detach()) for n, t in named if t is not None]
    if not named:
        return None
    device = named[0][1].device
    finite = torch.stack([torch.isfinite(t).all().to(device) for _, t in named])
    if bool(finite.all()):
        return None
    return named[int((~finite).nonzero()[0])]


def count_bad(tensor: torch.Tensor) -> str:
    t = tensor.detach()
    return f"{int(torch.isnan(t).sum())} NaN and {int(torch.isinf(t).sum())} inf of {t.numel()} value(s)"


class NonFiniteGuard(Callback):
    """Stop at the first non-finite loss, gradient or parameter (see the module docstring)."""

    def __init__(
        self, check_every_n_steps: int = 1, check_gradients: bool = True, check_layer_inputs: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(check_every_n_steps, int) or check_every_n_steps < 1:
            raise ValueError(
                f"NonFiniteGuard: check_every_n_steps must be an integer >= 1, got {check_every_n_steps!r}; "
                "use 1 to check every step."
            )
        self.check_every_n_steps, self.check_gradients = check_every_n_steps, check_gradients
        self.check_layer_inputs = check_layer_inputs
        self.tau_layers: dict[str, str] = {}
        self._nan_checks: Any = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.tau_layers = tau_layers(pl_module)

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.check_layer_inputs:
            self._nan_checks = validation.nan_checks()
            self._nan_checks.__enter__()

    def _end_nan_checks(self) -> None:
        if self._nan_checks is not None:
            self._nan_checks.__exit__(None, None, None)
            self._nan_checks = None

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._end_nan_checks()

    def _due(self, trainer: L.Trainer) -> bool:
        return trainer.global_step % self.check_every_n_steps == 0

    def _fail(self, trainer: L.Trainer, problem: str | None) -> None:
        """Raise on every rank if any rank found a problem."""
        if not trainer.strategy.reduce_boolean_decision(problem is not None, all=False):
            return
        where = f"at epoch {trainer.current_epoch}, global step {trainer.global_step}"
        what = problem or "another rank found a non-finite value"
        raise NonFiniteError(f"NonFiniteGuard: {what} {where}. Training stopped; {FIXES}.")

    @override
    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not self._due(trainer):
            return
        value = loss.detach()
        bad = None if torch.isfinite(value).all() else f"the training loss is {value.flatten()[0].item()}"
        self._fail(trainer, bad)

    @override
    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not (self.check_gradients and self._due(trainer)) or str(trainer.precision).startswith("16"):
            return
        found = first_non_finite(self._tau_first((n, p.grad) for n, p in pl_module.named_parameters()))
        bad = (
            None
            if found is None
            else f"the gradient of {describe(found[0], self.tau_layers)} has {count_bad(found[1])}"
        )
        self._fail(trainer, bad)

    def _tau_first(self, named: Iterable[tuple[str, torch.Tensor | None]]) -> list[tuple[str, torch.Tensor | None]]:
        """The declared time constants first (a NaN τ is the cause when other parameters are bad too)."""
        named = list(named)
        return [p for p in named if p[0] in self.tau_layers] + [p for p in named if p[0] not in self.tau_layers]

    def _check_parameters(self, trainer: L.Trainer, pl_module: L.LightningModule, when: str) -> None:
        found = first_non_finite(self._tau_first(pl_module.named_parameters()))
        bad = None if found is None else f"{describe(found[0], self.tau_layers)} has {count_bad(found[1])} {when}"
        self._fail(trainer, bad)

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Every checkpoint, whatever ``check_every_n_steps``: a bad parameter raises before it is written."""
        if not self.tau_layers:
            self.tau_layers = tau_layers(pl_module)
        self._check_parameters(trainer, pl_module, "before a checkpoint save (the checkpoint was not written)")

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._end_nan_checks()
        # global_step was already incremented by the step that just ran: check that step's result.
        if (trainer.global_step - 1) % self.check_every_n_steps != 0:
            return
        self._check_parameters(trainer, pl_module, "after the optimiser step")
