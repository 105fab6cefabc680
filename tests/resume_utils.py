"""Crash-and-resume equality, reusable by every capability's tests (τ, delays, rewiring, samplers).

Modelled on Lightning's weight-averaging resume test: one run trains ``max_epochs`` uninterrupted;
a second identical run raises ``"CRASH"`` right after epoch ``crash_after_epoch`` has finished and
been checkpointed (at the start of the next epoch, before any batch), and a *fresh* module, data
module, callbacks and ``Trainer`` then resume from that checkpoint with ``ckpt_path``. Both runs are
on CPU with ``deterministic=True`` and the same ``seed_everything``; the resumed run must end with
the same parameters, buffers, optimiser state, callback states and per-epoch metrics, bit for bit.

Usage::

    from resume_utils import assert_resume_equal, run_and_resume   # tests/ is on sys.path (conftest)

    result = run_and_resume(make_module, make_datamodule, make_callbacks, tmp_path)
    assert_resume_equal(result)          # or compare result.full / result.resumed yourself

``make_module()`` / ``make_datamodule()`` / ``make_callbacks()`` are called once per run (so each
run gets fresh objects); ``make_callbacks`` returns the capability's own stateful callbacks
(e.g. a σ schedule or a rewiring callback), whose ``state_dict()`` are compared too. The helper
adds a ``ModelCheckpoint`` (every epoch, ``last.ckpt``), :class:`RNGStateCheckpoint` (global RNG
in the checkpoint) and an epoch-metrics recorder to both runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from lightning_snn.callbacks.rng_state import RNGStateCheckpoint

CRASH_MESSAGE = "CRASH"


class CrashAfterEpoch(Callback):
    """Raise ``CRASH`` when epoch ``crash_after_epoch + 1`` starts, i.e. after epoch
    ``crash_after_epoch`` ran its end-of-epoch hooks and its checkpoint was written."""

    def __init__(self, crash_after_epoch: int) -> None:
        self.crash_after_epoch = crash_after_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.crash_after_epoch + 1:
            raise RuntimeError(CRASH_MESSAGE)


class EpochMetricsRecorder(Callback):
    """``history[epoch] = {name: float}`` of ``trainer.callback_metrics`` at every train epoch end."""

    def __init__(self) -> None:
        self.history: dict[int, dict[str, float]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.history[trainer.current_epoch] = {
            k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1
        }


@dataclass
class RunResult:
    """What one run ended with."""

    module: L.LightningModule
    trainer: L.Trainer
    metrics: dict[int, dict[str, float]]
    callback_states: list[dict[str, Any]] = field(default_factory=list)
    optimizer_states: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ResumeResult:
    full: RunResult
    resumed: RunResult
    checkpoint: Path
    crash_after_epoch: int


def _trainer(tmp: Path, callbacks: list[Callback], max_epochs: int, **kwargs: Any) -> L.Trainer:
    ckpt = ModelCheckpoint(dirpath=tmp / "checkpoints", save_top_k=-1, every_n_epochs=1, save_last=True)
    options = dict(
        accelerator="cpu",
        devices=1,
        deterministic=True,
        max_epochs=max_epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp),
    )
    options.update(kwargs)
    return L.Trainer(callbacks=[*callbacks, ckpt, RNGStateCheckpoint()], **options)


def _fit(
    make_module,
    make_datamodule,
    make_callbacks,
    tmp: Path,
    max_epochs: int,
    seed: int,
    extra: Sequence[Callback] = (),
    ckpt_path: str | None = None,
    **kwargs: Any,
) -> RunResult:
    L.seed_everything(seed, workers=True, verbose=False)
    module, datamodule, callbacks = make_module(), make_datamodule(), list(make_callbacks())
    recorder = EpochMetricsRecorder()
    trainer = _trainer(tmp, [*callbacks, recorder, *extra], max_epochs, **kwargs)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return RunResult(
        module,
        trainer,
        recorder.history,
        [cb.state_dict() for cb in callbacks],
        [opt.state_dict() for opt in trainer.optimizers],
    )


def run_and_resume(
    make_module: Callable[[], L.LightningModule],
    make_datamodule: Callable[[], L.LightningDataModule],
    make_callbacks: Callable[[], Sequence[Callback]] = list,
    tmp_path: Path | str = ".",
    max_epochs: int = 3,
    crash_after_epoch: int = 1,
    seed: int = 0,
    **trainer_kwargs: Any,
) -> ResumeResult:
    """Run uninterrupted, then crash after ``crash_after_epoch`` and resume; return both ends."""
    if not 0 <= crash_after_epoch < max_epochs - 1:
        raise ValueError(
            f"crash_after_epoch must be in [0, max_epochs - 1) = [0, {max_epochs - 1}), got {crash_after_epoch}; "
            "the crash must leave at least one epoch to resume."
        )
    tmp = Path(tmp_path)
    full = _fit(make_module, make_datamodule, make_callbacks, tmp / "full", max_epochs, seed, **trainer_kwargs)
    crash_dir = tmp / "crashed"
    try:
        _fit(
            make_module,
            make_datamodule,
            make_callbacks,
            crash_dir,
            max_epochs,
            seed,
            extra=[CrashAfterEpoch(crash_after_epoch)],
            **trainer_kwargs,
        )
    except RuntimeError as err:
        if str(err) != CRASH_MESSAGE:
            raise
    else:
        raise AssertionError("the crashing run did not crash")
    checkpoint = crash_dir / "checkpoints" / "last.ckpt"
    saved_epoch = torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]
    assert saved_epoch == crash_after_epoch, f"last.ckpt is from epoch {saved_epoch}, not {crash_after_epoch}"
    resumed = _fit(
        make_module,
        make_datamodule,
        make_callbacks,
        crash_dir,
        max_epochs,
        seed,
        ckpt_path=str(checkpoint),
        **trainer_kwargs,
    )
    return ResumeResult(full, resumed, checkpoint, crash_after_epoch)


def _assert_tree_equal(a: Any, b: Any, where: str) -> None:
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a!r} vs {b!r}"
        assert torch.equal(a, b), f"{where}: max |diff| = {(a.double() - b.double()).abs().max().item()}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            _assert_tree_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_tree_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{where}: nan vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_resume_equal(result: ResumeResult) -> None:
    """Parameters, buffers, optimiser and callback states, and the per-epoch metrics of every epoch
    the resumed run trained, are bit-for-bit equal to the uninterrupted run's."""
    full, resumed = result.full, result.resumed
    assert full.trainer.current_epoch == resumed.trainer.current_epoch
    assert full.trainer.global_step == resumed.trainer.global_step
    _assert_tree_equal(full.module.state_dict(), resumed.module.state_dict(), "state_dict")
    _assert_tree_equal(full.optimizer_states, resumed.optimizer_states, "optimizer")
    _assert_tree_equal(full.callback_states, resumed.callback_states, "callbacks")
    resumed_epochs = [e for e in resumed.metrics if e > result.crash_after_epoch]
    assert resumed_epochs, "the resumed run trained no epoch"
    for epoch in resumed_epochs:
        _assert_tree_equal(full.metrics[epoch], resumed.metrics[epoch], f"metrics[epoch {epoch}]")
