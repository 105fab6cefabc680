"""ConvSNN (PLIF architecture, paper B)."""

from __future__ import annotations

import pytest
import torch

from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.conv_snn import ConvSNN, SequenceDropout
from lightning_snn.models.network import build_network


def tiny(**kw):
    args = dict(input_shape=(2, 8, 8), n_outputs=3, n_conv=2, channels=4, fc_hidden=16, votes=10, dropout=0.5)
    return ConvSNN(**{**args, **kw})


def test_shapes_outputs_are_vote_rates_and_flat_input_matches():
    net = tiny().eval()
    x = (torch.rand(5, 2, 2, 8, 8) < 0.3).float()
    out = net(x)
    assert out.shape == (5, 2, 3)
    # each output is the mean of 10 binary spikes: a multiple of 0.1 in [0, 1]
    assert torch.allclose(out * 10, (out * 10).round(), atol=1e-5) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(net(x.flatten(2)), out)
    assert net.blocks[0].neuron.n_neurons == 4 * 8 * 8 and net.blocks[1].neuron.n_neurons == 4 * 4 * 4
    assert net.fc1.in_features == 4 * 2 * 2


def test_voting_is_avgpool1d_of_the_last_layer_spikes():
    net = tiny().eval()
    x = (torch.rand(4, 3, 2, 8, 8) < 0.5).float()
    spikes = {}
    net.lif2.register_forward_hook(lambda m, i, o: spikes.setdefault("s", o))
    out = net(x)
    s = spikes["s"]
    want = torch.nn.AvgPool1d(10)(s.flatten(0, 1).unsqueeze(1)).view(4, 3, 3)
    assert torch.allclose(out, want)


def test_time_shared_dropout_mask():
    torch.manual_seed(1)
    drop = SequenceDropout(0.5).train()
    y = drop(torch.ones(6, 4, 20))
    assert torch.equal(y, y[:1].expand_as(y))  # same mask at every step
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 0 < (y[0] == 0).float().mean() < 1
    assert torch.equal(drop.eval()(torch.ones(2, 2, 3)), torch.ones(2, 2, 3))


def test_plif_loss_gradients_reach_every_tau_and_spec_rebuilds():
    net = tiny(dropout=0.0, neuron={"threshold": 0.2})  # every layer spikes at init
    model = SpikingClassifier(net, readout="mean", loss="mse_rate")
    x = (torch.rand(6, 4, 2, 8, 8) < 0.4).float()
    y = torch.tensor([0, 1, 2, 1])
    logits = model(x).mean(0)
    loss = model._loss(logits, y)
    want = ((logits - torch.nn.functional.one_hot(y, 3).float()) ** 2).mean()
    assert torch.allclose(loss, want)
    loss.backward()
    taus = [p for n, p in net.named_parameters() if ".tau." in f".{n}"]
    assert len(taus) == 4 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in taus)
    assert {g["name"] for g in model.parameter_groups()} == {"weight", "tau"}
    clone = build_network(net.spec)
    clone.load_state_dict(net.state_dict())
    assert torch.equal(clone.eval()(x), net.eval()(x))


def test_constructor_errors():
    with pytest.raises(ValueError, match="too small for n_conv=4"):
        tiny(n_conv=4)
    with pytest.raises(ValueError, match="input_shape must be"):
        ConvSNN(input_shape=(0, 8, 8))
    with pytest.raises(ValueError, match=r"expects time-major frames \(T, B, 2, 8, 8\)"):
        tiny()(torch.zeros(3, 2, 8, 8))


def test_norm_per_step_normalises_each_step_as_the_authors_loop():
    torch.manual_seed(0)
    net = tiny(dropout=0.0, norm_per_step=True)
    block = net.blocks[0]
    x = torch.randn(3, 4, 2, 8, 8)
    want = torch.stack([block.norm(block.conv(frame)) for frame in x])  # codes/models.py:228-233, BN per step
    block.norm.reset_running_stats()
    got = {}
    block.neuron.register_forward_hook(lambda m, i, o: got.setdefault("in", i[0]))
    block(x)
    assert torch.allclose(got["in"].reshape(want.shape), want, atol=1e-6)
    net.eval()
    flat = tiny(dropout=0.0).eval()
    flat.load_state_dict(net.state_dict())
    assert torch.equal(net(x), flat(x))  # evaluation uses the running statistics either way
