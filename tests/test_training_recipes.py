"""The training ingredients the paper presets share: the softmax-sum readout, per-group learning-rate
schedules, the penalty contract and dropout with one mask per sequence."""

import math

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from lightning_snn import DelaySNN, FeedForwardSNN, MTSXORDataModule, SpikingClassifier
from lightning_snn.layers.sequence_dropout import SequenceDropout
from lightning_snn.lit.classifier import readout_logits
from lightning_snn.lr_schedules import GroupSchedules
from lightning_snn.penalties import network_penalty


def test_softmax_sum_loss_equals_the_delay_papers_transcription():
    """Thvnvtos/SNN-delays model.py:86-95 (loss='sum', CEloss): m = Σ_t softmax(output, dim=2); CE(m, y)."""
    g = torch.Generator().manual_seed(0)
    output, y = torch.randn(7, 5, 4, generator=g), torch.tensor([0, 3, 1, 1, 2])
    m = torch.sum(nn.Softmax(dim=2)(output), 0)  # theirs
    theirs = nn.CrossEntropyLoss()(m, y)
    model = SpikingClassifier(FeedForwardSNN(3, [4], 4), readout="softmax_sum")
    logits = readout_logits(output, "softmax_sum")
    assert torch.equal(logits, m)
    assert torch.allclose(model._loss(logits, y), theirs)
    # padded steps contribute nothing: length 4 of 7 equals the first 4 steps alone
    lengths = torch.full((5,), 4)
    assert torch.allclose(readout_logits(output, "softmax_sum", lengths), readout_logits(output[:4], "softmax_sum"))


def test_mask_padding_false_sums_over_every_step():
    """mask_padding=False: the readout ignores the batch's lengths, as Thvnvtos/SNN-delays sums the softmax over
    the zero-padded steps (and the right-padded ones) too."""
    torch.manual_seed(0)
    x, y, lengths = torch.rand(6, 3, 4), torch.tensor([0, 1, 1]), torch.tensor([2, 6, 4])
    for mask_padding in (True, False):
        model = SpikingClassifier(FeedForwardSNN(4, [8], 2), readout="softmax_sum", mask_padding=mask_padding)
        model.log = lambda *a, **k: None
        out = model(x)
        expected = model._loss(readout_logits(out, "softmax_sum", lengths if mask_padding else None), y)
        assert torch.allclose(model._step((x, y, lengths), "val"), expected)
    assert not torch.allclose(readout_logits(out, "softmax_sum", lengths), readout_logits(out, "softmax_sum"))


def _run_torch(scheduler_cls, lr, steps, **kw):
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=lr)
    sched = scheduler_cls(opt, **kw)
    out = []
    for step in range(steps):
        out.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]))
        if step < steps - 1:
            opt.step()
            sched.step()
    return out


def test_group_schedules_equal_torchs_schedulers_per_group():
    """Each group follows torch's scheduler of the same name run on it alone (Thvnvtos/SNN-delays:
    OneCycleLR(max_lr=5·lr_w, total_steps=epochs) on the weights, CosineAnnealingLR(T_max=epochs) on the
    positions)."""
    total = 11
    w, d, t = (nn.Parameter(torch.zeros(1)) for _ in range(3))
    opt = torch.optim.Adam(
        [
            {"params": [w], "lr": 1e-3, "name": "weight"},
            {"params": [d], "lr": 0.1, "name": "delay"},
            {"params": [t], "lr": 0.02, "name": "tau"},
        ]
    )
    sched = GroupSchedules(opt, {"weight": "onecycle", "delay": "cosine"}, total)
    ours = []
    for _ in range(total + 1):
        ours.append([(g["lr"], g["betas"][0]) for g in opt.param_groups])
        opt.step()
        sched.step()
    onecycle = _run_torch(torch.optim.lr_scheduler.OneCycleLR, 1e-3, total + 1, max_lr=5e-3, total_steps=total)
    cosine = _run_torch(torch.optim.lr_scheduler.CosineAnnealingLR, 0.1, total + 1, T_max=total)
    for step in range(total + 1):
        assert ours[step][0] == pytest.approx(onecycle[step], rel=1e-9)
        assert ours[step][1][0] == pytest.approx(cosine[step][0], rel=1e-9, abs=1e-15)
        assert ours[step][1][1] == 0.9  # a cosine group keeps Adam's β1
        assert ours[step][2] == (0.02, 0.9)  # a group not named stays constant


def test_group_schedules_reject_unknown_names():
    with pytest.raises(ValueError, match="optimiser group 'weights'"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2), scheduler={"weights": "cosine"})
    with pytest.raises(ValueError, match="not a per-group schedule"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2), scheduler={"weight": "plateau"})
    with pytest.raises(ValueError, match="scheduler_interval"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2), scheduler_interval="batch")


