"""Issue 12, module side: hostile numbers and inputs (items 6, 7, 12, 13, 14).

Each test reproduces a failure that used to pass silently or end in a raw torch error.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_snn import validation
from lightning_snn.callbacks import DelaySigmaSchedule, NonFiniteGuard
from lightning_snn.callbacks.non_finite_guard import NonFiniteError, tau_layers
from lightning_snn.data.collate import time_major_collate
from lightning_snn.functional import lif_numba
from lightning_snn.functional.lif import LIFConfig, lif_reference
from lightning_snn.functional.lif_scan import lif_fused
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import IntegerDelayLinear
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models import ConvSNN, DelaySNN, FeedForwardSNN, PSpikeSSM, TemporalConvSNN
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF
from lightning_snn.neurons.spike_sampler import SpikeSampler
from lightning_snn.neurons.time_constant import TimeConstant

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning: tiny loaders, few workers
NAN, INF = float("nan"), float("inf")


def trainer(tmp_path=None, **kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    if tmp_path is not None:
        defaults["default_root_dir"] = tmp_path
    return L.Trainer(**{**defaults, **kwargs})


def loader(n_inputs: int = 3, steps: int = 6, n: int = 32) -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, steps, n_inputs, generator=gen).round()
    y = torch.randint(0, 2, (n,), generator=gen)
    return DataLoader(TensorDataset(x, y), batch_size=8, collate_fn=time_major_collate)


# ---- item 6: NaN that passed every guard -------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: DelayedLinear(3, 4, 5, sigma=NAN),
        lambda: DelayedLinear(3, 4, 5, sigma=INF),
        lambda: DelayedLinear(3, 4, 5).set_sigma(NAN),
        lambda: DelaySigmaSchedule(end=NAN),
        lambda: DelaySigmaSchedule(start=NAN),
        lambda: S4DLayer(4, d_state=4, dt_max=INF),
        lambda: S4DLayer(4, d_state=4, dt_min=NAN),
    ],
)
def test_non_finite_temporal_arguments_are_refused(make):
    with pytest.raises(ValueError, match="finite"):
        make()


def test_a_nan_sigma_that_gets_in_anyway_makes_the_output_nan_not_zero():
    """Before: the FFT path output exactly 0 with zero gradients, so NonFiniteGuard never fired."""
    layer = DelayedLinear(3, 4, 5)
    layer.sigma.fill_(NAN)  # e.g. from a hand-edited checkpoint
    x = torch.rand(6, 2, 3)
    assert layer(x).isnan().all()
    with validation.nan_checks(), pytest.raises(ValueError, match="DelayedLinear"):
        layer(torch.full((6, 2, 3), NAN))


def test_sigma_schedule_refuses_a_nan_start_found_on_the_layer():
    net = DelaySNN(3, [4], 2, max_delay=5)
    net.synapses[0].synapse.sigma.fill_(NAN)
    schedule = DelaySigmaSchedule()
    with pytest.raises(ValueError, match="finite"):
        schedule.apply(net, 0.0)


class BreakWeight(Callback):
    """Writes a NaN into the first layer's weight after the given optimiser step."""

    def __init__(self, step: int, attribute: str = "weight") -> None:
        self.step, self.attribute = step, attribute

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                getattr(pl_module.network.synapses[0].synapse, self.attribute).fill_(NAN)


def test_guard_checks_parameters_before_every_checkpoint_whatever_the_interval(tmp_path):
    """Before: NonFiniteGuard(check_every_n_steps=5) let NaN parameters into the checkpoints of steps 2..4."""
    torch.manual_seed(0)
    model = SpikingClassifier(FeedForwardSNN(3, [4], 2), lr=1e-3)
    checkpoints = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1)
    fit = trainer(
        tmp_path, max_steps=4, enable_checkpointing=True,
        callbacks=[BreakWeight(step=2), NonFiniteGuard(check_every_n_steps=5), checkpoints],
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match="before a checkpoint save"):
        fit.fit(model, loader())
    saved = sorted(tmp_path.glob("*.ckpt"))
    assert saved, "the checkpoints before the failure are kept"
    for path in saved:
        state = torch.load(path, weights_only=False)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), path.name


