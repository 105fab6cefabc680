import pytest
import torch

from lightning_snn.cli import main

CONFIGS = ["configs/mtsxor.yaml", "configs/mtsxor_homogeneous.yaml", "configs/mtsxor_hierarchical_fixed.yaml"]


@pytest.mark.parametrize("config", CONFIGS)
def test_cli_fast_dev_run(config, tmp_path, capsys):
    cli = main(
        [
            "fit",
            "--config",
            config,
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.init_args.n_train",
            "64",
            "--data.init_args.n_val",
            "32",
            "--data.init_args.n_test",
            "32",
            "--data.init_args.batch_size",
            "32",
        ]
    )
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "learned tau per layer" in out
    net = cli.model.network
    taus = [n.tau.value.mean().item() for n in net.neurons]
    assert len(taus) == 3 and all(t > 1.0 for t in taus)


def test_default_config_builds_the_hierarchy():
    cli = main(["--config", "configs/mtsxor.yaml"], run=False)
    taus = [n.tau.value.item() for n in cli.model.network.neurons]
    assert taus == pytest.approx([2.0, 10.0, 18.0], rel=1e-4)
    assert cli.model.hparams.readout == "per_step"
    assert isinstance(cli.model.network.neurons[0].tau.raw, torch.nn.Parameter)
