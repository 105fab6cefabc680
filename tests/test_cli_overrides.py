"""``--ckpt_path`` and the CLI (issue 12, items 2, 3 and 10), with the real CLI: model settings that the
checkpoint's hyperparameters would silently replace are an error listing each one; the same command
without them resumes; data settings apply as given; a broken checkpoint is named; the CLI installs
:class:`AtomicCheckpointIO`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightning_snn.checkpoint_io import AtomicCheckpointIO, CheckpointError
from lightning_snn.cli import CheckpointOverrideError, checkpoint_conflicts, main


def cli_args(root: Path, *extra: str, epochs: int = 1) -> list[str]:
    return [
        "fit",
        "--config",
        "configs/mtsxor.yaml",
        "--trainer.max_epochs",
        str(epochs),
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.default_root_dir",
        str(root),
        "--test_after_fit",
        "false",
        "--data.init_args.n_train",
        "32",
        "--data.init_args.n_val",
        "16",
        "--data.init_args.n_test",
        "16",
        "--data.init_args.batch_size",
        "16",
        *extra,
    ]


@pytest.fixture(scope="module")
def last_ckpt(tmp_path_factory) -> Path:
    """last.ckpt of a real one-epoch CLI run of configs/mtsxor.yaml (lr 0.01, Adam, hidden [32, 32, 32])."""
    root = tmp_path_factory.mktemp("run")
    main(cli_args(root))
    return root / "checkpoints" / "last.ckpt"


def test_ckpt_path_with_conflicting_model_settings_is_an_error_listing_each(last_ckpt, tmp_path):
    """Before: exit 0, trained with the checkpoint's lr 0.01, Adam and hidden [32, 32, 32]."""
    overrides = [
        "--model.init_args.lr",
        "0.5",
        "--model.init_args.optimizer",
        "sgd",
        "--model.init_args.network.init_args.hidden",
        "[8]",
    ]
    with pytest.raises(CheckpointOverrideError) as err:
        main(cli_args(tmp_path, "--ckpt_path", str(last_ckpt), *overrides, epochs=2))
    msg = str(err.value)
    assert f"--ckpt_path {str(last_ckpt)!r}" in msg and "would silently replace 3 setting(s)" in msg
    assert "--model.init_args.lr: asked 0.5, the checkpoint has 0.01" in msg
    assert "--model.init_args.optimizer: asked 'sgd', the checkpoint has 'adam'" in msg
    assert "--model.init_args.network.init_args.hidden: asked [8], the checkpoint has [32, 32, 32]" in msg
    assert "drop these settings" in msg and "without --ckpt_path" in msg
    assert not (tmp_path / "checkpoints").exists()  # nothing trained


def test_ckpt_path_without_overrides_resumes_and_data_settings_apply(last_ckpt, tmp_path):
    """The same command resumes (class paths written differently, lightning_snn.FeedForwardSNN vs
    lightning_snn.models.feedforward.FeedForwardSNN, are the same class); data settings are not taken from
    the checkpoint, so a new batch size applies as given."""
    cli = main(cli_args(tmp_path, "--ckpt_path", str(last_ckpt), "--data.init_args.batch_size", "8", epochs=2))
    assert cli.trainer.current_epoch == 2 and cli.trainer.global_step == 2 + 4  # 32/16 then 32/8 steps
    assert cli.datamodule.batch_size == 8
    assert cli.model.hparams.lr == 0.01 and list(cli.model.network.spec["init_args"]["hidden"]) == [32, 32, 32]
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.parametrize("kind", ["half", "empty", "text"])
def test_cli_broken_ckpt_path_names_the_file(kind, last_ckpt, tmp_path):
    """Before: a raw RuntimeError / EOFError / KeyError from LightningCLI's torch.load."""
    path = tmp_path / f"{kind}.ckpt"
    data = last_ckpt.read_bytes()
    path.write_bytes({"half": data[: len(data) // 2], "empty": b"", "text": b"not a checkpoint\n"}[kind])
    with pytest.raises(CheckpointError, match=rf"Checkpoint '{re.escape(str(path))}' .* is (truncated|empty|a text)"):
        main(cli_args(tmp_path, "--ckpt_path", str(path)))


def test_cli_installs_atomic_checkpoint_io_unless_configured():
    cli = main(["--config", "configs/mtsxor.yaml"], run=False)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    cli = main(
        ["--config", "configs/mtsxor.yaml", "--trainer.plugins", "lightning.fabric.plugins.io.TorchCheckpointIO"],
        run=False,
    )
    assert type(cli.trainer.strategy.checkpoint_io).__name__ == "TorchCheckpointIO"


def test_checkpoint_conflicts_compares_settings_not_spellings():
    asked = {"class_path": "lightning_snn.FeedForwardSNN", "init_args": {"hidden": [8, 8], "tau": {"mean": 1.0}}}
    saved = {
        "class_path": "lightning_snn.models.feedforward.FeedForwardSNN",
        "init_args": {"hidden": (8, 8), "tau": {"mean": 1.0, "jitter": 0.0}},
    }
    assert checkpoint_conflicts(asked, saved) == []
    saved["init_args"]["tau"]["mean"] = 2.0
    assert checkpoint_conflicts(asked, saved) == [("model.init_args.tau.mean", 1.0, 2.0)]
    other = {"class_path": "lightning_snn.models.conv_snn.ConvSNN", "init_args": {}}
    assert checkpoint_conflicts(asked, other)[0][0] == "model.class_path"
