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
  (Lightning's keywords ``last``, ``best``, ``hpc``, ``registry`` and URLs are passed through);
- ``--trainer.gradient_clip_val`` and ``--trainer.detect_anomaly`` are ordinary Trainer flags.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.cli import LightningCLI

from lightning_snn.callbacks.non_finite_guard import NonFiniteGuard
from lightning_snn.callbacks.rng_state import RNGStateCheckpoint
from lightning_snn.loggers import default_logger_config
from lightning_snn.summary import print_summary

CKPT_KEYWORDS = ("last", "best", "hpc", "registry")


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


class LightningSNNCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Run test after fit.")
        parser.add_argument(
            "--non_finite_guard",
            type=bool,
            default=True,
            help="Stop at the first non-finite loss, gradient or parameter (NonFiniteGuard).",
        )

    def before_instantiate_classes(self) -> None:
        if self.subcommand is not None:
            check_ckpt_path(self.config[self.subcommand].get("ckpt_path"))

    def _option(self, name: str, default):
        config = self.config[self.subcommand] if self.subcommand else self.config
        return config.get(name, default)

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        """The configured Trainer plus the default safety callbacks the config does not list."""
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
        trainer_defaults={"logger": default_logger_config()},
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )
