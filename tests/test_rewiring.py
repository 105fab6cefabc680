"""DEEP R / RigL rewiring: exact sparsity, top-gradient regrowth, sign invariants, resume, errors."""

from __future__ import annotations

import logging
import types

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_snn.callbacks.rewiring import Rewiring, default_layers
from lightning_snn.data.collate import time_major_collate
from lightning_snn.functional import rewiring as F
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.feedforward import FeedForwardSNN

# Lightning warns about tiny loaders (few workers, few batches per epoch): scoped to this module.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


# ---- functional core ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "numel,sparsity,expected", [(100, 0.9, 10), (64, 0.9, 6), (1280, 0.95, 64), (7, 0.0, 7), (10, 0.25, 8)]
)
def test_target_active_is_rounded_density(numel, sparsity, expected):
    assert F.target_active(numel, sparsity) == expected


def test_random_mask_has_exact_count_and_is_seeded():
    a = F.random_mask(torch.Size([13, 7]), 20, torch.Generator().manual_seed(3))
    b = F.random_mask(torch.Size([13, 7]), 20, torch.Generator().manual_seed(3))
    assert int(a.sum()) == 20 and torch.equal(a, b)


def test_regrow_picks_top_scores_among_inactive_only():
    scores = torch.tensor([[9.0, 0.5, 3.0, 0.1], [8.0, 2.0, 0.0, 4.0]])
    mask = torch.tensor([[True, False, False, False], [False, False, False, True]])  # 9 and 4 are taken
    grown = F.regrow_positions(scores, mask, 3)
    expected = torch.tensor([[False, False, True, False], [True, True, False, False]])  # 8, 3, 2
    assert torch.equal(grown, expected)


def test_regrow_uses_just_removed_positions_last():
    scores = torch.tensor([5.0, 1.0, 0.0, 0.0])
    mask = torch.tensor([False, False, True, True])
    removed = torch.tensor([True, False, False, False])  # highest score, but just cut
    assert torch.equal(F.regrow_positions(scores, mask, 1, removed), torch.tensor([False, True, False, False]))
    assert torch.equal(F.regrow_positions(scores, mask, 2, removed), torch.tensor([True, True, False, False]))


def test_dale_signs_are_constant_per_presynaptic_neuron():
    sign = F.dale_signs(torch.Size([5, 10, 3]), 0.8, torch.Generator().manual_seed(0))
    per_pre = sign[0, :, 0]
    assert torch.equal(sign, per_pre.view(1, 10, 1).expand(5, 10, 3))
    assert int((per_pre > 0).sum()) == 8 and set(per_pre.tolist()) == {-1.0, 1.0}


# ---- the callback driven step by step (no Trainer) ----------------------------------------------
class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 9)
        self.conv = nn.Conv1d(6, 5, 1)  # weight (out, in, 1), like a Dcls1d kernel
        self.norm = nn.BatchNorm1d(5)


def drive(callback: Rewiring, module: nn.Module, optimizer, steps: int, check=None) -> None:
    """Emulate Lightning's hook order around optimizer steps with random losses."""
    trainer = types.SimpleNamespace(optimizers=[optimizer])
    callback.setup(trainer, module, "fit")
    callback.on_fit_start(trainer, module)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum((p * torch.randn(p.shape, generator=gen)).sum() for p in module.parameters())
        loss.backward()
        callback.on_before_optimizer_step(trainer, module, optimizer)
        optimizer.step()
        callback.on_train_batch_end(trainer, module, None, None, 0)
        if check is not None:
            check()


@pytest.mark.parametrize("sign", ["fixed", "dale", "free"])
@pytest.mark.parametrize("regrow", ["rigl", "random"])
def test_exact_sparsity_and_no_sign_flip_over_many_steps(sign, regrow):
    torch.manual_seed(0)
    module = TwoLayers()
    callback = Rewiring(sparsity=0.75, sign=sign, regrow=regrow, layers=["fc", "conv"], seed=4)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    first_signs = {}

    def check():
        for name, layer in callback._layers.items():
            w = layer.param.detach()
            assert int(layer.mask.sum()) == F.target_active(w.numel(), 0.75)
            assert torch.all(w[~layer.mask] == 0)  # cut synapses are exactly zero
            assert torch.all(w * layer.sign >= 0)  # every weight has its synapse's sign
            first_signs.setdefault(name, layer.sign.clone())
            if sign != "free":
                assert torch.equal(layer.sign, first_signs[name])  # the sign of a position never changes
            if sign == "dale":
                assert torch.all(layer.sign == layer.sign[:1])  # one sign per presynaptic neuron

    drive(callback, module, optimizer, 150, check)
    assert all(layer.rewired_total > 20 for layer in callback._layers.values())  # it did rewire


