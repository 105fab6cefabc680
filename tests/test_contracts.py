"""The extension contracts (issue 11), each exercised by a module written here, outside the package:

- declared parameter roles decide the optimiser groups (a toy neuron's ``self.tau`` gets the τ lr);
- one neuron factory: a toy neuron trains inside FeedForwardSNN, DelaySNN and TemporalConvSNN;
- layers own their weights: Rewiring rewires a toy synapse, DelaySigmaSchedule sets a toy σ;
- per-call statistics are gathered over the training batches only, with validation on;
- the input is validated once per network call, and no forward/backward reads a value back to the host.
"""

from __future__ import annotations

import contextlib

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_snn import validation
from lightning_snn.call_statistics import CallStatistics
from lightning_snn.callbacks import DelaySigmaSchedule, Rewiring, TemporalStatsLogger
from lightning_snn.data.collate import time_major_collate
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models import ConvSNN, DelaySNN, FeedForwardSNN, PSpikeSSM, TemporalConvSNN, build_network
from lightning_snn.neurons.factory import NeuronFactory
from lightning_snn.roles import declared_roles, named_tensors_by_role, parameter_roles

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning: tiny loaders, few workers


class ToyNeuron(nn.Module):
    """A leaky neuron with a sigmoid 'spike', written as a user would: ``self.tau`` is a plain Parameter."""

    parameter_roles = {"tau": "tau"}

    def __init__(self, n_neurons: int, tau: float = 4.0, gain: float = 1.0) -> None:
        super().__init__()
        self.tau = nn.Parameter(torch.full((n_neurons,), float(tau)))
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = torch.exp(-1.0 / self.tau.clamp_min(1.01))
        v, out = torch.zeros_like(x[0]), []
        for x_t in x.unbind(0):
            v = beta * v + x_t
            out.append(torch.sigmoid(self.gain * (v - 1.0)))
        return torch.stack(out)

    @staticmethod
    def call_statistics(output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"activity": output.detach().mean(dim=(0, 1))}


