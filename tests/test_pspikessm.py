import pytest
import torch
import torch.nn.functional as F

from lightning_snn.call_statistics import CallStatistics
from lightning_snn.callbacks import TemporalStatsLogger
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.network import build_network
from lightning_snn.models.pspikessm import PSpikeSSM

CONFIGS = ["configs/pspikessm_sdigits.yaml", "configs/pspikessm_psdigits.yaml"]


def small(**kw):
    return PSpikeSSM(**{"n_inputs": 1, "n_outputs": 10, "d_model": 16, "d_state": 8, "seed": 0, **kw})


def test_default_size_is_the_authors_psmnist_size():
    net = PSpikeSSM(1, 10)
    assert len(net.blocks) == 2 and net.blocks[0].ssm.d_model == 400 and net.blocks[0].ssm.d_state == 64


@pytest.mark.parametrize("pool, shape", [("mean", (3, 10)), ("last", (3, 10)), ("none", (12, 3, 10))])
def test_output_shapes(pool, shape):
    assert small(pool=pool)(torch.rand(12, 3, 1)).shape == shape


def test_ssm_and_mixer_read_binary_spikes():
    net = small(n_layers=2)
    seen = []
    for block in net.blocks:
        for module in (block.ssm, block.mixer):
            module.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    net(torch.rand(20, 4, 1))
    assert len(seen) == 4
    assert all(bool(((s == 0) | (s == 1)).all()) for s in seen)


def test_pooled_logits_equal_head_of_mean_block_output():
    net = small(n_layers=1).eval()
    x = torch.rand(9, 2, 1)
    h = net.blocks[0](net.encoder(x))
    torch.testing.assert_close(net(x), net.head(h.mean(0)))


def test_mixer_and_fuse_golden():
    mixer = SpikeMixer(3)
    s = torch.bernoulli(torch.full((4, 2, 3), 0.5))
    torch.testing.assert_close(mixer(s), F.gelu(s @ mixer.linear.weight.T + mixer.linear.bias))
    fuse = ClampFuse(3, norm="layer")
    z, r = torch.randn(4, 2, 3), torch.randn(4, 2, 3)
    out = z + r
    expected = (out - out.mean(-1, keepdim=True)) / (out.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(fuse(z, r), expected)
    assert SpikeMixer(3, bidirectional=True).linear.in_features == 6
    with pytest.raises(ValueError, match="residual"):
        fuse(z, r[:2])
    with pytest.raises(ValueError, match="norm"):
        ClampFuse(3, norm="group")


def test_rebuild_from_spec_reproduces_spikes():
    net = small()
    x = torch.rand(15, 2, 1)
    net(x)  # advance the generators
    clone = build_network(net.spec)
    clone.load_state_dict(net.state_dict())
    torch.testing.assert_close(clone(x), net(x))  # training mode: same draws after the load
    assert clone.spec == net.spec


def test_samplers_get_distinct_seeds_and_report_rates():
    net = small(seed=10, n_layers=2)
    seeds = [m.seed for m in net.modules() if type(m).__name__ == "SpikeSampler"]
    assert seeds == [10, 11, 12, 13]
    x = torch.rand(10, 3, 1)
    with CallStatistics(net) as recorder:
        net(x)
    stats = recorder.means()
    assert sorted(stats["spike_rate"]) == [
        f"blocks.{i}.{s}" for i in (0, 1) for s in ("input_sampler", "output_sampler")
    ]
    assert set(net.spike_rates(x)) == set(stats["spike_rate"])
    assert all(0.0 <= r <= 1.0 for r in net.spike_rates(x).values())


def test_classifier_puts_ssm_timescales_in_the_tau_group():
    module = SpikingClassifier(small(), lr=0.01, tau_lr=0.001)
    groups = {g["name"]: g for g in module.parameter_groups()}
    n_tau = sum(p.numel() for p in groups["tau"]["params"])
    assert n_tau == 2 * (16 + 2 * 16 * 4) and groups["tau"]["lr"] == 0.001 and groups["tau"]["weight_decay"] == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        small(d_state=5)
    with pytest.raises(ValueError, match="inverted"):
        small(dt_min=0.5, dt_max=0.01)
    with pytest.raises(ValueError, match="pool"):
        small(pool="max")
    with pytest.raises(ValueError, match=r"\(T, B, 1\)"):
        small()(torch.rand(3, 1))


@pytest.mark.parametrize("config", CONFIGS)
def test_cli_fast_dev_run(config, tmp_path, capsys):
    from lightning_snn.cli import main

    cli = main(
        [
            "fit",
            "--config",
            config,
            "--trainer.fast_dev_run",
            "true",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.init_args.batch_size",
            "16",
        ]
    )
    out = capsys.readouterr().out
    assert "test accuracy:" in out
    assert isinstance(cli.model.network, PSpikeSSM)
    assert cli.datamodule.hparams.permute == ("psdigits" in config)
    logger = next(cb for cb in cli.trainer.callbacks if isinstance(cb, TemporalStatsLogger))
    assert sorted(logger.epoch_call_statistics["spike_rate"])[0] == "network.blocks.0.input_sampler"


def test_crash_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    from resume_utils import assert_resume_equal, run_and_resume

    from lightning_snn.data.sequential_digits import SequentialDigitsDataModule

    def make_module():
        return SpikingClassifier(small(d_model=8, seed=None), lr=0.01, scheduler="none")

    def make_data():
        dm = SequentialDigitsDataModule(batch_size=128, seed=0)
        dm.setup()
        for split in dm.splits:  # a small subset keeps the test fast
            tensors = dm.splits[split].tensors
            dm.splits[split] = torch.utils.data.TensorDataset(*(t[:256] for t in tensors))
        return dm

    result = run_and_resume(
        make_module, make_data, list, tmp_path, max_epochs=3, crash_after_epoch=0, limit_val_batches=1
    )
    assert_resume_equal(result)
    keys = [k for k in result.full.module.state_dict() if k.endswith("_extra_state")]
    assert len(keys) == 4
