"""DelaySigmaSchedule, DelaySNN, the delay-pattern task, and crash-and-resume with delays."""

import math

import lightning as L
import pytest
import torch
from resume_utils import assert_resume_equal, run_and_resume

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule, sigma_at
from lightning_snn.callbacks.temporal_stats import TemporalStatsLogger, collect_statistics
from lightning_snn.data.delay_task import DelayTaskDataModule, delay_templates, generate_delay_task
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.models.network import build_network


@pytest.mark.parametrize(
    "progress, expected",
    [(0.0, 12.0), (0.125, math.sqrt(12 * 0.23)), (0.25, 0.23), (0.7, 0.23), (1.0, 0.23), (-1.0, 12.0)],
)
def test_sigma_decays_exponentially_from_start_to_end_over_fraction(progress, expected):
    assert sigma_at(progress, 12.0, 0.23, 0.25) == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start=0.1, end=0.23), "end=0.23 is above start=0.1"),
        (dict(end=-1.0), "end must be >= 0"),
        (dict(fraction=0.0), "fraction must be in"),
        (dict(interval="batch"), "unknown interval"),
    ],
)
def test_sigma_schedule_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DelaySigmaSchedule(**kwargs)


def test_sigma_schedule_rejects_layer_whose_default_start_is_below_end():
    module = SpikingClassifier(DelaySNN(3, [4], 2, max_delay=1))  # default start = 1/2 < end = 0.9
    with pytest.raises(ValueError, match="above the start σ=0.5"):
        DelaySigmaSchedule(end=0.9).on_fit_start(None, module)


def test_sigma_schedule_sets_every_layer_and_round_trips_state():
    module = SpikingClassifier(DelaySNN(3, [4, 4], 2, max_delay=9))
    schedule = DelaySigmaSchedule(fraction=0.5)
    sigmas = schedule.apply(module, 0.25)
    layers = [m for m in module.modules() if isinstance(m, DelayedLinear)]
    assert len(sigmas) == len(layers) == 3
    assert all(layer.sigma.item() == pytest.approx(math.sqrt(4.5 * 0.23)) for layer in layers)
    other = DelaySigmaSchedule(fraction=0.5)
    other.load_state_dict(schedule.state_dict())
    assert other.state_dict() == schedule.state_dict() and other.progress == 0.25


def tiny_task(**kw) -> DelayTaskDataModule:
    return DelayTaskDataModule(
        n_channels=4, n_classes=3, gap=2, onset_range=6, tail=2, n_train=32, n_val=16, n_test=16, batch_size=16, **kw
    )


def test_sigma_follows_schedule_during_fit_and_stats_are_logged(tmp_path):
    L.seed_everything(0)
    module = SpikingClassifier(DelaySNN(4, [8], 3, max_delay=7), lr=1e-2)
    seen = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((trainer.global_step, pl_module.network.output_synapse.sigma.item()))

    trainer = L.Trainer(
        max_epochs=4,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[DelaySigmaSchedule(fraction=0.5), Spy(), TemporalStatsLogger(histograms=False)],
    )
    trainer.fit(module, datamodule=tiny_task())
    total = 8  # 4 epochs x 2 batches
    expected = [(s, sigma_at(s / total, 3.5, 0.23, 0.5)) for s in range(total)]
    assert [s for s, _ in seen] == list(range(total))
    assert [v for _, v in seen] == pytest.approx([v for _, v in expected], rel=1e-6)
    keys = set((tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(","))
    assert "delay_at_bounds/network.synapses.0.synapse" in keys
    assert "delay/network.synapses.0.synapse/mean" in keys and "delay_sigma/network.output_synapse" in keys
    stats = collect_statistics(module)["delay"]
    assert stats["network.synapses.0.synapse"].numel() == 4 * 8
    assert (tmp_path / "lightning_logs" / "version_0" / "delay_per_layer.png").exists()


def test_delays_move_with_the_delay_learning_rate():
    L.seed_everything(1)
    net = DelaySNN(4, [8], 3, max_delay=7)
    module = SpikingClassifier(net, lr=1e-3, delay_lr=0.5, scheduler="none")
    before = net.synapses[0].synapse.delay_position.detach().clone()
    w_before = net.synapses[0].synapse.weight.detach().clone()
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False
    )
    trainer.fit(module, datamodule=tiny_task())
    step_d = (net.synapses[0].synapse.delay_position.detach() - before).abs().max()
    step_w = (net.synapses[0].synapse.weight.detach() - w_before).abs().max()
    # Adam's first steps have size ≈ lr: positions move ~500x more than weights.
    assert step_d > 0.3 and step_w < 3e-3


def test_delay_snn_rebuilds_from_spec_and_matches():
    torch.manual_seed(0)
    net = DelaySNN(5, [6, 7], 3, max_delay=4, batch_norm=True, tau=[2.0, 3.0])
    clone = build_network(net.spec)
    clone.load_state_dict(net.state_dict())
    x = torch.rand(12, 2, 5)
    net.eval(), clone.eval()
    assert torch.equal(net(x), clone(x))
    assert net(x).shape == (12, 2, 3)


