"""A CLI run writes every artefact (checkpoints, figures, config, logger files) under its log directory,
never into the directory it was started from."""

from pathlib import Path

import pytest

from lightning_snn.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATA = [
    "--data.init_args.n_train",
    "64",
    "--data.init_args.n_val",
    "32",
    "--data.init_args.n_test",
    "32",
    "--data.init_args.batch_size",
    "32",
]


def created(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


@pytest.mark.parametrize("logger", ["default", "false"])
def test_fast_dev_run_leaves_nothing_outside_its_log_directory(logger, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["fit", "--config", str(ROOT / "configs" / "mtsxor.yaml"), "--trainer.fast_dev_run", "true", *SMALL_DATA]
    if logger == "false":
        args += ["--trainer.logger", "false"]
    main(args)
    assert "test accuracy:" in capsys.readouterr().out
    assert created(tmp_path) == {"logs"}
    figures = sorted(p.name for p in (tmp_path / "logs").rglob("*.png"))
    assert "tau_per_layer.png" in figures, figures


def test_short_fit_puts_checkpoints_and_figures_in_the_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        str(ROOT / "configs" / "mtsxor.yaml"),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.limit_test_batches",
        "1",
        "--trainer.logger",
        "false",
        *SMALL_DATA,
    ]
    main(args)
    capsys.readouterr()
    assert created(tmp_path) == {"logs"}
    assert (tmp_path / "logs" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "logs" / "tau_per_layer.png").is_file()
