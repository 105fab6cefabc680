"""DDP equals single-process training (issue 8), with 2 CPU processes (gloo, ``ddp_spawn``).

- Training: 2 ranks × per-rank batch ``b`` with Lightning's injected ``DistributedSampler``
  (shuffled, seed + epoch) take the same optimiser steps as one process with batch ``2b`` that
  draws the same permutation (a ``DistributedSampler`` with one replica): after 2 epochs every
  weight and every τ agree to float32 rounding (the only difference is the order of the gradient
  sum), Adam and the cosine schedule included.
- Validation with an odd ``n_val``: Lightning's default ``DistributedSampler`` pads by repeating a
  sample (counted twice: ``n_val + 1``); ``UnrepeatedDistributedSampler`` on the evaluation loaders
  counts every sample once, and the torchmetrics accuracy then equals the single-process one
  exactly (the sums of true positives are integers).
- Safety: a NaN loss on rank 1 only stops the DDP run with NonFiniteError and its message, with no
  hang (the guard reduces its decision over ranks, so every rank raises at the same step;
  ``test_safety.py`` checks that the guard obeys the reduced decision).
"""

from __future__ import annotations

import math
from datetime import timedelta

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from torchmetrics import SumMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_snn.callbacks.non_finite_guard import NonFiniteGuard
from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.loaders import eval_dataloader
from lightning_snn.data.mtsxor import MTSXORDataModule
from lightning_snn.lit.classifier import IGNORE_INDEX, SpikingClassifier, readout_logits
from lightning_snn.models.feedforward import FeedForwardSNN

PER_RANK_BATCH, N_TRAIN, N_VAL, EPOCHS, SEED = 16, 64, 37, 2, 0


class Data(MTSXORDataModule):
    """MTS-XOR with two validation loaders: ``0`` unrepeated (exact), ``1`` plain (Lightning pads it).

    ``reference=True`` is the single-process run: one replica of the same shuffled permutation."""

    def __init__(self, batch_size: int, reference: bool) -> None:
        super().__init__(n_train=N_TRAIN, n_val=N_VAL, n_test=8, batch_size=batch_size, seed=3)
        self.reference = reference

    def train_dataloader(self) -> DataLoader:
        if not self.reference:
            return super().train_dataloader()  # shuffle=True: Lightning injects DistributedSampler
        sampler = DistributedSampler(self.splits["train"], num_replicas=1, rank=0, shuffle=True, seed=SEED)
        return DataLoader(self.splits["train"], self.hparams.batch_size, sampler=sampler, collate_fn=time_major_collate)

    def val_dataloader(self) -> list[DataLoader]:
        plain = DataLoader(self.splits["val"], batch_size=8, collate_fn=time_major_collate)
        return [eval_dataloader(self.splits["val"], 8), plain]


class CountingClassifier(SpikingClassifier):
    """SpikingClassifier that, per validation loader, counts samples and accuracy with torchmetrics."""

    def __init__(self, **kwargs) -> None:
        net = FeedForwardSNN(40, [12, 12], 2, tau=[3.0, 9.0], neuron={"per_neuron": True}, learn_readout_tau=True)
        super().__init__(net, readout="per_step", lr=0.02, tau_lr=0.05, **kwargs)
        self.seen = nn.ModuleList(SumMetric() for _ in range(2))
        self.accs = nn.ModuleList(MulticlassAccuracy(2, average="micro", ignore_index=IGNORE_INDEX) for _ in range(2))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        logits = readout_logits(self(x), "per_step")
        self.seen[dataloader_idx](torch.tensor(float(x.shape[1])))
        self.accs[dataloader_idx](logits.reshape(-1, 2), y.reshape(-1))
        self.log("samples", self.seen[dataloader_idx], add_dataloader_idx=True)
        self.log("acc", self.accs[dataloader_idx], add_dataloader_idx=True)


def train(devices: int, tmp_path, **module_kwargs) -> tuple[CountingClassifier, dict[str, float]]:
    L.seed_everything(SEED, verbose=False)
    module = CountingClassifier(**module_kwargs)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_epochs=EPOCHS,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=[NonFiniteGuard()],
    )
    data = Data(PER_RANK_BATCH * (2 if devices == 1 else 1), reference=devices == 1)
    trainer.fit(module, datamodule=data)
    if devices == 1 and not module_kwargs:  # (ddp_spawn does not send the loop state back to the main process)
        assert trainer.global_step == EPOCHS * N_TRAIN // (2 * PER_RANK_BATCH)
    return module, {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_equals_single_process(tmp_path):
    single, single_metrics = train(1, tmp_path / "single")
    ddp, ddp_metrics = train(2, tmp_path / "ddp")

    start = CountingClassifier().state_dict()
    for name, value in single.state_dict().items():
        other = ddp.state_dict()[name]
        torch.testing.assert_close(other, value, rtol=1e-5, atol=1e-6, msg=f"{name} differs under DDP")
    taus = [n for n in single.state_dict() if ".tau." in n]
    assert len(taus) == 3 and all(not torch.equal(single.state_dict()[n], start[n]) for n in taus)

    # Evaluation: each sample once with the unrepeated sampler, once extra with Lightning's padding.
    assert single_metrics["samples/dataloader_idx_0"] == single_metrics["samples/dataloader_idx_1"] == N_VAL
    assert ddp_metrics["samples/dataloader_idx_0"] == N_VAL
    assert ddp_metrics["samples/dataloader_idx_1"] == N_VAL + 1  # DistributedSampler repeated one sample
    assert ddp_metrics["acc/dataloader_idx_0"] == single_metrics["acc/dataloader_idx_0"]


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_equals_single_process_with_truncated_bptt(tmp_path):
    """Truncated BPTT (manual optimisation, one step per labelled chunk, chunk skipping agreed over
    ranks) takes the same steps on 2 ranks as in one process."""
    single, _ = train(1, tmp_path / "single", tbptt_steps=25)
    ddp, _ = train(2, tmp_path / "ddp", tbptt_steps=25)
    start = CountingClassifier().state_dict()
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=f"{name} differs")
    assert not torch.equal(single.state_dict()["network.neurons.0.tau.raw"], start["network.neurons.0.tau.raw"])


class NaNOnRank1(CountingClassifier):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * math.nan if (self.global_rank == 1 and self.global_step == 1) else loss


@pytest.mark.slow
@pytest.mark.ddp
def test_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    # A 60 s collective timeout turns a would-be deadlock into a failure instead of a hung CI job.
    strategy = DDPStrategy(start_method="spawn", timeout=timedelta(seconds=60))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=[NonFiniteGuard()],
    )
    with pytest.raises(Exception, match="NonFiniteError: NonFiniteGuard: .* at epoch 0, global step 1") as err:
        trainer.fit(NaNOnRank1(), datamodule=Data(PER_RANK_BATCH, reference=False))
    assert "Timeout" not in str(err.value) and "timed out" not in str(err.value)