def _stub_trainer() -> SimpleNamespace:
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)
    return SimpleNamespace(global_step=1, current_epoch=0, precision="32-true", strategy=strategy)


def test_guard_blames_the_time_constant_when_it_and_weights_are_bad():
    """Before: a NaN τ that poisoned every gradient was reported as the first weight's problem."""
    model = SpikingClassifier(FeedForwardSNN(3, [4], 2), lr=1e-3)
    guard = NonFiniteGuard()
    guard.tau_layers = tau_layers(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, NAN)
    with pytest.raises(NonFiniteError, match=r"gradient of τ parameter 'network.neurons.0.tau.raw'"):
        guard.on_before_optimizer_step(_stub_trainer(), model, None)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(NAN)
    with pytest.raises(NonFiniteError, match=r"τ parameter 'network.neurons.0.tau.raw'"):
        guard.on_train_batch_end(_stub_trainer(), model, None, None, 0)


# ---- item 7: one definition of LIF on non-finite state, on every path -------------------------------
def _paths(monkeypatch):
    paths = {"reference": lambda x, d, t, c: lif_reference(x, d, t, c)}

    def loop(x, d, t, c):
        monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
        try:
            return lif_fused(x, d, t, c)
        finally:
            monkeypatch.delenv("LIGHTNING_SNN_NUMBA")

    paths["pytorch_loop"] = loop
    if lif_numba.available():
        paths["compiled"] = lambda x, d, t, c: lif_fused(x, d, t, c)
    return paths


def _hostile(case: str, per_neuron: bool):
    torch.manual_seed(0)
    x = torch.rand(7, 3, 4) * 2
    decay = torch.full((4,), 0.6) if per_neuron else torch.tensor(0.6)
    if case == "nan_tau":
        if per_neuron:
            decay[1] = NAN
        else:
            decay = torch.tensor(NAN)
    elif case == "nan_input":
        x[2, 1, 1] = NAN
    else:
        x[2, 1, 1] = INF if case == "+inf" else -INF
    return x, decay, torch.tensor(1.0)


@pytest.mark.parametrize("case", ["nan_tau", "nan_input", "+inf", "-inf"])
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize(
    "cfg", [LIFConfig(), LIFConfig(reset="soft", decay_input=False), LIFConfig(v_reset=-0.5, detach_reset=False)]
)
def test_every_lif_path_gives_the_same_nan_for_non_finite_state(case, per_neuron, cfg, monkeypatch):
    """Before: the compiled CPU path never spiked and the PyTorch loop (CUDA's) spiked every step."""
    x, decay, thr = _hostile(case, per_neuron)
    outputs = {name: run(x, decay, thr, cfg) for name, run in _paths(monkeypatch).items()}
    ref = outputs["reference"]
    for name, out in outputs.items():
        torch.testing.assert_close(out, ref, equal_nan=True, rtol=0, atol=0, msg=f"{name} differs")
    # the defined behaviour: the affected neurons are NaN from the bad step on, the others untouched
    if case == "nan_tau":
        bad = ref[:, :, 1] if per_neuron else ref
        assert bad.isnan().all()
        if per_neuron:
            assert not ref[:, :, [0, 2, 3]].isnan().any()
    else:
        assert ref[2:, 1, 1].isnan().all() and not ref[:2].isnan().any()
        mask = torch.ones_like(ref, dtype=torch.bool)
        mask[:, 1, 1] = False
        assert not ref[mask].isnan().any()