def test_rigl_regrows_at_top_hand_made_gradient():
    layer = nn.Linear(5, 4, bias=False)
    with torch.no_grad():  # magnitude init keeps the 10 weights of magnitude 1
        layer.weight.copy_(
            torch.tensor(
                [[1.0, -1, 1, -1, 0.1], [1, -1, 1, -1, 0.1], [1, -1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1, 0.1]]
            )
        )
    callback = Rewiring(
        sparsity=0.5,
        sign="fixed",
        regrow="rigl",
        layers=["weight_holder"],
        init_mask="magnitude",
        regrow_magnitude=1e-3,
    )
    holder = nn.Module()
    holder.weight_holder = layer
    trainer = types.SimpleNamespace(optimizers=[torch.optim.SGD(layer.parameters(), lr=1.0)])
    callback.setup(trainer, holder, "fit")
    callback.on_fit_start(trainer, holder)
    mask0 = callback.masks["weight_holder"]
    assert torch.equal(mask0, layer.weight.detach().abs() == 1)
    grad = torch.zeros(4, 5)
    grad[0, 0], grad[1, 1], grad[2, 0] = 2.0, -3.0, 1.5  # three active synapses cross zero with lr = 1
    grad[0, 2] = 0.5  # an active one that shrinks but survives
    grad[3, 4], grad[2, 4], grad[3, 0], grad[1, 4] = -7.0, 6.0, 5.0, 0.01  # inactive: top-3 |grad|
    layer.weight.grad = grad.clone()
    optimizer = trainer.optimizers[0]
    callback.on_before_optimizer_step(trainer, holder, optimizer)
    assert torch.equal(layer.weight.grad, grad * mask0)  # inactive synapses get no update
    optimizer.step()
    callback.on_train_batch_end(trainer, holder, None, None, 0)
    expected = mask0.clone()
    expected[0, 0] = expected[1, 1] = expected[2, 0] = False
    expected[3, 4] = expected[2, 4] = expected[3, 0] = True
    assert torch.equal(callback.masks["weight_holder"], expected)
    w = layer.weight.detach()
    assert w[3, 4] == pytest.approx(1e-3) and w[2, 4] == pytest.approx(1e-3)  # the initial sign (+), tiny
    assert w[0, 0] == 0 and w[0, 2] == pytest.approx(0.5)


def test_free_sign_regrows_in_the_descent_direction():
    layer = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.2, 0.3]]))
    holder = nn.Module()
    holder.fc = layer
    callback = Rewiring(sparsity=0.34, sign="free", regrow="rigl", init_mask="magnitude")
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    trainer = types.SimpleNamespace(optimizers=[optimizer])
    callback.setup(trainer, holder, "fit")
    callback.on_fit_start(trainer, holder)
    layer.weight.grad = torch.tensor([[1.0, 4.0, 0.0]])  # [0,0] crosses zero; [0,1] (inactive) regrows
    callback.on_before_optimizer_step(trainer, holder, optimizer)
    optimizer.step()
    callback.on_train_batch_end(trainer, holder, None, None, 0)
    assert callback.masks["fc"].tolist() == [[False, True, True]]
    assert layer.weight[0, 1].item() == pytest.approx(-1e-4)  # sign of −grad


def test_aligned_rigl_regrows_only_where_the_gradient_grows_the_fixed_sign():
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.01, -0.01, 0.02]]))  # signs + + − +; magnitude keeps [0,0], [0,3]
    holder = nn.Module()
    holder.fc = layer
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    trainer = types.SimpleNamespace(optimizers=[optimizer])
    callback = Rewiring(sparsity=0.5, sign="fixed", regrow="rigl", init_mask="magnitude", rigl_score="aligned")
    callback.setup(trainer, holder, "fit")
    callback.on_fit_start(trainer, holder)
    # [0,3] crosses zero. Inactive: [0,1] (+) has grad +9 (|grad| is largest, but descent makes it negative);
    # [0,2] (−) has grad +2: descent makes it more negative, i.e. grows its magnitude.
    layer.weight.grad = torch.tensor([[0.0, 9.0, 2.0, 1.0]])
    callback.on_before_optimizer_step(trainer, holder, optimizer)
    optimizer.step()
    callback.on_train_batch_end(trainer, holder, None, None, 0)
    assert callback.masks["fc"].tolist() == [[True, False, True, False]]
    assert F.aligned_rigl_scores(torch.tensor([9.0, 2.0, -3.0]), torch.tensor([1.0, -1.0, 1.0])).tolist() == [0, 2, 3]


