"""The default experiment logger: W&B offline (no account, no network), or CSV when wandb is absent.

- Offline is the default: runs are written to ``<save_dir>/wandb/offline-run-*`` and uploaded later
  with ``wandb sync <save_dir>/wandb/offline-run-*`` (after ``wandb login``).
- ``WANDB_MODE=online`` in the environment, or ``--trainer.logger.init_args.offline=false`` on the
  command line, logs online instead.
- Without wandb installed, a ``CSVLogger`` in ``save_dir`` is used, with a one-line warning.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

CSV_FALLBACK_WARNING = "wandb is not installed; logging to CSV instead (pip install wandb for W&B)."


def wandb_available() -> bool:
    return importlib.util.find_spec("wandb") is not None


def wandb_offline() -> bool:
    """Offline unless the environment says ``WANDB_MODE=online``."""
    return os.environ.get("WANDB_MODE", "offline").strip().lower() != "online"


def default_logger_config(save_dir: str = "logs", project: str = "lightning-snn") -> dict:
    """A LightningCLI ``trainer.logger`` value (class_path + init_args)."""
    if not wandb_available():
        warnings.warn(CSV_FALLBACK_WARNING, stacklevel=2)
        return {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": save_dir}}
    return {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"save_dir": save_dir, "project": project, "offline": wandb_offline()},
    }


def default_logger(save_dir: str = "logs", project: str = "lightning-snn"):
    """The same logger as an object, for scripts that call ``Trainer.fit`` directly."""
    cfg = default_logger_config(save_dir, project)
    module, _, name = cfg["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**cfg["init_args"])


def run_directory(trainer) -> str:
    """The directory of this run, where figures and other end-of-fit artefacts belong: the folder that holds
    the run's ``checkpoints/`` when ``ModelCheckpoint`` chooses it (``<save_dir>/<name>/<version>`` of the
    first logger, as Lightning resolves it), or ``trainer.default_root_dir`` without a logger. Unlike
    ``trainer.log_dir`` it is per run for a ``WandbLogger`` too (``<save_dir>/<project>/<run id>``)."""
    loggers = getattr(trainer, "loggers", None) or []
    if not loggers:
        return str(trainer.default_root_dir)
    logger = loggers[0]
    save_dir = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
    name, version = logger.name, logger.version
    version = version if isinstance(version, str) else f"version_{version}"
    return os.path.join(str(save_dir), str(name or ""), version or "")
