"""The delay papers' presets run (``fast_dev_run``, tiny files in the real formats) and hold the authors' settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from data_files import write_heidelberg

from lightning_snn.callbacks.rewiring import Rewiring
from lightning_snn.data.rawhd import write_rawhd
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.neurons.lagged_lif import LaggedLeakyReadout, LaggedLIF

MESZAROS = ["configs/meszaros_rawhd_delays.yaml", "configs/meszaros_rawhd_rewiring.yaml"]
MESZAROS += ["configs/meszaros_rawhd_delays_rewiring.yaml"]


def run_preset(config: str, data_dir, tmp_path, *extra: str):
    from lightning_snn.cli import main

    return main(
        [
            "fit",
            "--config",
            config,
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.accelerator",
            "cpu",
            "--data.init_args.data_dir",
            str(data_dir),
            "--data.init_args.batch_size",
            "4",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def rawhd_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    x = {s: rng.random((8, 30, 40)).astype(np.float32) * 0.1 for s in ("train", "test")}
    y = {s: rng.integers(0, 20, 8) for s in ("train", "test")}
    write_rawhd(root / "RawHD", x, y)
    return root


def network_args(config: str) -> dict:
    with open(config) as f:
        return yaml.safe_load(f)["model"]["init_args"]["network"]["init_args"]


@pytest.mark.parametrize("config", MESZAROS)
def test_meszaros_presets_hold_the_authors_settings_and_run(config, rawhd_dir, tmp_path):
    args = network_args(config)
    assert [args["n_inputs"], *args["hidden"], args["n_outputs"], args["max_delay"]] == [40, 256, 20, 25]
    # the preset runs (a narrower hidden layer, for the test's time)
    cli = run_preset(config, rawhd_dir, tmp_path, "--model.init_args.network.init_args.hidden", "[16]")
    net, model = cli.model.network, cli.model
    assert isinstance(net.neurons[0], LaggedLIF) and isinstance(net.output, LaggedLeakyReadout)
    assert net.neurons[0].tau.decay().item() == pytest.approx(1 - 1 / 10.05, rel=1e-5)
    assert net.neurons[0].surrogate.alpha == 5.0 and net.synapses[0].norm is not None
    assert isinstance(net.output_synapse, DelayedLinear) and net.spike_dropouts[0].p == 0.4
    assert net.synapses[0].synapse.weight.abs().max() > 1.2 * math.sqrt(1 / 40)  # kaiming, not Dcls1d's bound
    assert model.hparams.readout == "softmax_sum" and model.hparams.scheduler_interval == "epoch"
    lrs = {g["name"]: g["lr"] for g in model.parameter_groups()}
    assert lrs["weight"] == 1e-3 and lrs.get("delay", 0.0) == (0.0 if config.endswith("rawhd_rewiring.yaml") else 0.1)
    assert cli.datamodule.input_scale == 20.0 and cli.datamodule.val_fraction == 0.0
    (rewiring,) = [c for c in cli.trainer.callbacks if isinstance(c, Rewiring)]
    assert rewiring.sparsity == 0.5 and rewiring.l1_loss == 0.01 and not rewiring.mask_inactive_grad
    if config.endswith("rawhd_delays.yaml"):
        assert rewiring.regrow == "none"
    else:
        assert (rewiring.regrow, rewiring.sign, rewiring.rigl_score) == ("rigl", "dale", "signed")
        assert rewiring.regrow_magnitude == 1e-12 and not rewiring.reset_moments
        assert rewiring.excitatory_fraction == 0.5
    assert sorted(rewiring.masks) == ["network.output_synapse", "network.synapses.0.synapse"]
    assert all(int(m.sum()) == m.numel() // 2 for m in rewiring.masks.values())


def test_dcls_preset_holds_the_authors_settings_and_runs(tmp_path):
    args = network_args("configs/dcls_shd.yaml")
    assert [args["n_inputs"], *args["hidden"], args["n_outputs"], args["max_delay"]] == [140, 256, 256, 20, 25]
    write_heidelberg(tmp_path / "data", "shd", {"train": 8, "test": 4}, 20)
    hidden = ("--model.init_args.network.init_args.hidden", "[16, 16]")  # narrower, for the test's time
    cli = run_preset("configs/dcls_shd.yaml", tmp_path / "data", tmp_path, *hidden)
    assert cli.trainer.state.finished
    net, model = cli.model.network, cli.model
    assert all(n.tau.decay().item() == pytest.approx(1 - 1 / 1.005, rel=1e-5) for n in net.neurons)
    assert net.output.tau.decay().item() == pytest.approx(1 - 1 / 1.005, rel=1e-5)
    assert all(not n.cfg.decay_input and n.cfg.surrogate.alpha == 5.0 for n in net.neurons)
    assert net.pad_right == 12 and isinstance(net.output_synapse, DelayedLinear)
    assert all(d.p == 0.4 for d in net.spike_dropouts) and all(s.norm is not None for s in net.synapses)
    assert 1.2 * math.sqrt(1 / 16) < net.synapses[1].synapse.weight.abs().max() <= 1.1 * math.sqrt(6 / 16)
    assert model.hparams.readout == "softmax_sum" and model.hparams.weight_decay == 1e-5
    assert cli.datamodule.hparams.dt == 0.01
