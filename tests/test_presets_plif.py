"""The static-image PLIF presets configs/plif_mnist.yaml and plif_cifar10.yaml train end to end with
fast_dev_run on tiny generated files. configs/plif_fashion_mnist.yaml differs from plif_mnist.yaml only in
settings, read by tests/test_plif_fidelity.py::test_static_presets_build_the_authors_networks; the event
presets (configs/nmnist.yaml, dvs_gesture.yaml, cifar10dvs.yaml) run in
tests/test_data_event_frames.py::test_config_fast_dev_run."""

from __future__ import annotations

import numpy as np
import pytest
from data_files import write_mnist
from test_static_images import write_cifar10

from lightning_snn.cli import main


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])  # fashion_mnist: the MNIST code path, other files
def test_static_preset_fast_dev_run(tmp_path, dataset):
    if dataset == "cifar10":
        write_cifar10(tmp_path, n_per_batch=1)
    else:
        write_mnist(tmp_path, n_train=4, n_test=2)
    cli = main(
        [
            "fit",
            "--config",
            f"configs/plif_{dataset}.yaml",
            "--trainer.fast_dev_run",
            "true",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.init_args.data_dir",
            str(tmp_path),
            "--data.init_args.batch_size",
            "2",
            "--model.init_args.network.init_args.channels",
            "4",
            "--model.init_args.network.init_args.fc_hidden",
            "8",
            "--model.init_args.network.init_args.n_steps",
            "2",
        ]
    )
    assert cli.trainer.state.finished
    assert np.isfinite(cli.trainer.callback_metrics["test_loss"].item())
    net = cli.model.network
    assert net.norm_per_step if hasattr(net, "norm_per_step") else net.encoder.norm is not None
