r"""``SpikingClassifier``: the LightningModule that trains any lightning_snn network.

The network maps a time-major batch ``x`` ``(T, B, C)`` to outputs ``(T, B, K)`` (or logits ``(B, K)``).
The readout turns outputs into logits:

- ``"mean"`` / ``"sum"`` / ``"max"`` / ``"last"`` over time → one prediction per sample, target ``(B,)``;
- ``"softmax_sum"`` → :math:`\sum_t \mathrm{softmax}(V_t)`, target ``(B,)``: with the cross-entropy this
  is :math:`\mathrm{CE}(\sum_t \mathrm{softmax}(V_t), y)`, the loss of both delay papers
  (``Thvnvtos/SNN-delays`` ``model.py:86-95``, ``loss = 'sum'``) and hSNN's ``"cum"`` readout;
- ``"per_step"`` → logits at every step, target ``(T, B)`` with ``ignore_index`` (-100) on unlabelled
  steps (Multi-Time-Scale XOR).

Losses: cross-entropy, or ``"mse_rate"``, the PLIF loss :math:`\lVert \bar S - \mathrm{onehot}(y) \rVert^2`
on output firing rates (Fang et al. 2021). Padded batches ``(x, y, lengths)`` are masked; with
``mask_padding=False`` every output step counts, padding included, as in ``Thvnvtos/SNN-delays``, which sums
the softmax over the zero-padded steps of a batch and over the steps its right padding adds.
**Penalties.** Every module of the network that defines ``penalty()`` (returning a scalar tensor, e.g. a
regulariser on its time constants) adds it to the training loss (:mod:`lightning_snn.penalties`); their
sum is logged as ``train_penalty``.

**Schedules.** ``scheduler`` is ``"cosine"`` (torch's ``CosineAnnealingLR`` to 0 over the run, the
default), ``"onecycle"`` (torch's ``OneCycleLR``, peak ``max_lr_factor``·lr of each group), ``"plateau"``
(``ReduceLROnPlateau`` on ``monitor``, default ``"val_loss"``, stepped each epoch), ``"multistep"`` (torch's
``MultiStepLR``: ×``gamma`` at each of ``milestones``), ``"none"``, or a
mapping ``{group: "cosine" | "onecycle" | "constant"}`` giving each optimiser group its own schedule
(:class:`~lightning_snn.lr_schedules.GroupSchedules`; e.g. ``{weight: onecycle, delay: cosine}`` as in
Thvnvtos/SNN-delays). ``scheduler_interval`` is ``"step"`` (one scheduler step per optimiser step, over
the run's optimiser steps) or ``"epoch"`` (one per epoch, over ``max_epochs``, as the authors' code).
``scheduler_kwargs`` passes settings: ``max_lr_factor``, ``pct_start``, ``div_factor``,
``final_div_factor``, ``cycle_momentum``, ``base_momentum``, ``max_momentum`` for one-cycle; ``T_max``
(default: the whole run; shorter makes the cosine restart, as ``CosineAnnealingLR`` does) and ``eta_min`` for
cosine;
``monitor`` and ``ReduceLROnPlateau``'s arguments (``mode``, ``factor``, ``patience``, ...) for plateau.

``decay_norm_and_bias=False`` keeps biases and normalisation layers out of weight decay, as
``Thvnvtos/SNN-delays`` (``snn_delays.py:107-121``, ``model.py:41-43``) and the P-SpikeSSM code do.

The optimiser has one parameter group per declared role (:mod:`lightning_snn.roles`), each with its own
learning rate: weights (``lr``, ``weight_decay``), time constants (``tau_lr``), delay positions and
delay widths (``delay_lr``), thresholds (``lr``). Only weights get weight decay. A parameter that no
module declares is a weight.

**Truncated BPTT** (``tbptt_steps=k``): each training batch is split into chunks of ``k`` steps, run
with :meth:`~lightning_snn.models.network.Network.forward_with_state`, and the network state is carried
from chunk to chunk *detached* (no gradient into earlier chunks). With ``readout="per_step"`` every chunk
has its own loss (its labelled steps) and its own optimiser step; a chunk without a labelled step is
skipped. With a whole-sequence readout (``"mean"``, ``"last"``, ...) the label belongs to the whole
sequence: the chunks before the last run without gradient (they only advance the state), and the
readout over all steps (the earlier outputs as constants) is the loss of the last chunk, one optimiser
step per batch; gradients thus reach only the last ``k`` steps. This uses Lightning's manual
optimisation: the learning-rate scheduler steps once per batch (as without TBPTT), ``global_step``
counts optimiser steps (one per chunk with per-step targets), and the Trainer's
``gradient_clip_val`` / ``accumulate_grad_batches`` are not available (Lightning refuses them with
manual optimisation). Validation and test run the whole sequence at once.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.model_helpers import _restricted_classmethod
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_snn import state as stream
from lightning_snn.checkpoint_io import diagnose_checkpoint
from lightning_snn.lr_schedules import GROUP_SCHEDULES, ONECYCLE_DEFAULTS, GroupSchedules, check_group_schedules
from lightning_snn.models.network import build_network
from lightning_snn.penalties import network_penalty
from lightning_snn.roles import parameter_roles

READOUTS = ("mean", "sum", "max", "last", "softmax_sum", "per_step")
SCHEDULERS = ("cosine", "onecycle", "plateau", "multistep", "none")
SCHEDULER_INTERVALS = ("step", "epoch")
LOSSES = ("ce", "mse_rate")
IGNORE_INDEX = -100


#: The optimiser group of each role: a learned delay-kernel width trains with the delay positions.
ROLE_GROUPS = {"weight": "weight", "tau": "tau", "delay": "delay", "sigma": "delay", "threshold": "threshold"}


def time_mask(lengths: torch.Tensor | None, steps: int) -> torch.Tensor | None:
    """``(T, B)`` boolean mask of valid steps for padded sequences."""
    if lengths is None:
        return None
    return torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]


def readout_logits(out: torch.Tensor, readout: str, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce network output ``(T, B, K)`` to logits ``(B, K)`` (or keep ``(T, B, K)`` for per_step)."""
    if out.dim() == 2 or readout == "per_step":
        return out
    if lengths is not None and not bool(((lengths >= 1) & (lengths <= out.shape[0])).all()):
        raise ValueError(f"Sequence lengths must lie in [1, T={out.shape[0]}], got {lengths.tolist()}.")
    mask = time_mask(lengths, out.shape[0])
    if readout == "last":
        if lengths is None:
            return out[-1]
        return out[(lengths - 1).clamp_min(0), torch.arange(out.shape[1], device=out.device)]
    if mask is not None:
        fill = float("-inf") if readout == "max" else 0.0
        out = out.masked_fill(~mask[..., None], fill)
    if readout == "max":
        return out.max(0).values
    if readout == "softmax_sum":
        probabilities = out.softmax(-1)
        if mask is not None:
            probabilities = probabilities * mask[..., None]
        return probabilities.sum(0)
    total = out.sum(0)
    if readout == "sum":
        return total
    steps = lengths.clamp_min(1)[:, None].to(out.dtype) if lengths is not None else out.shape[0]
    return total / steps


