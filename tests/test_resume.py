"""Crash-and-resume equality for learned τ (issue 8): a run stopped after an epoch and resumed from
its checkpoint ends bit for bit where an uninterrupted run ends (parameters including every τ,
Adam moments, cosine schedule, per-epoch metrics). Shuffled training data and dropout make the
global RNG matter, so this also proves :class:`RNGStateCheckpoint` restores it."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from resume_utils import assert_resume_equal, run_and_resume

from lightning_snn.callbacks.rng_state import RNGStateCheckpoint, capture_rng_state, restore_rng_state
from lightning_snn.callbacks.temporal_stats import TemporalStatsLogger
from lightning_snn.data.mtsxor import MTSXORDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.feedforward import FeedForwardSNN


def make_module() -> SpikingClassifier:
    net = FeedForwardSNN(
        40,
        [16, 16],
        2,
        tau=[4.0, 12.0],
        dropout=0.1,
        learn_readout_tau=True,
        neuron={"per_neuron": True, "decay_input": False},
    )
    return SpikingClassifier(net, readout="per_step", lr=0.02, tau_lr=0.05)


def make_datamodule() -> MTSXORDataModule:
    return MTSXORDataModule(n_train=48, n_val=16, n_test=16, batch_size=16, seed=1)


def make_callbacks() -> list:
    return [TemporalStatsLogger(plot=False)]


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = capture_rng_state()
    a = (torch.rand(3), np.random.rand(2), random.random())
    restore_rng_state(state)
    b = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_rng_state_rejects_foreign_state():
    with pytest.raises(ValueError, match="expected 'rng'"):
        RNGStateCheckpoint().load_state_dict({"other": 1})


@pytest.mark.slow
def test_tau_resume_is_bitwise_equal(tmp_path):
    result = run_and_resume(make_module, make_datamodule, make_callbacks, tmp_path, max_epochs=3, crash_after_epoch=0)
    assert_resume_equal(result)
    full = result.full.module
    taus = {n: p for n, p in full.named_parameters() if ".tau." in n}
    assert len(taus) == 3  # two hidden layers + the learned readout τ
    start = make_module()  # τ must have moved, else equality proves nothing
    assert any(not torch.equal(p, dict(start.named_parameters())[n]) for n, p in taus.items())
    assert result.full.metrics[2]["val_acc"] == result.resumed.metrics[2]["val_acc"]


class EpochHookCounter(L.Callback):
    """Stateful like a σ schedule or a rewiring callback: counts its epoch hooks."""

    def __init__(self) -> None:
        self.starts, self.ends = 0, 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.ends += 1

    def state_dict(self) -> dict:
        return {"starts": self.starts, "ends": self.ends}

    def load_state_dict(self, state: dict) -> None:
        self.starts, self.ends = state["starts"], state["ends"]


class TrainOnlyMTSXOR(MTSXORDataModule):
    """No validation loop: the checkpoint is then written at train-epoch end instead of validation end."""

    val_dataloader = L.LightningDataModule.val_dataloader


@pytest.mark.slow
@pytest.mark.parametrize("with_validation", [True, False])
def test_epoch_hooks_run_once_per_epoch_across_a_resume(tmp_path, with_validation):
    """Stateful callbacks that act at epoch boundaries (σ schedules, rewiring) see every epoch hook
    exactly once across crash + resume, whichever hook wrote the checkpoint."""
    data = (
        make_datamodule
        if with_validation
        else (lambda: TrainOnlyMTSXOR(n_train=48, n_val=16, n_test=16, batch_size=16, seed=1))
    )
    result = run_and_resume(
        make_module, data, lambda: [EpochHookCounter()], tmp_path, max_epochs=3, crash_after_epoch=0
    )
    assert_resume_equal(result)
    assert result.resumed.callback_states == [{"starts": 3, "ends": 3}]
    assert ("val_acc" in result.full.metrics[2]) is with_validation


@pytest.mark.slow
def test_resume_without_rng_checkpoint_would_differ(tmp_path, monkeypatch):
    """Control: with the RNG restore disabled the shuffling order differs after the resume, so the
    equality above is a real check of the restored state."""
    monkeypatch.setattr(RNGStateCheckpoint, "load_state_dict", lambda self, state: None)
    result = run_and_resume(make_module, make_datamodule, make_callbacks, tmp_path, max_epochs=3, crash_after_epoch=0)
    with pytest.raises(AssertionError):
        assert_resume_equal(result)


@pytest.mark.slow
def test_cli_resume_from_last_checkpoint_is_bitwise_equal(tmp_path):
    """The user's path: ``python -m lightning_snn fit --config configs/mtsxor.yaml --ckpt_path
    .../last.ckpt`` after a crash ends where the uninterrupted CLI run ends (the CLI adds
    RNGStateCheckpoint; the config's ModelCheckpoint writes last.ckpt)."""
    from lightning_snn.cli import main

    def cli(root, *extra):
        return main(
            [
                "fit",
                "--config",
                "configs/mtsxor.yaml",
                "--trainer.max_epochs",
                "3",
                "--trainer.logger",
                "false",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.deterministic",
                "true",
                "--trainer.default_root_dir",
                str(root),
                "--test_after_fit",
                "false",
                "--data.init_args.n_train",
                "48",
                "--data.init_args.n_val",
                "16",
                "--data.init_args.n_test",
                "16",
                "--data.init_args.batch_size",
                "16",
                "--model.init_args.network.init_args.hidden",
                "[12, 12]",
                *extra,
            ]
        )

    full = cli(tmp_path / "full")
    with pytest.raises(RuntimeError, match="CRASH"):
        cli(
            tmp_path / "crash",
            "--trainer.callbacks+=resume_utils.CrashAfterEpoch",
            "--trainer.callbacks.crash_after_epoch=0",
        )
    last = tmp_path / "crash" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    resumed = cli(tmp_path / "crash", "--ckpt_path", str(last))
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert full.trainer.callback_metrics["val_acc"] == resumed.trainer.callback_metrics["val_acc"]
