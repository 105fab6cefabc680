import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TemporalStatsLogger
from lightning_snn.call_statistics import CallStatistics
from lightning_snn.callbacks.temporal_stats import collect_statistics, summarise


def test_collect_statistics_per_layer():
    net = FeedForwardSNN(4, [3, 5], 2, tau=[2.0, 6.0], neuron={"per_neuron": True})
    stats = collect_statistics(net)
    assert set(stats["tau"]) == {"neurons.0", "neurons.1", "output"}
    assert torch.allclose(stats["tau"]["neurons.1"], torch.full((5,), 6.0), rtol=1e-5)
    assert "spike_rate" not in stats  # a per-call statistic: gathered through hooks, not kept by the neurons
    with CallStatistics(net) as recorder:
        net(torch.rand(6, 2, 4))
    assert stats.keys() == collect_statistics(net).keys() and set(recorder.means()["spike_rate"]) == {
        "neurons.0",
        "neurons.1",
    }


def test_summarise_values():
    s = summarise(torch.tensor([1.0, 2.0, 3.0]))
    assert s == pytest.approx({"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0})
    assert summarise(torch.tensor(0.25)) == {"value": 0.25}


def test_logs_tau_every_epoch_and_saves_plot(tmp_path):
    L.seed_everything(0)
    net = FeedForwardSNN(40, [8, 8], 2, tau=[3.0, 9.0], neuron={"decay_input": False})
    model = SpikingClassifier(net, readout="per_step")
    logger = CSVLogger(tmp_path)
    trainer = L.Trainer(
        max_epochs=2,
        logger=logger,
        callbacks=[TemporalStatsLogger()],
        enable_progress_bar=False,
        enable_checkpointing=False,
        limit_val_batches=0,
    )
    trainer.fit(model, MTSXORDataModule(n_train=64, n_val=32, n_test=32, batch_size=32))
    import csv

    rows = list(csv.DictReader(open(f"{logger.log_dir}/metrics.csv")))
    logged = [float(r["tau/network.neurons.1/mean"]) for r in rows if r.get("tau/network.neurons.1/mean")]
    assert len(logged) == 2
    assert logged[-1] == pytest.approx(net.neurons[1].tau.value.item(), rel=1e-5)
    assert any(r.get("spike_rate/network.neurons.0/mean") for r in rows)
    assert (tmp_path / "lightning_logs" / "version_0" / "tau_per_layer.png").stat().st_size > 1000
