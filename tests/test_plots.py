"""The figures written at the end of fit: units, τ over epochs per layer, a spike raster, in the run's
directory; the τ history survives a resume."""

from types import SimpleNamespace

import lightning as L
import matplotlib
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TemporalStatsLogger
from lightning_snn.callbacks.temporal_stats import datamodule_step_ms, in_steps, label_axis, layer_dt, module_step_ms
from lightning_snn.loggers import run_directory

matplotlib.use("Agg")

FIGURES = [
    "tau_per_layer.png",
    "tau_over_epochs.png",
    "spike_rate_per_layer.png",
    "spike_rate_over_epochs.png",
    "spike_raster.png",
]


def data():
    return MTSXORDataModule(n_train=64, n_val=32, n_test=32, batch_size=32)


def model(dt=1.0):
    L.seed_everything(0)
    # τ in the units of dt: with dt = 1 ms (in seconds) these are 3 and 9 steps
    net = FeedForwardSNN(40, [8, 8], 2, tau=[3.0 * dt, 9.0 * dt], neuron={"decay_input": False, "dt": dt})
    return SpikingClassifier(net, readout="per_step")


def trainer(root, epochs, callbacks, logger=None):
    return L.Trainer(
        max_epochs=epochs,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
    )


def test_figures_in_the_run_directory_with_tau_in_steps_over_epochs(tmp_path):
    m = model(dt=1e-3)
    stats = TemporalStatsLogger()
    logger = CSVLogger(tmp_path / "logs")
    t = trainer(tmp_path, 3, [stats], logger)
    t.fit(m, data())
    run = tmp_path / "logs" / "lightning_logs" / "version_0"
    assert run_directory(t) == str(run) == logger.log_dir
    for name in FIGURES:
        assert (run / name).stat().st_size > 1000, name
    assert not list(tmp_path.glob("*.png"))
    # the history: one entry per epoch, τ per layer in steps (τ / dt), equal to the final τ at the last epoch
    assert [entry["epoch"] for entry in stats.history] == [0, 1, 2]
    last = stats.history[-1]["stats"]["tau"]
    for i, neuron in enumerate(m.network.neurons):
        assert last[f"network.neurons.{i}"]["mean"] == pytest.approx(neuron.tau.value.item() / 1e-3, rel=1e-4)
    assert 2.0 < last["network.neurons.0"]["mean"] < 4.0 and 8.0 < last["network.neurons.1"]["mean"] < 10.0
    assert set(stats.history[0]["stats"]["spike_rate"]) == {"network.neurons.0", "network.neurons.1"}
    # one sample's spikes per spiking layer: (T, neurons) booleans
    assert set(stats.raster) == {"network.neurons.0", "network.neurons.1"}
    assert stats.raster["network.neurons.0"].shape == (100, 8) and stats.raster["network.neurons.0"].dtype == torch.bool
    assert module_step_ms(m) == pytest.approx(1.0)


def test_units_steps_and_milliseconds():
    import matplotlib.pyplot as plt

    net = FeedForwardSNN(4, [3], 2, tau=[0.02], neuron={"dt": 0.01})
    assert layer_dt(net)["neurons.0"] == pytest.approx(0.01)
    steps = in_steps({"tau": {"neurons.0": torch.tensor([0.02])}}, layer_dt(net))
    assert steps["tau"]["neurons.0"].item() == pytest.approx(2.0)
    assert module_step_ms(net) == pytest.approx(10.0)
    assert module_step_ms(FeedForwardSNN(4, [3], 2, tau=[2.0])) is None  # dt = 1: steps only

    fig, ax = plt.subplots()
    label_axis(ax, "tau", 10.0)
    assert ax.get_ylabel() == "tau (steps)"
    right = [child for child in ax.get_children() if type(child).__name__ == "SecondaryAxis"]
    assert len(right) == 1 and right[0].get_ylabel() == "tau (ms, 10 ms/step)"
    fig2, ax2 = plt.subplots()
    label_axis(ax2, "spike_rate", 10.0)
    assert ax2.get_ylabel() == "spike_rate (spikes per neuron per step)"
    plt.close(fig)
    plt.close(fig2)


def test_datamodule_dt_gives_milliseconds():
    class Binned(L.LightningDataModule):
        dt = 0.01  # 10 ms bins, as SHDDataModule(dt=0.01)

    assert datamodule_step_ms(SimpleNamespace(datamodule=Binned())) == pytest.approx(10.0)
    assert datamodule_step_ms(SimpleNamespace(datamodule=data())) is None  # no dt: steps only


def test_step_ms_argument_checked():
    with pytest.raises(ValueError, match="step_ms"):
        TemporalStatsLogger(step_ms=0)
    assert TemporalStatsLogger(step_ms=1.5).step_ms == 1.5


def test_resume_keeps_the_tau_history(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = TemporalStatsLogger(plot=False)
    trainer(tmp_path, 2, [first, ckpt]).fit(model(), data())
    assert [e["epoch"] for e in first.history] == [0, 1]

    resumed = TemporalStatsLogger()
    t = trainer(tmp_path, 3, [resumed, ModelCheckpoint(dirpath=tmp_path / "ckpt2")])
    t.fit(model(), data(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert [e["epoch"] for e in resumed.history] == [0, 1, 2]
    assert resumed.history[:2] == first.history
    assert (tmp_path / "tau_over_epochs.png").is_file()  # no logger: default_root_dir is the run's directory


def test_summary_prints_tau_in_steps_and_ms():
    from lightning_snn.summary import tau_table

    table = tau_table(FeedForwardSNN(4, [3], 2, tau=[0.004], neuron={"dt": 1e-3}, readout_tau=0.005))
    assert "4.000 ± " in table and "steps  = 4 ms" in table
    assert "ms" not in tau_table(FeedForwardSNN(4, [3], 2, tau=[4.0]))
