"""The delay papers' neurons and network options against transcriptions of the authors' code
(``mbalazs98/spatiotemporal`` = ST, ``Thvnvtos/SNN-delays`` = SD) and against SpikingJelly, which SD uses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.neurons.lagged_lif import LaggedLeakyReadout, LaggedLIF
from lightning_snn.neurons.lif import LearnableLIF


class AuthorsSpike(torch.autograd.Function):
    """ST layers.py:219-234 (SurrGradSpike, alpha = 5)."""

    alpha = 5

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        out = torch.zeros_like(input)
        out[input > 0] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return AuthorsSpike.alpha / 2 / (1 + (math.pi / 2 * AuthorsSpike.alpha * input).pow_(2)) * grad_output.clone()


def authors_lif(inputs, tau=10.05, v_threshold=1.0):
    """ST layers.py:257-281 (LIF.forward, detach_reset=True), line for line."""
    spk_rec = []
    syn = torch.zeros((inputs.shape[1], inputs.shape[2]))
    mem = torch.zeros((inputs.shape[1], inputs.shape[2]))
    for t in range(inputs.shape[0]):
        h1 = inputs[t]
        mthr = mem - v_threshold
        out = AuthorsSpike.apply(mthr)
        rst = out.detach()
        new_syn = h1
        new_mem = ((1 - (1 / tau)) * mem + syn) * (1.0 - rst)
        spk_rec.append(out)
        mem = new_mem
        syn = new_syn
    return torch.stack(spk_rec, dim=1).permute(1, 0, 2)


def authors_li(inputs, tau=10.05):
    """ST layers.py:283-299 (LI.forward)."""
    flt = torch.zeros((inputs.shape[1], inputs.shape[2]))
    mem = torch.zeros((inputs.shape[1], inputs.shape[2]))
    mem_rec = []
    for t in range(inputs.shape[0]):
        new_flt = inputs[t]
        new_mem = (1 - (1 / tau)) * mem + flt
        flt = new_flt
        mem = new_mem
        mem_rec.append(mem)
    return torch.stack(mem_rec, dim=1).permute(1, 0, 2)


def test_lagged_lif_spikes_two_steps_after_a_pulse_as_the_authors_loop():
    pulse = torch.zeros(8, 1, 1)
    pulse[1] = 1.5
    ours = LaggedLIF(1)(pulse)
    assert torch.equal(ours, authors_lif(pulse))
    assert ours.flatten().nonzero().flatten().tolist() == [3]  # input at t = 1, spike at t = 3


def test_lagged_lif_equals_the_authors_loop_on_random_input_with_gradients():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 3, 5, generator=gen) * 0.6).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ours, theirs = LaggedLIF(5)(x), authors_lif(x_ref)
    assert torch.equal(ours, theirs) and ours.sum() > 10  # several spikes, several resets
    weights = torch.randn(40, 3, 5, generator=gen)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)


def test_lagged_readout_equals_the_authors_li():
    x = torch.randn(30, 2, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(LaggedLeakyReadout(4)(x), authors_li(x), rtol=1e-5, atol=1e-6)


def test_lagged_lif_builds_from_a_neuron_spec_in_delay_snn():
    spec = {"class_path": "lightning_snn.neurons.lagged_lif.LaggedLIF", "init_args": {"surrogate_alpha": 5.0}}
    net = DelaySNN(4, [6], 3, max_delay=5, tau=10.05, neuron=spec, readout="lagged", readout_tau=10.05)
    assert isinstance(net.neurons[0], LaggedLIF) and isinstance(net.output, LaggedLeakyReadout)
    assert net.neurons[0].tau.decay().item() == pytest.approx(1 - 1 / 10.05)
    assert net(torch.rand(12, 2, 4)).shape == (12, 2, 3)


def test_dcls_lif_tau_1005_equals_spikingjelly_lifnode():
    """SD snn_delays.py:39-41: ``LIFNode(tau=1.005, decay_input=False, ATan(5), detach_reset=True)``; our τ bound
    admits it when ``tau_min`` is lowered (the default, 1.01 steps, still rejects it)."""
    from spikingjelly.activation_based import neuron, surrogate

    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(30, 2, 6, generator=gen) * 1.5).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ours = LearnableLIF(6, tau=1.005, tau_min=1.001, learn_tau=False, decay_input=False, surrogate_alpha=5.0)(x)
    ref = neuron.LIFNode(
        tau=1.005, decay_input=False, surrogate_function=surrogate.ATan(alpha=5.0), detach_reset=True, step_mode="m"
    )(x_ref)
    assert torch.equal(ours, ref) and 0 < ours.sum() < ours.numel()
    w = torch.randn(30, 2, 6, generator=gen)
    (ours * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="tau_min"):
        LearnableLIF(6, tau=1.005)


def test_dcls_readout_tau_1005_equals_spikingjelly_v_seq():
    """SD snn_delays.py:91-93,255: the output is a LIFNode with threshold 1e9, read through its ``v_seq``."""
    from spikingjelly.activation_based import neuron

    x = torch.randn(20, 2, 3, generator=torch.Generator().manual_seed(3))
    net = DelaySNN(4, [5], 3, max_delay=3, readout_tau=1.005, readout_tau_min=1.001)
    lif = neuron.LIFNode(tau=1.005, decay_input=False, v_threshold=1e9, step_mode="m", store_v_seq=True)
    lif(x)
    torch.testing.assert_close(net.output(x), lif.v_seq, rtol=1e-5, atol=1e-6)


def test_kaiming_init_draws_every_synapse_weight_with_the_relu_bound():
    """SD snn_delays.py:130-133: ``kaiming_uniform_(weight, nonlinearity='relu')``, bound √(6 / fan_in)."""
    net = DelaySNN(64, [128], 20, max_delay=5, init="kaiming")
    for layer, fan_in in ((net.synapses[0].synapse, 64), (net.output_synapse, 128)):
        bound = math.sqrt(6 / fan_in)
        w = layer.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.98 * bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    old = DelaySNN(64, [128], 20, max_delay=5).synapses[0].synapse.weight.detach()
    assert old.abs().max() <= math.sqrt(6 / 64) / math.sqrt(6) + 1e-6  # Dcls1d's own bound, 2.45× smaller


def authors_dcls_forward(net: DelaySNN, x: torch.Tensor, right: int) -> torch.Tensor:
    """SD snn_delays.py:205-257 with our layers: pad (D - 1, right) around every delayed synapse's input."""

    def delayed(layer: DelayedLinear, h: torch.Tensor) -> torch.Tensor:
        padded = F.pad(h.permute(1, 2, 0), (layer.max_delay - 1, right))
        kernel = torch.zeros(layer.out_features, layer.in_features, layer.max_delay)
        d = layer.delay().detach().round().long()
        kernel.scatter_(2, (layer.max_delay - 1 - d)[..., None], layer.weight.detach()[..., None])
        return F.conv1d(padded, kernel).permute(2, 0, 1)

    for block, neuron in zip(net.synapses, net.neurons):
        x = neuron(delayed(block.synapse, x))
    return net.output(delayed(net.output_synapse, x))