def test_static_mask_never_changes():
    torch.manual_seed(0)
    module = TwoLayers()
    callback = Rewiring(sparsity=0.5, sign="free", regrow="none", layers=["fc"], init_mask="magnitude")
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    masks = []
    drive(callback, module, optimizer, 30, lambda: masks.append(callback.masks["fc"]))
    assert all(torch.equal(m, masks[0]) for m in masks)
    assert torch.all(module.fc.weight.detach()[~masks[0]] == 0)


def test_every_n_steps_rewires_only_on_those_steps():
    torch.manual_seed(0)
    module = TwoLayers()
    callback = Rewiring(sparsity=0.75, sign="fixed", regrow="random", every_n_steps=5, layers=["fc"])
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    history = []

    def check():
        layer = callback._layers["fc"]
        history.append((callback.steps, layer.mask.clone(), layer.rewired_total))
        assert int(layer.mask.sum()) == 27 and torch.all(layer.param.detach() * layer.sign >= 0)

    drive(callback, module, optimizer, 40, check)
    changed_at = [s for (s, m, _), (_, prev, _) in zip(history[1:], history[:-1]) if not torch.equal(m, prev)]
    assert changed_at and all(s % 5 == 0 for s in changed_at)
    assert history[-1][2] > 0


def test_deep_r_noise_and_l1_keep_invariants_and_are_seeded():
    def run():
        torch.manual_seed(0)
        module = TwoLayers()
        callback = Rewiring(sparsity=0.5, sign="fixed", regrow="rigl", layers=["fc"], l1=0.5, temperature=1e-3, seed=2)
        drive(callback, module, torch.optim.SGD(module.parameters(), lr=0.05), 20)
        return callback, module.fc.weight.detach().clone()

    (cb_a, w_a), (cb_b, w_b) = run(), run()
    assert torch.equal(w_a, w_b) and torch.equal(cb_a.masks["fc"], cb_b.masks["fc"])
    layer = cb_a._layers["fc"]
    assert int(layer.mask.sum()) == 54 and torch.all(w_a * layer.sign >= 0) and torch.all(w_a[~layer.mask] == 0)
    assert layer.rewired_total > 0


def test_delayed_linear_is_rewired_through_its_own_weight():
    delayed_linear = pytest.importorskip("lightning_snn.layers.delayed_linear")
    torch.manual_seed(0)
    holder = nn.Module()
    holder.delay = delayed_linear.DelayedLinear(6, 4, max_delay=5)
    assert default_layers(holder) == ["delay"]
    callback = Rewiring(sparsity=0.5, sign="dale", regrow="rigl", seed=1)
    weight = holder.delay.weight

    def check():
        mask, sign = callback.masks["delay"], callback.signs["delay"]
        assert mask.shape == (4, 6) and int(mask.sum()) == 12
        assert torch.all(sign == sign[:1]) and torch.all(weight.detach() * sign >= 0)
        assert torch.all(weight.detach()[~mask] == 0)

    drive(callback, holder, torch.optim.SGD(holder.parameters(), lr=0.1), 30, check)
    assert callback._layers["delay"].rewired_total > 0


# ---- with a Trainer: logging, clean state_dict, resume ------------------------------------------
def tiny_data(n=64, steps=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, steps, 10, generator=gen) < 0.3).float()
    y = (x[:, :, :5].sum((1, 2)) > x[:, :, 5:].sum((1, 2))).long()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False, collate_fn=time_major_collate)


def tiny_model(seed=0, lr=0.05):
    torch.manual_seed(seed)
    return SpikingClassifier(FeedForwardSNN(10, [16], 2, tau=4.0), lr=lr)


def fit(model, callbacks, epochs, root, ckpt_path=None):
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, tiny_data(), ckpt_path=ckpt_path)
    return trainer


def test_trainer_logs_stats_and_keeps_state_dict_clean(tmp_path):
    model = tiny_model()
    keys = set(model.state_dict())
    callback = Rewiring(sparsity=0.9, regrow="rigl", plot=True)
    trainer = fit(model, [callback], 2, tmp_path)
    assert set(callback.masks) == {"network.synapses.0.synapse", "network.output_synapse"}
    assert set(model.state_dict()) == keys
    metrics = trainer.callback_metrics
    assert metrics["rewiring/network.synapses.0.synapse/sparsity"].item() == pytest.approx(0.9)
    assert metrics["rewiring/network.output_synapse/sparsity"].item() == pytest.approx(1 - 3 / 32)
    assert 0 < metrics["rewiring/network.synapses.0.synapse/mean_age"].item() <= 8
    w = model.network.synapses[0].synapse.weight.detach()
    assert int((w != 0).sum()) <= 16 and torch.all(w[~callback.masks["network.synapses.0.synapse"]] == 0)
    assert (tmp_path / "rewiring_mask_network_synapses_0_synapse.png").exists()