def check_rate(name: str, value: Any, expected: str, positive: bool = False, optional: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number, > 0 with ``positive``
    (else >= 0), or ``None`` with ``optional``."""
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(
            f"{name} must be {expected}; got {value!r}. Pass a valid {name} "
            f"(from the CLI: --model.init_args.{name} <value>)."
        )


NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
AFFINE_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def norm_and_bias_names(network: nn.Module) -> set[str]:
    """Names of the biases of ``network``'s Linear and convolution layers and of every parameter of its
    normalisation layers (BatchNorm, LayerNorm, GroupNorm): what the delay papers' and P-SpikeSSM's code keep
    out of weight decay. Other parameters called ``bias`` (e.g. a SpikeSampler's affine, the P-SpikeSSM
    code's ``inp_b``, which it decays) are not included."""
    names = set()
    for module_name, module in network.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            if isinstance(module, NORM_LAYERS) or (name == "bias" and isinstance(module, AFFINE_LAYERS)):
                names.add(f"{module_name}.{name}" if module_name else name)
    return names


def check_scheduler(scheduler: Any, interval: Any, kwargs: Any, tbptt_steps: int | None) -> None:
    """Raise ``ValueError`` naming the argument for an unknown scheduler, interval or settings."""
    if isinstance(scheduler, dict):
        check_group_schedules(scheduler, tuple(ROLE_GROUPS.values()))
    elif scheduler not in SCHEDULERS:
        raise ValueError(
            f"Unknown scheduler {scheduler!r}; expected one of {SCHEDULERS} or a mapping "
            f"{{group: schedule}} with schedules {GROUP_SCHEDULES}."
        )
    if interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"Unknown scheduler_interval {interval!r}; expected one of {SCHEDULER_INTERVALS}.")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError(f"scheduler_kwargs must be a mapping of settings or None; got {kwargs!r}.")
    if scheduler == "multistep" and "milestones" not in (kwargs or {}):
        raise ValueError(
            "scheduler='multistep' needs scheduler_kwargs.milestones (the scheduler steps at which the learning "
            "rate is multiplied by gamma), e.g. scheduler_kwargs: {milestones: [26, 31], gamma: 0.5}."
        )
    if scheduler == "plateau" and tbptt_steps is not None:
        raise ValueError(
            "scheduler='plateau' is not available with tbptt_steps (manual optimisation steps the scheduler "
            "itself and has no monitored metric); use 'cosine', 'onecycle' or a per-group mapping."
        )


class SpikingClassifier(L.LightningModule):
    """Classification with a spiking network (see the module docstring)."""

    def __init__(
        self,
        network: nn.Module | dict,
        num_classes: int | None = None,
        readout: str = "mean",
        loss: str = "ce",
        lr: float = 1e-3,
        tau_lr: float | None = None,
        delay_lr: float | None = None,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        scheduler: str | dict[str, str] = "cosine",
        tbptt_steps: int | None = None,
        scheduler_interval: str = "step",
        scheduler_kwargs: dict[str, Any] | None = None,
        mask_padding: bool = True,
        decay_norm_and_bias: bool = True,
    ) -> None:
        super().__init__()
        if tbptt_steps is not None and (
            isinstance(tbptt_steps, bool) or not isinstance(tbptt_steps, int) or tbptt_steps < 1
        ):
            raise ValueError(
                f"tbptt_steps must be an integer >= 1 (steps per truncated-BPTT chunk) or None; got {tbptt_steps!r}."
            )
        if readout not in READOUTS:
            raise ValueError(f"Unknown readout {readout!r}; expected one of {READOUTS}.")
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}.")
        if optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"Unknown optimizer {optimizer!r}; expected 'adam', 'adamw' or 'sgd'.")
        check_scheduler(scheduler, scheduler_interval, scheduler_kwargs, tbptt_steps)
        check_rate("lr", lr, "> 0 and finite (e.g. 1e-3)", positive=True)
        check_rate("tau_lr", tau_lr, ">= 0 and finite (0 freezes τ) or None (τ then uses lr)", optional=True)
        check_rate("delay_lr", delay_lr, ">= 0 and finite (0 freezes delays) or None (100 * lr)", optional=True)
        check_rate("weight_decay", weight_decay, ">= 0 and finite (0 disables weight decay)")
        self.network = build_network(network) if isinstance(network, dict) else network
        if tbptt_steps is not None:
            if not callable(getattr(self.network, "forward_with_state", None)):
                raise ValueError(
                    f"tbptt_steps needs a network with forward_with_state (a lightning_snn Network); "
                    f"{type(self.network).__name__} has none."
                )
            self.automatic_optimization = False
        n_outputs = getattr(self.network, "n_outputs", None)
        if num_classes is not None and isinstance(n_outputs, int) and num_classes != n_outputs:
            raise ValueError(
                f"num_classes={num_classes!r} does not match the network's n_outputs={n_outputs} "
                f"({type(self.network).__name__}.n_outputs): the logits have {n_outputs} columns, one per class. "
                f"Omit num_classes (it defaults to n_outputs) or build the network with n_outputs={num_classes!r}."
            )
        num_classes = num_classes if num_classes is not None else n_outputs
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"num_classes must be an integer >= 2; got {num_classes!r}. Pass num_classes or give the network "
                "an integer n_outputs >= 2."
            )
        spec = getattr(self.network, "spec", None)
        self.save_hyperparameters(ignore=["network"])
        if spec is not None:
            self.hparams["network"] = spec  # load_from_checkpoint rebuilds the network from this
        self.metrics = nn.ModuleDict(
            {
                stage: MulticlassAccuracy(num_classes, average="micro", ignore_index=IGNORE_INDEX)
                for stage in ("train_acc", "val_acc", "test_acc")
            }
        )

    @_restricted_classmethod  # like Lightning's: calling it on an instance is an error
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> SpikingClassifier:
        """Lightning's ``load_from_checkpoint``; a broken local file (empty, truncated, text, not a Lightning
        checkpoint) raises :class:`~lightning_snn.checkpoint_io.CheckpointError` naming the file and the fault
        instead of a raw ``EOFError`` / ``KeyError`` / ``UnpicklingError``."""
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        except Exception as err:
            problem = diagnose_checkpoint(checkpoint_path, weights_only=kwargs.get("weights_only"))
            if problem is None:
                raise
            raise problem from err

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.hparams.readout == "per_step" and y.dim() != 2:
            raise ValueError(f"readout='per_step' needs per-step targets (T, B); got shape {tuple(y.shape)}.")
        flat_logits, flat_y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        if self.hparams.loss == "ce":
            return F.cross_entropy(flat_logits, flat_y, ignore_index=IGNORE_INDEX)
        keep = flat_y != IGNORE_INDEX
        onehot = F.one_hot(flat_y[keep], flat_logits.shape[-1]).to(flat_logits.dtype)
        return F.mse_loss(flat_logits[keep], onehot)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y, *rest = batch
        lengths = rest[0] if rest and self.hparams.get("mask_padding", True) else None
        logits = readout_logits(self(x), self.hparams.readout, lengths)
        loss = self._loss(logits, y)
        if stage == "train":
            loss = self._with_penalty(loss, batch_size=x.shape[1])
        metric = self.metrics[f"{stage}_acc"]
        metric(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        sync = stage != "train"
        self.log(f"{stage}_loss", loss, prog_bar=True, batch_size=x.shape[1], sync_dist=sync)
        self.log(f"{stage}_acc", metric, prog_bar=True, batch_size=x.shape[1])
        return loss

    def _with_penalty(self, loss: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The loss plus the network's penalties (:mod:`lightning_snn.penalties`), logged once per call."""
        penalty = network_penalty(self.network)
        if penalty is None:
            return loss
        self.log("train_penalty", penalty.detach(), batch_size=batch_size)
        return loss + penalty

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.hparams.get("tbptt_steps") is not None:
            return self._tbptt_step(batch)
        return self._step(batch, "train")

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    def _tbptt_step(self, batch: Any) -> torch.Tensor:
        """Truncated BPTT over one batch (see the module docstring): chunks of ``tbptt_steps``, detached state."""
        x, y, *rest = batch
        lengths = rest[0] if rest and self.hparams.get("mask_padding", True) else None
        k, steps, readout = self.hparams.tbptt_steps, x.shape[0], self.hparams.readout
        n_chunks = -(-steps // k)
        per_step = readout == "per_step"
        if per_step and y.dim() != 2:
            raise ValueError(f"readout='per_step' needs per-step targets (T, B); got shape {tuple(y.shape)}.")
        labelled = [True] * n_chunks
        if per_step:  # chunks without a labelled step take no optimiser step (every rank skips the same ones)
            has = F.pad((y != IGNORE_INDEX).any(1).int(), (0, n_chunks * k - steps)).view(n_chunks, k).amax(1)
            if self.trainer.world_size > 1:
                has = self.all_gather(has).amax(0)
            labelled = [bool(v) for v in has.tolist()]  # one host read per batch, outside forward/backward

        def whole_sequence(outputs: list[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
            if out.dim() == 2:  # the network pools over time itself, its pooling carried in the state
                return out
            return readout_logits(torch.cat([*outputs, out]), readout, lengths)

        state, outputs, losses = None, [], []
        for i in range(n_chunks):
            chunk = x[i * k : (i + 1) * k]
            if per_step or i == n_chunks - 1:
                out, state = self.network.forward_with_state(chunk, state)
                if per_step and labelled[i]:
                    loss = self._loss(out, y[i * k : (i + 1) * k])
                elif not per_step:
                    loss = self._loss(whole_sequence(outputs, out), y)
                if labelled[i]:
                    loss = self._with_penalty(loss, batch_size=x.shape[1])
                    self._optimizer_step(loss)
                    losses.append(loss.detach())
            else:  # whole-sequence readout: earlier chunks only advance the state
                with torch.no_grad():
                    out, state = self.network.forward_with_state(chunk, state)
            outputs.append(out.detach())
            state = stream.detach_state(state)
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.hparams.get("scheduler_interval", "step") == "step":
            scheduler.step()
        logits = torch.cat(outputs) if per_step else whole_sequence(outputs[:-1], outputs[-1])
        loss = torch.stack(losses).mean() if losses else x.new_zeros(())
        metric = self.metrics["train_acc"]
        metric(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.log("train_loss", loss, prog_bar=True, batch_size=x.shape[1])
        self.log("train_acc", metric, prog_bar=True, batch_size=x.shape[1])
        return loss

    def on_train_epoch_end(self) -> None:
        # manual optimisation (truncated BPTT) steps an epoch-interval scheduler itself
        if not self.automatic_optimization and self.hparams.get("scheduler_interval", "step") == "epoch":
            scheduler = self.lr_schedulers()
            if scheduler is not None:
                scheduler.step()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def parameter_groups(self) -> list[dict[str, Any]]:
        """One group per declared role (weights, τ, delays, thresholds), each with its own learning rate;
        weight decay on the weights only; with ``decay_norm_and_bias=False`` not on biases and normalisation
        layers either (a second group named ``"weight"``, so it follows the weights' schedule)."""
        hp = self.hparams
        rates = {
            "weight": hp.lr,
            "tau": hp.lr if hp.tau_lr is None else hp.tau_lr,  # 0.0 freezes τ
            "delay": 100 * hp.lr if hp.delay_lr is None else hp.delay_lr,
            "threshold": hp.lr,
        }
        groups: dict[str, list[nn.Parameter]] = {"weight": [], "tau": [], "delay": [], "threshold": []}
        roles = parameter_roles(self.network)
        undecayed = set() if hp.get("decay_norm_and_bias", True) else norm_and_bias_names(self.network)
        no_decay: list[nn.Parameter] = []
        for name, p in self.network.named_parameters():
            if p.requires_grad:
                group = ROLE_GROUPS[roles[name]]
                (no_decay if group == "weight" and name in undecayed else groups[group]).append(p)
        result = [
            {
                "params": ps,
                "lr": rates[role],
                "name": role,
                "weight_decay": hp.weight_decay if role == "weight" else 0.0,
            }
            for role, ps in groups.items()
            if ps
        ]
        if no_decay:  # a second weight group (same name: same schedule), without weight decay
            result.insert(1, {"params": no_decay, "lr": rates["weight"], "name": "weight", "weight_decay": 0.0})
        return result

    def configure_optimizers(self):
        groups = self.parameter_groups()
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        optimizer = opt_cls[self.hparams.optimizer](groups)
        kind = self.hparams.scheduler
        if kind == "none":
            return optimizer
        interval = self.hparams.get("scheduler_interval", "step")
        kwargs = dict(self.hparams.get("scheduler_kwargs") or {})
        if kind == "plateau":
            monitor = kwargs.pop("monitor", "val_loss")
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": monitor},
            }
        if interval == "epoch":
            total = self.trainer.max_epochs
            if total is None or total < 1:
                raise ValueError(
                    f"scheduler_interval='epoch' needs the Trainer's max_epochs (the schedule's length); got "
                    f"max_epochs={total!r}. Set trainer.max_epochs or use scheduler_interval='step'."
                )
        else:
            total = max(int(self.trainer.estimated_stepping_batches), 1)
        if kind == "cosine":  # T_max < total restarts the cosine (the PLIF code's T_max=64 over 1024 epochs)
            cosine = {"T_max": total, **kwargs}
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **cosine)
        elif kind == "multistep":  # lr × gamma at each milestone (hSNN: halved at epochs 26, 31, ..., 56)
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, **kwargs)
        elif kind == "onecycle":
            cfg = {**ONECYCLE_DEFAULTS, **kwargs}
            peaks = [cfg.pop("max_lr_factor") * group["lr"] for group in optimizer.param_groups]
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total, **cfg)
        else:  # a mapping {group: schedule}
            scheduler = GroupSchedules(optimizer, kind, max(total, 2), onecycle=kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