def test_right_padding_appends_zero_steps_before_every_delayed_synapse_as_dcls():
    torch.manual_seed(0)
    net = DelaySNN(5, [7, 6], 3, max_delay=7, tau=1.5, pad_right=3).eval()  # eval: integer delays
    x = (torch.rand(10, 2, 5) < 0.4).float()
    out = net(x)
    assert out.shape == (10 + 3 * 3, 2, 3)
    torch.testing.assert_close(out, authors_dcls_forward(net, x, 3), rtol=1e-5, atol=1e-5)
    net.pad_right = 0
    torch.testing.assert_close(out[:10], net(x), rtol=1e-5, atol=1e-5)  # causal: padding only adds steps


@pytest.mark.parametrize(
    "kwargs, match",
    [({"init": "xavier"}, "init"), ({"pad_right": -1}, "pad_right"), ({"readout": "spikes"}, "readout")],
)
def test_bad_delay_snn_options_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DelaySNN(4, [5], 3, **kwargs)


def test_spike_dropout_mask_is_shared_over_time_in_delay_snn():
    net = DelaySNN(4, [50], 3, max_delay=3, spike_dropout=0.4).train()
    ones = torch.ones(6, 2, 50)
    dropped = net.spike_dropouts[0](ones)
    assert (dropped == dropped[:1]).all() and (dropped == 0).any()
    assert isinstance(net.spike_dropouts[0], nn.Module)


def test_lagged_neurons_refuse_streaming_instead_of_restarting_from_rest():
    spec = {"class_path": "lightning_snn.neurons.lagged_lif.LaggedLIF"}
    net = DelaySNN(4, [6], 3, max_delay=3, tau=10.05, neuron=spec, readout="lagged", readout_tau=10.05)
    with pytest.raises(NotImplementedError, match="tbptt_steps=None"):
        net.forward_with_state(torch.rand(5, 2, 4))