def test_resumed_run_continues_with_identical_masks(tmp_path):
    def callbacks(root):
        rewiring = Rewiring(sparsity=0.8, sign="free", regrow="random", seed=7)
        ckpt = ModelCheckpoint(dirpath=root, save_top_k=-1, every_n_epochs=1, filename="{epoch}")
        return rewiring, [rewiring, ckpt]

    full_cb, cbs = callbacks(tmp_path / "full")
    full = tiny_model()
    fit(full, cbs, 4, tmp_path / "full")
    resumed_cb, cbs = callbacks(tmp_path / "resumed")
    resumed = tiny_model(seed=123)  # different init: everything must come from the checkpoint
    fit(resumed, cbs, 4, tmp_path / "resumed", ckpt_path=str(tmp_path / "full" / "epoch=1.ckpt"))
    assert full_cb.steps == resumed_cb.steps == 16
    for name, mask in full_cb.masks.items():
        assert torch.equal(mask, resumed_cb.masks[name])
        assert torch.equal(full_cb.signs[name], resumed_cb.signs[name])
    assert torch.equal(full_cb.generator.get_state(), resumed_cb.generator.get_state())
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    # the checkpoint loads into a plain model with no callback, cut synapses at zero
    plain = SpikingClassifier.load_from_checkpoint(str(tmp_path / "full" / "epoch=3.ckpt"))
    w = plain.network.synapses[0].synapse.weight.detach()
    assert torch.equal(w != 0, full_cb.masks["network.synapses.0.synapse"] & (w != 0))
    assert int(full_cb.masks["network.synapses.0.synapse"].sum()) == 32


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, "0.9"])
def test_sparsity_outside_unit_interval_is_refused(sparsity):
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\)"):
        Rewiring(sparsity=sparsity)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sign": "positive"}, "unknown sign"),
        ({"regrow": "set"}, "unknown regrow"),
        ({"every_n_steps": 0}, "every_n_steps"),
        ({"rigl_score": "abs"}, "unknown rigl_score"),
        ({"layers": "fc"}, "layers must be None or a list"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rewiring(**kwargs)


def test_unknown_layer_and_layer_without_weight_are_refused():
    module = TwoLayers()
    module.act = nn.ReLU()
    with pytest.raises(ValueError, match=r"no layer named 'fc2'.*\['fc'\]"):
        Rewiring(layers=["fc2"]).resolve_layers(module)
    with pytest.raises(ValueError, match="layer 'act' \\(ReLU\\) has no `weight`"):
        Rewiring(layers=["act"]).resolve_layers(module)


def test_dale_needs_a_presynaptic_axis():
    module = TwoLayers()
    with pytest.raises(ValueError, match=r"sign='dale' needs a presynaptic axis.*'norm'.*\(5,\)"):
        Rewiring(sign="dale", layers=["norm"]).resolve_layers(module)
    Rewiring(sparsity=0.5, sign="fixed", layers=["norm"]).resolve_layers(module)  # a 1-d weight is fine otherwise


def test_sparsity_that_leaves_no_synapse_is_refused():
    with pytest.raises(ValueError, match="leaves no active synapse"):
        Rewiring(sparsity=0.99, layers=["conv"]).resolve_layers(TwoLayers())


def test_default_layers_are_linear_layers():
    assert default_layers(TwoLayers()) == ["fc"]


def test_pickled_callback_keeps_its_generator_state():
    import pickle

    callback = Rewiring(seed=5)
    torch.rand(3, generator=callback.generator)
    clone = pickle.loads(pickle.dumps(callback))  # what ddp_spawn does to callbacks
    assert torch.equal(clone.generator.get_state(), callback.generator.get_state())
    assert torch.equal(torch.rand(4, generator=clone.generator), torch.rand(4, generator=callback.generator))


def test_rewiring_config_trains_a_sparse_input_layer(tmp_path):
    from lightning_snn.cli import main

    cli = main(
        [
            "fit",
            "--config",
            "configs/mtsxor_rewiring.yaml",
            "--trainer.fast_dev_run",
            "2",
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
    rewiring = next(cb for cb in cli.trainer.callbacks if isinstance(cb, Rewiring))
    assert rewiring.steps == 2 and list(rewiring.masks) == ["network.synapses.0.synapse"]
    w = cli.model.network.synapses[0].synapse.weight.detach()
    assert int(rewiring.masks["network.synapses.0.synapse"].sum()) == 256  # round(0.1 · 40 · 64)
    assert torch.all(w[~rewiring.masks["network.synapses.0.synapse"]] == 0)
