"""``python -m lightning_snn fit --config configs/<x>.yaml``: LightningCLI with subclass mode.

``model`` is any LightningModule (normally :class:`~lightning_snn.lit.SpikingClassifier` with a
``network`` class_path) and ``data`` any LightningDataModule. After ``fit`` the CLI runs ``test`` on
the best checkpoint (``--test_after_fit false`` skips it) and prints the test accuracy and τ per layer.
"""
from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

from lightning_snn.loggers import default_logger_config
from lightning_snn.summary import print_summary


class LightningSNNCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Run test after fit.")

    def after_fit(self) -> None:
        if not self.config[self.subcommand].get("test_after_fit", True):
            return
        if self.trainer.fast_dev_run:
            metrics = self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        else:
            ckpt = "best" if self.trainer.checkpoint_callback and self.trainer.checkpoint_callback.best_model_path else None
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
