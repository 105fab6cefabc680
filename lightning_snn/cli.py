"""``python -m lightning_snn fit --config configs/<x>.yaml``: LightningCLI with subclass mode.

``model`` is any LightningModule (normally :class:`~lightning_snn.lit.SpikingClassifier` with a
``network`` class_path) and ``data`` any LightningDataModule. After ``fit`` the CLI runs ``test`` on
the best checkpoint (``--test_after_fit false`` skips it) and prints the test accuracy and τ per layer.

Training-time safety, on by default:

- :class:`~lightning_snn.callbacks.rng_state.RNGStateCheckpoint` is always added (unless the config
  already lists it), so ``--ckpt_path .../last.ckpt`` resumes bit for bit;
- :class:`~lightning_snn.callbacks.non_finite_guard.NonFiniteGuard` is added unless the config lists
  one (to set its options) or ``--non_finite_guard false``;
- ``--ckpt_path`` naming a file that does not exist fails at once with a ``FileNotFoundError``
  (Lightning's keywords ``last``, ``best``, ``hpc``, ``registry`` and URLs are passed through), and a
  broken file (empty, truncated, text, not a Lightning checkpoint) with a
  :class:`~lightning_snn.checkpoint_io.CheckpointError` naming it;
- ``--ckpt_path`` with model settings that differ from the checkpoint's hyperparameters (which
  LightningCLI would silently put back, e.g. ``--model.init_args.lr``) fails before training with a
  :class:`CheckpointOverrideError` listing each setting, the asked value and the checkpoint's value;
  data settings are not taken from the checkpoint and apply as given;
- checkpoints are written by :class:`~lightning_snn.checkpoint_io.AtomicCheckpointIO` (unless
  ``trainer.plugins`` lists a CheckpointIO), so a kill during a save never truncates ``last.ckpt``;
- ``--trainer.gradient_clip_val`` and ``--trainer.detect_anomaly`` are ordinary Trainer flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.cli import LightningCLI

from lightning_snn.callbacks.non_finite_guard import NonFiniteGuard
from lightning_snn.callbacks.rng_state import RNGStateCheckpoint
from lightning_snn.checkpoint_io import AtomicCheckpointIO, read_checkpoint
from lightning_snn.class_path import import_class
from lightning_snn.loggers import default_logger_config
from lightning_snn.summary import print_summary

CKPT_KEYWORDS = ("last", "best", "hpc", "registry")
#: Where the CLI's runs go: the logger's ``save_dir`` and the Trainer's ``default_root_dir``.
DEFAULT_LOG_DIR = "logs"


def check_ckpt_path(ckpt_path: str | None) -> None:
    """Raise ``FileNotFoundError`` naming ``ckpt_path`` when it is a local path that does not exist."""
    if not ckpt_path:
        return
    path = str(ckpt_path)
    if path in CKPT_KEYWORDS or path.startswith("registry:") or "://" in path:
        return
    if not Path(path).is_file():
        where = "a directory, not a file" if Path(path).is_dir() else "not found"
        raise FileNotFoundError(
            f"--ckpt_path {path!r} ({Path(path).resolve()}) is {where}. Give an existing .ckpt file "
            "(e.g. <default_root_dir>/.../checkpoints/last.ckpt), 'last' to resume the latest checkpoint "
            "of this run's ModelCheckpoint, or drop --ckpt_path to start from scratch."
        )


class CheckpointOverrideError(ValueError):
    """``--ckpt_path`` together with model settings that the checkpoint's hyperparameters would replace."""


def _same_class(a: Any, b: Any) -> bool:
    try:
        return import_class(a) is import_class(b)
    except ValueError:
        return a == b


def checkpoint_conflicts(asked: Any, saved: Any, name: str = "model") -> list[tuple[str, Any, Any]]:
    """``(setting, asked value, checkpoint value)`` for each setting of the parsed config ``asked`` that the
    checkpoint's value ``saved`` would replace. Both are plain values in config form (``class_path`` /
    ``init_args`` dicts); a key present on one side only is no conflict (its value is not replaced)."""
    if isinstance(asked, dict) and isinstance(saved, dict):
        conflicts = []
        both = "class_path" in asked and "class_path" in saved
        if both and not _same_class(asked["class_path"], saved["class_path"]):
            return [(f"{name}.class_path", asked["class_path"], saved["class_path"])]
        for key in asked:
            if key != "class_path" and key in saved:
                conflicts += checkpoint_conflicts(asked[key], saved[key], f"{name}.{key}")
        return conflicts
    if isinstance(asked, (list, tuple)) and isinstance(saved, (list, tuple)):
        same = len(asked) == len(saved) and all(
            not checkpoint_conflicts(a, b) for a, b in zip(asked, saved, strict=True)
        )
        return [] if same else [(name, list(asked), list(saved))]
    return [] if asked == saved else [(name, asked, saved)]


def check_ckpt_overrides(ckpt_path: str, model_config: dict[str, Any], hparams: dict[str, Any]) -> None:
    """Raise :class:`CheckpointOverrideError` listing every model setting of this command (``model_config``,
    the parsed ``model`` section) that the checkpoint's ``hyper_parameters`` would silently replace."""
    hparams = {k: v for k, v in hparams.items() if k != "_instantiator"}
    if "_class_path" in hparams:
        class_path = hparams.pop("_class_path")
        hparams = {"class_path": class_path, "init_args": hparams}
    asked = model_config if "class_path" in model_config else {"init_args": model_config}
    if "class_path" not in hparams:
        hparams = {"init_args": hparams}
    conflicts = checkpoint_conflicts(asked, hparams)
    if not conflicts:
        return
    lines = "\n".join(f"  --{name}: asked {a!r}, the checkpoint has {b!r}" for name, a, b in conflicts)
    raise CheckpointOverrideError(
        f"--ckpt_path {ckpt_path!r} restores the model's hyperparameters from the checkpoint, which would silently "
        f"replace {len(conflicts)} setting(s) of this command:\n{lines}\n"
        "A resumed run continues the checkpoint's run (its weights, optimiser and schedule state), so it cannot "
        "take new model settings. To resume, drop these settings (or set them to the checkpoint's values). To "
        "train with them, start a new run without --ckpt_path (a script can start from the checkpoint's weights "
        "with SpikingClassifier.load_from_checkpoint(path, lr=...))."
    )


class LightningSNNCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Run test after fit.")
        parser.add_argument(
            "--non_finite_guard",
            type=bool,
            default=True,
            help="Stop at the first non-finite loss, gradient or parameter (NonFiniteGuard).",
        )

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check ``--ckpt_path`` before LightningCLI reads the checkpoint's hyperparameters into
        the config: missing or broken file, or model settings the checkpoint would replace."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        ckpt_path = self.config[subcommand].get("ckpt_path")
        check_ckpt_path(ckpt_path)
        if ckpt_path and Path(ckpt_path).is_file():
            checkpoint = read_checkpoint(ckpt_path, weights_only=True)  # as LightningCLI loads it
            model = self.config[subcommand].get("model")
            hparams = checkpoint.get("hyper_parameters") or {}
            if model is not None and hparams:
                model_config = model.as_dict() if hasattr(model, "as_dict") else model
                if isinstance(model_config, dict):
                    check_ckpt_overrides(ckpt_path, model_config, dict(hparams))

    def _option(self, name: str, default):
        config = self.config[self.subcommand] if self.subcommand else self.config
        return config.get(name, default)

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        """The configured Trainer plus the default safety callbacks the config does not list, and
        :class:`AtomicCheckpointIO` unless ``trainer.plugins`` lists a CheckpointIO."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer_config = config.get("trainer", {})
        callbacks = trainer_config.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        present = {type(cb) for cb in callbacks}
        if RNGStateCheckpoint not in present:
            callbacks.append(RNGStateCheckpoint())
        if self._option("non_finite_guard", True) and NonFiniteGuard not in present:
            callbacks.append(NonFiniteGuard())
        trainer_config["callbacks"] = callbacks
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        trainer_config["plugins"] = plugins
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        if not self.config[self.subcommand].get("test_after_fit", True):
            return
        if self.trainer.fast_dev_run:
            metrics = self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        else:
            callback = self.trainer.checkpoint_callback
            ckpt = "best" if callback and callback.best_model_path else None
            metrics = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt, verbose=False)
        if self.trainer.is_global_zero:
            print_summary(self.model, metrics[0] if metrics else {})


def main(args: list[str] | None = None, run: bool = True) -> LightningSNNCLI:
    return LightningSNNCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        # default_root_dir: the logger's directory, so that a run without a logger (--trainer.logger false,
        # fast_dev_run) writes its checkpoints and figures there too, never into the current directory.
        trainer_defaults={"logger": default_logger_config(DEFAULT_LOG_DIR), "default_root_dir": DEFAULT_LOG_DIR},
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