def _fit(model, tmp_path, epochs):
    dm = MTSXORDataModule(n_train=32, n_val=16, n_test=16, batch_size=16)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, dm)
    return trainer


def test_per_epoch_group_schedule_in_training(tmp_path):
    """scheduler_interval='epoch': after 3 of 4 epochs the delay group's lr is the cosine at 3/4 and the
    weights' is the one-cycle value at step 3."""
    L.seed_everything(0)
    net = DelaySNN(40, [8], 2, max_delay=3)
    model = SpikingClassifier(
        net,
        readout="per_step",
        lr=1e-3,
        delay_lr=0.1,
        scheduler={"weight": "onecycle", "delay": "cosine"},
        scheduler_interval="epoch",
    )
    trainer = _fit(model, tmp_path, epochs=4)
    groups = {g["name"]: g for g in trainer.optimizers[0].param_groups}
    assert groups["delay"]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * 4 / 4)) / 2, abs=1e-12)
    reference = _run_torch(torch.optim.lr_scheduler.OneCycleLR, 1e-3, 5, max_lr=5e-3, total_steps=4)
    assert groups["weight"]["lr"] == pytest.approx(reference[4][0])
    assert groups["weight"]["betas"][0] == pytest.approx(reference[4][1])


def test_plateau_scheduler_is_configured_on_the_monitored_metric():
    model = SpikingClassifier(
        FeedForwardSNN(3, [4], 2),
        scheduler="plateau",
        scheduler_kwargs={"monitor": "val_acc", "mode": "max", "patience": 3},
    )
    model.trainer = type("T", (), {"max_epochs": 5})()
    config = model.configure_optimizers()
    sched = config["lr_scheduler"]
    assert sched["monitor"] == "val_acc" and sched["interval"] == "epoch"
    assert sched["scheduler"].mode == "max" and sched["scheduler"].patience == 3
    with pytest.raises(ValueError, match="plateau"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2), scheduler="plateau", tbptt_steps=4)


def test_cosine_t_max_restarts_like_the_plif_code():
    """scheduler_kwargs T_max: torch's CosineAnnealingLR(T_max=64) per epoch, as the PLIF code over 1024 epochs."""
    model = SpikingClassifier(
        FeedForwardSNN(3, [4], 2), scheduler="cosine", scheduler_interval="epoch", scheduler_kwargs={"T_max": 4}
    )
    model.trainer = type("T", (), {"max_epochs": 16})()
    config = model.configure_optimizers()
    sched, opt = config["lr_scheduler"]["scheduler"], config["optimizer"]
    assert config["lr_scheduler"]["interval"] == "epoch" and sched.T_max == 4
    rates = []
    for _ in range(9):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[4] == pytest.approx(0.0, abs=1e-12) and rates[8] == pytest.approx(1e-3)  # down at 4, up again at 8


def test_multistep_equals_the_hsnn_piecewise_constant_schedule():
    """EIS-Hub/hSNN training.py:198-209: jax piecewise_constant(intervals, lr_values) indexed by the epoch,
    value = lr_values[sum(epoch > intervals)]; halved every 5 epochs after epoch 25 of 60. Ours: MultiStepLR at
    the milestones intervals + 1, stepped per epoch (configs/hsnn_*.yaml)."""
    lr, decay, every, start, epochs = 0.01, 0.5, 5, 25, 60
    k = int((epochs - start) // every + 1)
    intervals = [start] + [start + i * every for i in range(1, k)]
    values = [lr] + [lr * decay ** (i + 1) for i in range(k)]
    theirs = [values[int(np.sum(epoch > np.array(intervals)))] for epoch in range(epochs)]
    model = SpikingClassifier(
        FeedForwardSNN(3, [4], 2),
        lr=lr,
        scheduler="multistep",
        scheduler_interval="epoch",
        scheduler_kwargs={"milestones": [b + 1 for b in intervals], "gamma": decay},
    )
    model.trainer = type("T", (), {"max_epochs": epochs})()
    config = model.configure_optimizers()
    sched, opt = config["lr_scheduler"]["scheduler"], config["optimizer"]
    ours = []
    for _ in range(epochs):
        ours.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ours == pytest.approx(theirs, rel=1e-12)
    with pytest.raises(ValueError, match="milestones"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2), scheduler="multistep")


def _decayed(model) -> set[str]:
    names = {id(p): n for n, p in model.network.named_parameters()}
    return {names[id(p)] for g in model.parameter_groups() if g["weight_decay"] > 0 for p in g["params"]}