@pytest.mark.parametrize("case", ["nan_tau", "+inf", "-inf"])
def test_lif_layer_output_is_nan_so_the_loss_is_nan(case):
    """The silent result: a LearnableLIF with a NaN τ (or a ±inf input) gave finite spikes and a finite loss."""
    layer = LearnableLIF(4)
    x, _, _ = _hostile(case if case != "nan_tau" else "+inf", False)
    if case == "nan_tau":
        x = torch.rand(7, 3, 4)
        with torch.no_grad():
            layer.tau.raw.fill_(NAN)
    assert not torch.isfinite(layer(x).sum())


@pytest.mark.parametrize("case", ["nan_tau", "nan_threshold", "+inf", "nan_input"])
def test_lif_raises_naming_itself_in_debug_mode(case):
    net = FeedForwardSNN(3, [4], 2)
    lif = net.neurons[0]
    x = torch.rand(5, 2, 3)
    with torch.no_grad():
        if case == "nan_tau":
            lif.tau.raw.fill_(NAN)
        elif case == "nan_threshold":
            lif.threshold.fill_(NAN)
        else:
            net.synapses[0].synapse.bias.fill_(INF if case == "+inf" else NAN)
    with validation.nan_checks(), pytest.raises(ValueError, match="LearnableLIF received (NaN|inf)"):
        net(x)
    standalone = LearnableLIF(3)
    with validation.nan_checks(), pytest.raises(ValueError, match="LearnableLIF received inf"):
        standalone(torch.full((2, 1, 3), INF))


def test_nan_tau_stops_training_through_the_guard():
    torch.manual_seed(0)
    model = SpikingClassifier(FeedForwardSNN(3, [4], 2), lr=1e-3)
    with torch.no_grad():
        model.network.neurons[0].tau.raw.fill_(NAN)
    with pytest.raises(NonFiniteError, match="training loss is nan"):
        trainer(max_steps=2, callbacks=[NonFiniteGuard()]).fit(model, loader())


# ---- item 12: arguments accepted then failing later --------------------------------------------------
@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: LeakyReadout(0), ValueError, r"LeakyReadout: n_neurons must be an integer >= 1, got 0"),
        (lambda: LearnableLIF(2.5), TypeError, r"LearnableLIF: n_neurons must be an integer >= 1, got 2.5"),
        (lambda: ClampFuse(0), ValueError, r"ClampFuse: d_model must be an integer >= 1, got 0"),
        (lambda: SpikeSampler(3, seed=2**64), ValueError, r"SpikeSampler: seed must be an integer >= 0 and <= "),
        (lambda: SpikeSampler(3, seed=1.5), TypeError, r"SpikeSampler: seed must be an integer"),
        (lambda: SpikeSampler(3, scale=NAN), ValueError, r"SpikeSampler: scale must be a finite number"),
        (lambda: SpikeMixer(0), ValueError, r"SpikeMixer: d_model must be an integer >= 1"),
        (lambda: S4DLayer(2.0), TypeError, r"S4DLayer: d_model must be an integer"),
        (lambda: CausalConv1d(3, 4, 2.5), TypeError, r"CausalConv1d: kernel_size must be an integer"),
        (lambda: DelayedLinear(3.0, 4, 5), TypeError, r"DelayedLinear: in_features must be an integer"),
        (lambda: LearnableLIF(3, threshold=INF), ValueError, r"LearnableLIF: threshold must be a finite number"),
        (lambda: IntegerDelayLinear(np.ones((2, 3)), np.zeros((2, 3))), TypeError, r"IntegerDelayLinear expects"),
    ],
)
def test_bad_module_arguments_fail_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_largest_seed_is_accepted():
    sampler = SpikeSampler(3, seed=2**64 - 1).train()
    assert sampler(torch.rand(2, 1, 3)).shape == (2, 1, 3)