def test_delay_task_codes_class_only_in_relative_timing():
    templates = delay_templates(5, 6, gap=2, seed=0)
    assert len({tuple(r) for r in templates.tolist()}) == 5
    assert all(sorted(r) == [0, 2, 4, 6, 8, 10] for r in templates.tolist())
    x, y = generate_delay_task(400, templates, seed=3, onset_range=30, tail=10)
    assert x.shape == (400, 30 + 10 + 10, 6)
    assert torch.equal(x.sum(1), torch.ones(400, 6))  # one spike per channel in every class
    first = x.argmax(1)  # spike time per channel
    rel = first - first.min(1, keepdim=True).values
    assert torch.equal(rel, templates[y])  # lags equal the class template exactly
    onsets = first.min(1).values
    for k in range(5):  # every class spans the same onsets: absolute times carry little
        assert onsets[y == k].min() <= 3 and onsets[y == k].max() >= 27
    x2, y2 = generate_delay_task(400, templates, seed=3, onset_range=30, tail=10)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_delay_task_datamodule_validates():
    with pytest.raises(ValueError, match="n_channels >= 2"):
        DelayTaskDataModule(n_channels=1)
    with pytest.raises(ValueError, match="Only 6 orders"):
        DelayTaskDataModule(n_channels=3, n_classes=7).setup()


def test_crash_and_resume_with_delays_and_sigma_schedule_is_bit_exact(tmp_path):
    def make_module():
        net = DelaySNN(4, [8], 3, max_delay=7, dropout=0.1)
        return SpikingClassifier(net, lr=1e-2, delay_lr=0.3)

    def make_callbacks():
        return [DelaySigmaSchedule(fraction=0.5)]

    result = run_and_resume(make_module, tiny_task, make_callbacks, tmp_path, max_epochs=3, crash_after_epoch=0)
    assert_resume_equal(result)
    layer = result.resumed.module.network.synapses[0].synapse
    assert layer.sigma.item() == pytest.approx(0.23)


def test_delays_task_config_fast_dev_run(tmp_path, capsys):
    from lightning_snn.cli import main

    cli = main(
        [
            "fit",
            "--config",
            "configs/delays_task.yaml",
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
    assert "test accuracy:" in capsys.readouterr().out
    groups = {g["name"]: g["lr"] for g in cli.model.parameter_groups()}
    assert groups == {"weight": 0.01, "delay": 1.0}  # τ fixed: no τ group


@pytest.mark.parametrize(
    "config, widths, n_positions",
    [("configs/shd_delays.yaml", [140, 256, 256, 20], 3), ("configs/raw_shd_delays.yaml", [40, 256, 20], 1)],
)
def test_shd_delay_configs_build_the_papers_networks(config, widths, n_positions):
    from lightning_snn.cli import main

    cli = main(["--config", config], run=False)
    net = cli.model.network
    layers = [m for m in net.modules() if isinstance(m, DelayedLinear)]
    assert len(layers) == n_positions and all(m.max_delay == 25 for m in layers)
    assert [net.n_inputs, *[n.n_neurons for n in net.neurons], net.n_outputs] == widths
    assert all(n.cfg.detach_reset for n in net.neurons)
    assert cli.datamodule.n_inputs == widths[0]
    groups = {g["name"]: g["lr"] for g in cli.model.parameter_groups()}
    assert groups["delay"] == pytest.approx(100 * groups["weight"])


def test_epoch_interval_uses_the_epoch_fraction():
    from types import SimpleNamespace

    module = SpikingClassifier(DelaySNN(3, [4], 2, max_delay=9))
    schedule = DelaySigmaSchedule(start=8.0, end=0.5, fraction=0.5, interval="epoch")
    schedule.on_train_epoch_start(SimpleNamespace(current_epoch=5, max_epochs=20), module)
    assert module.network.synapses[0].synapse.sigma.item() == pytest.approx(8.0 * (0.5 / 8.0) ** 0.5)
    schedule.on_train_batch_start(SimpleNamespace(global_step=0, estimated_stepping_batches=10), module, None, 0)
    assert schedule.progress == 0.25  # the step hook leaves an epoch schedule alone


def test_delay_task_needs_a_step_after_the_last_spike():
    with pytest.raises(ValueError, match=r"tail >= 1"):
        DelayTaskDataModule(tail=0)
    dm = DelayTaskDataModule(n_train=8, n_val=4, n_test=4, tail=1, jitter=2)
    dm.setup()
    x, _ = dm.splits["train"].tensors
    assert x.shape[1] == dm.hparams.onset_range + 5 * dm.hparams.gap + 2 + 1  # onset + max offset + jitter + tail


@pytest.mark.parametrize(
    "interval, trainer_args",
    [("epoch", {"max_epochs": -1, "max_steps": 100}), ("step", {"max_epochs": -1, "max_steps": -1})],
)
def test_sigma_schedule_needs_a_finite_training_length(interval, trainer_args):
    from types import SimpleNamespace

    trainer = SimpleNamespace(estimated_stepping_batches=float("inf"), **trainer_args)
    module = SpikingClassifier(DelaySNN(3, [4], 2, max_delay=9))
    with pytest.raises(ValueError, match="needs a finite training length"):
        DelaySigmaSchedule(interval=interval).on_fit_start(trainer, module)
