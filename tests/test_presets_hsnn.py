"""The hSNN presets (paper A) build the authors' network and run end to end (fast_dev_run)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from data_files import write_heidelberg

from lightning_snn.cli import main
from lightning_snn.neurons.hsnn_lif import HSNNLIF
from lightning_snn.neurons.hsnn_readout import HSNNReadout


def check_hsnn(net, widths, tau_out):
    assert [n.n_neurons for n in net.neurons] == widths
    assert all(isinstance(n, HSNNLIF) and not n.detach_reset and n.surrogate.name == "box" for n in net.neurons)
    assert all(n.spike_dropout == 0.1 and s.norm is not None for n, s in zip(net.neurons, net.synapses))
    assert isinstance(net.output, HSNNReadout) and net.output.alpha.item() == pytest.approx(math.exp(-1 / tau_out))


def test_mtsxor_preset(tmp_path):
    small = ["--data.init_args.n_train", "16", "--data.init_args.n_val", "8", "--data.init_args.n_test", "8"]
    small += ["--data.init_args.batch_size", "16"]
    args = ["--config", "configs/hsnn_mtsxor.yaml", "--trainer.default_root_dir", str(tmp_path), *small]
    cli = main(["fit", *args, "--trainer.fast_dev_run", "true", "--trainer.logger", "false"])
    assert cli.trainer.state.finished and cli.datamodule.hparams.target == "all_steps"
    net = cli.model.network
    check_hsnn(net, [10, 10, 10], 5.0)
    mean_tau = [n.tau.mean().item() for n in net.neurons]  # tanh 10 -> 30 -> 50 steps, normal jitter 0.1
    assert mean_tau == pytest.approx([10.0, 30.0, 50.0], rel=0.1)


def test_shd_preset(tmp_path):
    write_heidelberg(tmp_path, "shd", {"train": 12, "test": 6}, 20)
    data = ["--data.init_args.data_dir", str(tmp_path), "--data.init_args.cache_dir", str(tmp_path / "cache")]
    args = ["--config", "configs/hsnn_shd.yaml", "--trainer.default_root_dir", str(tmp_path), *data]
    small = ["--data.init_args.batch_size", "4", "--data.init_args.n_steps", "20"]
    small += ["--model.init_args.network.init_args.hidden", "[8, 8, 8]"]
    cli = main(["fit", *args, *small, "--trainer.fast_dev_run", "true", "--trainer.logger", "false"])
    assert cli.trainer.state.finished and np.isfinite(cli.trainer.callback_metrics["test_loss"].item())
    net = cli.model.network
    check_hsnn(net, [8, 8, 8], 0.2 / 0.014)
    assert cli.model.hparams.readout == "softmax_sum" and net.n_inputs == 700
