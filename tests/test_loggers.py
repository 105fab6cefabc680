"""W&B logging (issue 8): offline by default with no network or login, switched online by
``WANDB_MODE=online`` or ``--trainer.logger.init_args.offline=false``, CSV fallback with one warning
when wandb is missing, and the offline run file holds TemporalStatsLogger's τ scalars (equal to the
trained model's τ) and histograms. The offline ``.wandb`` file is a LevelDB-style log of protobuf
records; :func:`wandb_records` reads it (wandb 0.2x+ ships no public reader)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

import lightning_snn.loggers as loggers
from lightning_snn.callbacks.temporal_stats import TemporalStatsLogger
from lightning_snn.cli import main
from lightning_snn.data.mtsxor import MTSXORDataModule
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.feedforward import FeedForwardSNN

BLOCK, HEADER = 32768, 7  # LevelDB log format used by W&B transaction files


def wandb_records(path: Path) -> list:
    """The protobuf ``Record``s of a ``run-*.wandb`` transaction log."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending, records = HEADER, b"", []
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if pos + HEADER + length > len(data):  # a record still being written
            break
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # FULL or LAST chunk
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wait_until_written(path: Path, timeout: float = 60.0) -> Path:
    """``wandb.finish()`` can return before wandb-core has flushed an offline run: wait for its
    ``exit`` record and a stable file size."""
    deadline, size = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        kinds = {r.WhichOneof("record_type") for r in wandb_records(path)}
        if "exit" in kinds and path.stat().st_size == size:
            return path
        size = path.stat().st_size
        time.sleep(0.25)
    raise TimeoutError(f"{path} was not completely written within {timeout} s")


def history(path: Path) -> dict[str, object]:
    """All logged history values, last value per key (nested keys joined with '/')."""
    out: dict[str, object] = {}
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


def test_offline_is_the_default(wandb_env):
    cfg = loggers.default_logger_config("runs")
    assert cfg["class_path"].endswith("WandbLogger") and cfg["init_args"]["offline"] is True


@pytest.mark.parametrize(
    ("mode", "offline"), [("online", False), ("ONLINE", False), ("offline", True), ("disabled", True)]
)
def test_wandb_mode_switches_online(wandb_env, monkeypatch, mode, offline):
    monkeypatch.setenv("WANDB_MODE", mode)
    assert loggers.default_logger_config()["init_args"]["offline"] is offline


def test_cli_flag_switches_online(wandb_env):
    cli = main(["--config", "configs/mtsxor.yaml"], run=False)
    assert isinstance(cli.trainer.logger, WandbLogger) and cli.trainer.logger._offline is True
    cli = main(["--config", "configs/mtsxor.yaml", "--trainer.logger.init_args.offline=false"], run=False)
    assert isinstance(cli.trainer.logger, WandbLogger) and cli.trainer.logger._offline is False


def test_csv_fallback_when_wandb_is_missing(tmp_path, monkeypatch):
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(
        loggers.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.warns(UserWarning) as caught:
        logger = loggers.default_logger(str(tmp_path))
    assert isinstance(logger, CSVLogger) and logger.save_dir == str(tmp_path)
    messages = [str(w.message) for w in caught]
    assert messages == [loggers.CSV_FALLBACK_WARNING] and "\n" not in messages[0]
    with warnings.catch_warnings(record=True):
        cli = main(["--config", "configs/mtsxor.yaml"], run=False)
    assert isinstance(cli.trainer.logger, CSVLogger)


@pytest.mark.slow
def test_offline_run_holds_tau_scalars_and_histograms(wandb_env):
    import wandb

    net = FeedForwardSNN(40, [8, 8], 2, tau=[3.0, 6.0], neuron={"per_neuron": True})
    module = SpikingClassifier(net, readout="per_step", lr=0.02)
    logger = loggers.default_logger(str(wandb_env / "logs"))
    assert isinstance(logger, WandbLogger)
    trainer = L.Trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[TemporalStatsLogger(plot=False)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(module, datamodule=MTSXORDataModule(n_train=32, n_val=16, n_test=8, batch_size=16))
    finally:
        wandb.finish()
    runs = list((wandb_env / "logs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1, runs
    logged = history(wait_until_written(runs[0]))
    for layer, tau in (
        ("network.neurons.0", net.neurons[0].tau.value),
        ("network.neurons.1", net.neurons[1].tau.value),
    ):
        assert logged[f"tau/{layer}/mean"] == pytest.approx(tau.mean().item(), rel=1e-6)
        assert logged[f"tau/{layer}/min"] == pytest.approx(tau.min().item(), rel=1e-6)
        assert logged[f"tau/{layer}/hist/_type"] == "histogram"
        assert sum(logged[f"tau/{layer}/hist/values"]) == 8  # one count per neuron
    assert "tau/network.output/mean" in logged and "spike_rate/network.neurons.0/mean" in logged
    assert logged["val_acc"] == pytest.approx(trainer.callback_metrics["val_acc"].item())