class ToySynapse(nn.Module):
    """A synapse owning a ``weight (out, in)`` and a σ buffer it declares."""

    parameter_roles = {"width": "sigma"}

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in**0.5)
        self.register_buffer("width", torch.tensor(3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t() * (1.0 + 0.0 * self.width)


def toy_spec(**init_args) -> dict:
    return {"class_path": f"{__name__}.ToyNeuron", "init_args": init_args}


def loader(n_inputs: int = 3, n_classes: int = 2, steps: int = 12, n: int = 32, scale: float = 1.0) -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, steps, n_inputs, generator=gen).round() * scale
    y = torch.randint(0, n_classes, (n,), generator=gen)
    return DataLoader(TensorDataset(x, y), batch_size=8, collate_fn=time_major_collate)


def trainer(**kwargs) -> L.Trainer:
    defaults = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(accelerator="cpu", **{**defaults, **kwargs})


# ---- declared roles -----------------------------------------------------------------------------
def test_a_new_neuron_gets_its_tau_into_the_tau_group_without_package_changes():
    net = FeedForwardSNN(3, [5, 4], 2, tau=None, neuron=toy_spec())
    model = SpikingClassifier(net, lr=1e-3, tau_lr=0.05, weight_decay=0.1)
    groups = {g["name"]: g for g in model.parameter_groups()}
    tau_params = {id(layer.tau) for layer in net.neurons}
    assert {id(p) for p in groups["tau"]["params"]} == tau_params
    assert groups["tau"]["lr"] == 0.05 and groups["tau"]["weight_decay"] == 0.0
    assert not tau_params & {id(p) for p in groups["weight"]["params"]}
    assert groups["weight"]["weight_decay"] == 0.1


def test_an_undeclared_parameter_is_a_weight_whatever_its_name():
    class Undeclared(ToyNeuron):
        parameter_roles = {}

    net = FeedForwardSNN(3, [5], 2, tau=None, neuron=Undeclared)
    assert parameter_roles(net)["neurons.0.tau"] == "weight"


def test_bad_declarations_are_refused():
    class Typo(ToyNeuron):
        parameter_roles = {"tua": "tau"}

    class BadRole(ToyNeuron):
        parameter_roles = {"tau": "time"}

    with pytest.raises(ValueError, match=r"declares 'tua', which is neither a parameter nor a buffer"):
        declared_roles(Typo(2))
    with pytest.raises(ValueError, match=r"unknown role 'time'"):
        parameter_roles(BadRole(2))


def test_the_package_layers_declare_their_temporal_parameters():
    net = DelaySNN(3, [4], 2, max_delay=5, neuron={"learn_threshold": True})
    roles = parameter_roles(net)
    assert {n for n, r in roles.items() if r == "tau"} == {"neurons.0.tau.raw"}
    assert {n for n, r in roles.items() if r == "delay"} == {
        "synapses.0.synapse.delay_position",
        "output_synapse.delay_position",
    }
    assert {n for n, r in roles.items() if r == "threshold"} == {"neurons.0.threshold"}
    sigmas = [name for name, *_ in named_tensors_by_role(net, "sigma")]
    assert sigmas == ["synapses.0.synapse.sigma", "output_synapse.sigma"]
    ssm = PSpikeSSM(2, 2, d_model=4, d_state=4, n_layers=1)
    assert {n for n, r in parameter_roles(ssm).items() if r == "tau"} == {
        "blocks.0.ssm.timescales.log_dt_raw",
        "blocks.0.ssm.timescales.log_a_real",
        "blocks.0.ssm.timescales.a_imag",
    }


# ---- one neuron factory -------------------------------------------------------------------------
NETWORKS = {
    "feedforward": lambda neuron, tau=None: FeedForwardSNN(3, [6, 5], 2, tau=tau, neuron=neuron),
    "delay": lambda neuron, tau=None: DelaySNN(3, [6], 2, max_delay=4, tau=tau, neuron=neuron),
    "temporal_conv": lambda neuron, tau=None: TemporalConvSNN(3, [6, 5], 2, tau=tau, neuron=neuron),
}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_a_toy_neuron_trains_inside_every_stacked_network(kind):
    torch.manual_seed(0)
    net = NETWORKS[kind](toy_spec(gain=2.0), tau=[3.0, 8.0] if kind != "delay" else 3.0)
    assert all(isinstance(n, ToyNeuron) for n in net.neurons)
    assert net.neurons[0].gain == 2.0 and net.neurons[0].tau[0].item() == 3.0
    before = [layer.tau.detach().clone() for layer in net.neurons]
    model = SpikingClassifier(net, lr=0.05, scheduler="none")
    trainer(max_epochs=2).fit(model, loader())
    assert all(not torch.equal(b, layer.tau) for b, layer in zip(before, net.neurons))  # τ learned
    clone = build_network(net.spec)  # the recorded spec rebuilds the same network
    clone.load_state_dict(net.state_dict())
    x = torch.rand(7, 2, 3)
    torch.testing.assert_close(clone.eval()(x), net.eval()(x))


def test_neuron_arguments_are_written_once():
    net = FeedForwardSNN(3, [4], 2, neuron={"dt": 0.5, "learn_tau": False, "parametrisation": "log", "tau_min": 0.3})
    assert net.neurons[0].tau.dt == 0.5 and not net.neurons[0].tau.learn
    assert net.output.tau.dt == 0.5 and net.output.tau.parametrisation == "log"  # shared with the readout
    assert net.spec["init_args"]["neuron"]["dt"] == 0.5


def test_neuron_spec_forms_and_errors():
    from lightning_snn.neurons.lif import LearnableLIF

    assert NeuronFactory.from_spec(None).cls is LearnableLIF
    assert NeuronFactory.from_spec(ToyNeuron).cls is ToyNeuron
    assert NeuronFactory.from_spec(f"{__name__}.ToyNeuron").cls is ToyNeuron
    assert NeuronFactory.from_spec({"decay_input": False}).init_args == {"decay_input": False}
    assert FeedForwardSNN(3, [4], 2, tau=None, neuron=ToyNeuron).spec["init_args"]["neuron"] == f"{__name__}.ToyNeuron"
    with pytest.raises(TypeError, match=r"Cannot build the neuron .*ToyNeuron\(n_neurons, \*\*\{'colour': 1"):
        FeedForwardSNN(3, [4], 2, tau=None, neuron=toy_spec(colour=1))
    with pytest.raises(ValueError, match="Cannot import the class 'nowhere.Neuron'"):
        FeedForwardSNN(3, [4], 2, neuron={"class_path": "nowhere.Neuron"})
    with pytest.raises(ValueError, match="the network sets the layer width itself"):
        FeedForwardSNN(3, [4], 2, neuron={"n_neurons": 3})


# ---- layers own their weights: callbacks act on declarations -------------------------------------
class ToySynapseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.synapse = ToySynapse(3, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.synapse(x)))


