"""The default experiment logger: W&B offline (no account, no network), or CSV when wandb is absent.

``WANDB_MODE=online`` (or ``--trainer.logger.init_args.offline=false``) switches W&B online; an offline
run is uploaded later with ``wandb sync <save_dir>/wandb/offline-run-*``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import warnings


def wandb_available() -> bool:
    return importlib.util.find_spec("wandb") is not None


def default_logger_config(save_dir: str = "logs", project: str = "lightning-snn") -> dict:
    """A LightningCLI ``trainer.logger`` value (class_path + init_args)."""
    if not wandb_available():
        warnings.warn("wandb is not installed; logging to CSV instead (pip install wandb for W&B).", stacklevel=2)
        return {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": save_dir}}
    offline = os.environ.get("WANDB_MODE", "offline") != "online"
    return {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"save_dir": save_dir, "project": project, "offline": offline},
    }


def default_logger(save_dir: str = "logs", project: str = "lightning-snn"):
    """The same logger as an object, for scripts that call ``Trainer.fit`` directly."""
    cfg = default_logger_config(save_dir, project)
    module, _, name = cfg["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**cfg["init_args"])
