"""Two CPU processes (gloo, ddp_spawn) take identical rewiring decisions."""

from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from test_rewiring import tiny_data, tiny_model

from lightning_snn.callbacks.rewiring import Rewiring

# Lightning warns about tiny loaders (few workers, few batches per epoch): scoped to this module.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class SaveRewiringState(Callback):
    """Each rank writes its masks, signs, counters and weights to ``<dir>/rank<r>.pt`` at fit end."""

    def __init__(self, directory: str, rewirings: list[Rewiring]) -> None:
        self.directory, self.rewirings = directory, rewirings

    def on_fit_end(self, trainer, pl_module) -> None:
        state = {
            "masks": [r.masks for r in self.rewirings],
            "signs": [r.signs for r in self.rewirings],
            "rewired": [{n: layer.rewired_total for n, layer in r._layers.items()} for r in self.rewirings],
            "steps": [r.steps for r in self.rewirings],
            "weights": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
        }
        torch.save(state, f"{self.directory}/rank{trainer.global_rank}.pt")


class TinyData(L.LightningDataModule):
    """The data are built in each process (a DataLoader of tensors would be pickled to the ranks)."""

    def train_dataloader(self):
        return tiny_data(n=128)


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ranks_take_identical_rewiring_decisions(tmp_path):
    rigl = Rewiring(sparsity=0.8, sign="fixed", regrow="rigl", layers=["network.synapses.0.synapse"])
    random = Rewiring(sparsity=0.7, sign="free", regrow="random", layers=["network.output_synapse"], seed=3)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[rigl, random, SaveRewiringState(str(tmp_path), [rigl, random])],
    )
    trainer.fit(tiny_model(lr=0.3), TinyData())
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == [12, 12]  # 128 samples / (16 per rank × 2 ranks) × 3 epochs
    assert r0["rewired"] == r1["rewired"]
    assert all(n > 0 for per_cb in r0["rewired"] for n in per_cb.values())  # decisions were taken
    for key in ("masks", "signs"):
        for a, b in zip(r0[key], r1[key]):
            for name in a:
                assert torch.equal(a[name], b[name]), (key, name)
    assert int(r0["masks"][0]["network.synapses.0.synapse"].sum()) == 32  # round(0.2 · 160)
    assert int(r0["masks"][1]["network.output_synapse"].sum()) == 10  # round(0.3 · 32)
    for name, w in r0["weights"].items():
        assert torch.equal(w, r1["weights"][name]), name