def test_rewiring_and_sigma_schedule_act_on_a_toy_synapse():
    torch.manual_seed(0)
    model = SpikingClassifier(ToySynapseNet(), num_classes=2, lr=0.05, scheduler="none")
    rewiring = Rewiring(sparsity=0.75, regrow="random", layers=["network.synapse"], seed=0)
    schedule = DelaySigmaSchedule(end=0.5, fraction=1.0)
    trainer(max_epochs=2, callbacks=[rewiring, schedule]).fit(model, loader())
    weight = model.network.synapse.weight
    assert int((weight != 0).sum()) == 6 and rewiring.masks["network.synapse"].sum() == 6  # round(0.25 · 24)
    assert schedule.starts == {"network.synapse.width": 3.0}
    steps = 8  # 2 epochs of 4 batches: σ at the start of the last batch, progress 7/8
    assert model.network.synapse.width.item() == pytest.approx(3.0 * (0.5 / 3.0) ** (7 / steps))


# ---- statistics gathered by hooks over the training batches -------------------------------------
class TrainValData(L.LightningDataModule):
    """Training inputs that make neurons fire, validation inputs that keep them silent."""

    def train_dataloader(self):
        return loader(scale=3.0)

    def val_dataloader(self):
        return loader(scale=0.0)


def test_logged_spike_rate_is_the_training_batches_rate_with_validation_on(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    net = FeedForwardSNN(3, [6], 2, tau=2.0, neuron={"decay_input": False})
    seen = []  # the test's own record of the layer's output on training batches (train mode)
    net.neurons[0].register_forward_hook(
        lambda module, args, out: seen.append(out.detach().mean(dim=(0, 1))) if module.training else None
    )
    model = SpikingClassifier(net, lr=1e-3, scheduler="none")
    logger = CSVLogger(tmp_path)
    trainer(max_epochs=1, logger=logger, callbacks=[TemporalStatsLogger(plot=False)]).fit(model, TrainValData())
    import csv

    rows = list(csv.DictReader(open(f"{logger.log_dir}/metrics.csv")))
    logged = [float(r["spike_rate/network.neurons.0/mean"]) for r in rows if r.get("spike_rate/network.neurons.0/mean")]
    expected = torch.stack(seen).mean(0).mean().item()  # equal batch sizes: the plain mean over batches
    assert len(seen) == 4 and expected > 0.2  # the training batches make it fire ...
    assert logged == [pytest.approx(expected, rel=1e-6)]  # ... and that, not the silent validation, is logged


def test_neurons_keep_no_per_call_state():
    net = FeedForwardSNN(3, [6], 2)
    state = {k: v for k, v in vars(net.neurons[0]).items() if not k.startswith("_")}
    net(torch.rand(5, 2, 3))
    assert {k: v for k, v in vars(net.neurons[0]).items() if not k.startswith("_")} == state


def test_call_statistics_weight_each_call_by_its_rows():
    lif = FeedForwardSNN(3, [4], 2).neurons[0]
    x1, x2 = torch.rand(10, 3, 4) * 3, torch.rand(5, 2, 4)
    with CallStatistics(lif) as recorder:
        s1, s2 = lif(x1), lif(x2)
    expected = (s1.sum(dim=(0, 1)) + s2.sum(dim=(0, 1))) / (30 + 10)
    torch.testing.assert_close(recorder.means()["spike_rate"]["root"], expected)
    lif(x1)  # detached: no longer recorded
    torch.testing.assert_close(recorder.means()["spike_rate"]["root"], expected)


# ---- validation at the edge, no host syncs -------------------------------------------------------
def all_networks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "feedforward": FeedForwardSNN(3, [6, 5], 2, tau=[2.0, 5.0]),
        "feedforward_spikes": FeedForwardSNN(3, [6], 2, readout="spikes", neuron={"detach_reset": False}),
        "delay": DelaySNN(3, [6, 5], 2, max_delay=4, batch_norm=True, dropout=0.1),
        "delay_dcls": DelaySNN(3, [6], 2, max_delay=4, delay_backend="dcls"),
        "temporal_conv": TemporalConvSNN(3, [6, 5], 2),
        "pspikessm": PSpikeSSM(3, 2, d_model=8, d_state=4, n_layers=2, seed=0),
        "conv": ConvSNN(input_shape=(2, 8, 8), n_outputs=2, n_conv=1, channels=4, fc_hidden=8, votes=2),
    }