# ---- item 13: inputs that ended in raw torch errors ---------------------------------------------------
LAYERS = {
    "DelayedLinear": lambda: DelayedLinear(3, 4, 3),
    "IntegerDelayLinear": lambda: IntegerDelayLinear(torch.randn(4, 3), torch.randint(0, 3, (4, 3))),
    "CausalConv1d": lambda: CausalConv1d(3, 4, 2),
    "SpikeMixer": lambda: SpikeMixer(3),
    "S4DLayer": lambda: S4DLayer(3, d_state=4),
    "FeedForwardSNN": lambda: FeedForwardSNN(3, [4], 2),
    "DelaySNN": lambda: DelaySNN(3, [4], 2, max_delay=3),
    "TemporalConvSNN": lambda: TemporalConvSNN(3, [4], 2),
    "PSpikeSSM": lambda: PSpikeSSM(3, 2, d_model=4, d_state=4, n_layers=1, pool="none"),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_other_float_dtypes_are_cast_to_the_module_dtype(name, dtype):
    module = LAYERS[name]().train()
    out = module(torch.rand(5, 2, 3).to(dtype))
    assert out.dtype == torch.float32 and out.shape[:2] == (5, 2) and torch.isfinite(out).all()


def test_clamp_fuse_and_conv_snn_cast_too():
    fuse = ClampFuse(3)
    assert fuse(torch.rand(2, 1, 3, dtype=torch.float16), torch.rand(2, 1, 3, dtype=torch.float64)).dtype == (
        torch.float32
    )
    conv = ConvSNN((1, 4, 4), 2, n_conv=1, channels=2, fc_hidden=4, votes=2)
    assert conv(torch.rand(3, 2, 1, 4, 4, dtype=torch.bfloat16)).dtype == torch.float32


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_numpy_input_is_a_clear_type_error(name):
    with pytest.raises(TypeError, match=rf"{name} expects a torch.Tensor .*torch.as_tensor"):
        LAYERS[name]()(np.zeros((5, 2, 3), dtype=np.float32))


@pytest.mark.parametrize("name", ["DelayedLinear", "DelaySNN", "S4DLayer", "PSpikeSSM"])
def test_an_empty_batch_is_a_clear_error_in_the_fft_layers(name):
    """Before: 'MKL FFT error: Intel MKL DFTI ERROR: Inconsistent configuration parameters'."""
    with pytest.raises(ValueError, match=rf"{name} expects time-major input \(T, B, 3\) with T >= 1 and B >= 1"):
        LAYERS[name]()(torch.rand(5, 0, 3))


@pytest.mark.parametrize("shape", [(0, 2, 1, 4, 4), (3, 0, 1, 4, 4), (0, 2, 16), (3, 0, 16)])
def test_conv_snn_empty_time_or_batch_is_a_clear_error(shape):
    conv = ConvSNN((1, 4, 4), 2, n_conv=1, channels=2, fc_hidden=4, votes=2)
    with pytest.raises(ValueError, match=r"ConvSNN expects time-major input .* T >= 1 and B >= 1"):
        conv(torch.rand(shape))


# ---- item 14: the log-form τ gradient stays finite ---------------------------------------------------
@pytest.mark.parametrize("raw", [-200.0, -90.0, -46.0, -45.0, 0.0, 3.0, 88.0, 89.0, 200.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_tau_gradient_is_finite_for_any_raw_value(raw, dtype):
    """Before: NaN for raw values outside about [-45, 88] (0·inf in exp(-dt/e^raw)'s chain rule)."""
    tc = TimeConstant(2, tau=3.0, per_neuron=True, parametrisation="log").to(dtype)
    with torch.no_grad():
        tc.raw.fill_(raw)
    for sign in (1.0, -1.0):
        (grad,) = torch.autograd.grad((tc.decay() * torch.tensor([sign, -sign], dtype=dtype)).sum(), tc.raw)
        assert torch.isfinite(grad).all(), (raw, sign, grad)
    beta = tc.decay().detach()
    assert ((beta >= math.exp(-1 / tc.tau_min) - 1e-6) & (beta <= math.exp(-1 / tc.tau_max) + 1e-6)).all()
