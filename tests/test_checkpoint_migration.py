"""Checkpoints written by version 0.1 (``tests/fixtures/make_v0_1_checkpoints.py``, run at commit 587f5b4)
load into today's layout and compute what they computed then:

- ``DelayedLinear`` kept its weight in ``dcls.weight`` ``(O, I, 1)``; it now owns ``weight`` ``(O, I)``;
- ``S4DLayer`` kept its time scales in a submodule ``tau``; it is now ``timescales``;
- the stacked networks took ``learn_tau``, ``per_neuron``, ``parametrisation`` and ``dt`` themselves;
  they now live in the neuron spec (``StackedSNN.migrate_init_args``);
- ``DelaySigmaSchedule`` saved no σ_0 and ``Rewiring`` saved DelayedLinear masks as ``(O, I, 1)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule, sigma_at
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.lit.classifier import SpikingClassifier

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["v0_1_delay_snn", "v0_1_feedforward", "v0_1_pspikessm"])
def test_version_0_1_checkpoint_loads_and_computes_the_same(name):
    model = SpikingClassifier.load_from_checkpoint(FIXTURES / f"{name}.ckpt", map_location="cpu")
    expected = torch.load(FIXTURES / f"{name}_outputs.pt", weights_only=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(expected["x"]), expected["eval"], rtol=1e-5, atol=1e-6)
        if expected["train"] is not None:
            model.train()
            torch.testing.assert_close(model(expected["x"]), expected["train"], rtol=1e-5, atol=1e-6)


def test_old_network_arguments_move_into_the_neuron_spec():
    model = SpikingClassifier.load_from_checkpoint(FIXTURES / "v0_1_feedforward.ckpt", map_location="cpu")
    init_args = model.network.spec["init_args"]
    assert init_args["neuron"] == {"learn_tau": True, "per_neuron": True, "parametrisation": "plif", "dt": 1.0}
    assert model.network.neurons[1].tau.per_neuron and model.network.neurons[1].tau.raw.shape == (8,)


def test_old_delayed_linear_state_dict_key_is_migrated():
    layer = DelayedLinear(3, 2, max_delay=4)
    old = {
        "dcls.weight": torch.arange(6.0).reshape(2, 3, 1),
        "delay_position": torch.ones(2, 3),
        "sigma": torch.tensor(1.5),
    }
    layer.load_state_dict(old)
    assert torch.equal(layer.weight, torch.arange(6.0).reshape(2, 3))
    assert set(layer.state_dict()) == {"weight", "delay_position", "sigma"}


def test_sigma_schedule_recovers_its_start_from_an_old_checkpoint():
    sigma = sigma_at(0.1, 12.5, 0.23, 0.25)
    schedule = DelaySigmaSchedule(fraction=0.25)
    schedule.load_state_dict({"progress": 0.1, "sigmas": {"network.synapses.0.synapse": sigma}})
    assert schedule.starts == {"network.synapses.0.synapse.sigma": pytest.approx(12.5)}


def test_rewiring_state_of_a_delayed_linear_from_version_0_1_loads():
    import types

    from torch import nn

    from lightning_snn.callbacks import Rewiring

    holder = nn.Module()
    holder.delay = DelayedLinear(6, 4, max_delay=5)
    callback = Rewiring(sparsity=0.5, layers=["delay"], seed=1)
    trainer = types.SimpleNamespace(optimizers=[])
    callback.setup(trainer, holder, "fit")
    mask = torch.zeros(4, 6, 1, dtype=torch.bool)  # version 0.1 rewired dcls.weight (out, in, 1)
    mask.view(-1)[::2] = True
    layer_state = {"mask": mask, "sign": torch.ones(4, 6, 1, dtype=torch.int8), "age": torch.zeros(4, 6, 1)}
    state = {"steps": 3, "generator": torch.Generator().manual_seed(0).get_state()}
    callback.load_state_dict({**state, "layers": {"delay": {**layer_state, "rewired_total": 2}}})
    callback.on_fit_start(trainer, holder)
    assert torch.equal(callback.masks["delay"], mask[..., 0]) and callback.steps == 3
    assert torch.all(holder.delay.weight.detach()[~mask[..., 0]] == 0)


def test_old_conv_snn_arguments_move_into_the_neuron_spec():
    from lightning_snn.models import ConvSNN, build_network

    old = {"input_shape": [2, 8, 8], "n_outputs": 2, "n_conv": 1, "channels": 2, "fc_hidden": 4, "votes": 1}
    spec = {"class_path": "lightning_snn.models.conv_snn.ConvSNN", "init_args": {**old, "learn_tau": False}}
    net = build_network({**spec, "init_args": {**spec["init_args"], "neuron": {"decay_input": False}}})
    assert isinstance(net, ConvSNN) and net.spec["init_args"]["neuron"] == {"learn_tau": False, "decay_input": False}
    assert not net.lif1.tau.learn and not net.lif1.cfg.decay_input