def test_norms_and_biases_can_stay_out_of_weight_decay_as_the_authors_do():
    """decay_norm_and_bias=False: Thvnvtos/SNN-delays (snn_delays.py:107-121, model.py:41-43) decays the DCLS
    weights only, not BatchNorm; the P-SpikeSSM code (src/utils/optim_groups.py:12-38) spares biases and
    normalisation layers but decays the samplers' affines (inp_a, inp_b)."""
    from lightning_snn import PSpikeSSM

    dcls = SpikingClassifier(
        DelaySNN(6, [8], 3, max_delay=5, batch_norm=True), weight_decay=1e-5, decay_norm_and_bias=False
    )
    decayed = _decayed(dcls)
    assert "synapses.0.synapse.weight" in decayed and "output_synapse.weight" in decayed
    assert not any(".norm." in n for n in decayed)
    weight_groups = [g for g in dcls.parameter_groups() if g["name"] == "weight"]
    assert [g["weight_decay"] for g in weight_groups] == [1e-5, 0.0] and all(g["lr"] == 1e-3 for g in weight_groups)
    assert len(_decayed(SpikingClassifier(DelaySNN(6, [8], 3, max_delay=5, batch_norm=True), weight_decay=1e-5))) > len(
        decayed
    )
    ssm = SpikingClassifier(
        PSpikeSSM(1, 3, d_model=8, d_state=4, n_layers=1, prenorm=True, norm="batch"),
        optimizer="adamw",
        weight_decay=0.01,
        decay_norm_and_bias=False,
    )
    names = dict(ssm.network.named_modules())
    theirs = set()  # their rule, with our sampler's `bias` standing for their `inp_b` (decayed)
    for module_name, module in names.items():
        for pn, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{pn}" if module_name else pn
            norm = isinstance(module, (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm))
            bias = pn.endswith("bias") and type(module).__name__ != "SpikeSampler"
            if not norm and not bias:
                theirs.add(full)
    roles_weight = {n for g in ssm.parameter_groups() if g["name"] == "weight" for n in _names(ssm, g)}
    assert _decayed(ssm) == theirs & roles_weight


def _names(model, group) -> set[str]:
    names = {id(p): n for n, p in model.network.named_parameters()}
    return {names[id(p)] for p in group["params"]}


class Penalised(nn.Module):
    """A toy module with a penalty: 3·Σw²."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))

    def penalty(self) -> torch.Tensor:
        return 3 * (self.w**2).sum()


def test_penalties_are_summed_into_the_training_loss():
    net = FeedForwardSNN(3, [4], 2)
    net.extra = Penalised()
    net.other = Penalised()
    assert network_penalty(net).item() == pytest.approx(2 * 3 * 5.0)
    assert network_penalty(FeedForwardSNN(3, [4], 2)) is None
    model = SpikingClassifier(net, readout="mean")
    x, y = torch.rand(5, 2, 3), torch.tensor([0, 1])
    plain = model._loss(readout_logits(model(x), "mean"), y)
    model.log = lambda *a, **k: None
    assert model._step((x, y), "train").item() == pytest.approx(plain.item() + 30.0)
    assert model._step((x, y), "val").item() == pytest.approx(plain.item())  # training loss only
    net.bad = type("Bad", (nn.Module,), {"penalty": lambda self: torch.ones(2)})()
    with pytest.raises(TypeError, match=r"bad\).penalty\(\) must return a scalar"):
        network_penalty(net)


def test_sequence_dropout_mask_is_constant_over_time_and_streams():
    drop = SequenceDropout(0.5).train()
    x = torch.ones(6, 4, 10)
    y = drop(x)
    assert torch.equal(y, y[:1].expand_as(y)) and set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(x), x)
    # a network in training: chunked forward_with_state drops the same neurons as one pass
    net = FeedForwardSNN(3, [16], 2, spike_dropout=0.5).train()
    x = torch.rand(8, 4, 3) * 3
    torch.manual_seed(1)
    whole = net(x)
    torch.manual_seed(1)
    first, state = net.forward_with_state(x[:3])
    second, _ = net.forward_with_state(x[3:], state)
    assert torch.allclose(torch.cat([first, second]), whole)


def test_spike_dropout_silences_hidden_neurons_for_the_whole_sequence():
    """Dropout on the hidden spikes after the LIF, one mask per sequence (Thvnvtos/SNN-delays
    snn_delays.py: DCLS → BN → LIF → layer.Dropout(step_mode='m'))."""
    torch.manual_seed(0)
    net = FeedForwardSNN(3, [32], 2, spike_dropout=0.5).train()
    seen = {}
    net.spike_dropouts[0].register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    net(torch.rand(10, 4, 3) * 4)
    dropped = (seen["out"] == 0).all(0) & (seen["inp"] != 0).any(0)
    kept = ~(seen["out"] == 0).all(0)
    assert dropped.any() and kept.any()
    assert torch.equal(seen["out"][:, kept], 2 * seen["inp"][:, kept])
    with pytest.raises(ValueError, match="spike_dropout must be a number in"):
        FeedForwardSNN(3, [4], 2, spike_dropout=1.0)