def network_input(name: str) -> torch.Tensor:
    return torch.rand(6, 2, 2, 8, 8) if name == "conv" else torch.rand(6, 2, 3)


def test_the_input_is_checked_once_per_network_call(monkeypatch):
    calls = []
    original = validation.check_time_major
    monkeypatch.setattr(validation, "check_time_major", lambda *a: calls.append(a[-1]) or original(*a))
    for name, net in all_networks().items():
        calls.clear()
        net(network_input(name))
        assert calls == [type(net).__name__], name
    calls.clear()
    DelaySNN(3, [6], 2).synapses[0].synapse(torch.rand(4, 2, 3))  # a layer called on its own checks itself
    assert calls == ["DelayedLinear"]


def test_bad_network_input_is_reported_by_the_network():
    with pytest.raises(ValueError, match=r"DelaySNN expects time-major input \(T, B, 3\)"):
        DelaySNN(3, [6], 2)(torch.rand(4, 2, 5))
    with pytest.raises(ValueError, match="floating-point"):
        FeedForwardSNN(3, [6], 2)(torch.ones(4, 2, 3, dtype=torch.long))
    nan = torch.full((4, 2, 3), float("nan"))
    FeedForwardSNN(3, [6], 2)(nan)  # no NaN search by default (it would be a host sync) ...
    with validation.nan_checks(), pytest.raises(ValueError, match="FeedForwardSNN received NaN"):
        FeedForwardSNN(3, [6], 2)(nan)  # ... but in debug mode


@contextlib.contextmanager
def host_reads_forbidden():
    """Make every Python-level read of a tensor value (item, bool, float, int, tolist) raise."""

    def forbid(name):
        def read(self, *args, **kwargs):
            raise AssertionError(f"host read Tensor.{name} in a forward/backward pass")

        return read

    names = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    try:
        for name in names:
            setattr(torch.Tensor, name, forbid(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("name", sorted(all_networks()))
def test_forward_and_backward_read_no_value_back(name, monkeypatch):
    """The CPU stand-in for CUDA's sync debug mode (below): the PyTorch paths (what CUDA runs) of every
    network's training forward and backward never read a tensor value into Python."""
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
    net = all_networks()[name].train()
    x = network_input(name)
    with host_reads_forbidden():
        net(x).float().sum().backward()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(all_networks()))
def test_cuda_forward_and_backward_do_not_synchronise(name):
    net = all_networks()[name].cuda().train()
    x = network_input(name).cuda()
    net(x).float().sum().backward()  # warm-up: lazy initialisations may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        net(x).float().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
