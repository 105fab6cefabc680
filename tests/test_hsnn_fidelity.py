"""hSNN (paper A) fidelity: our HSNNLIF / HSNNReadout / network against transcriptions of EIS-Hub/hSNN.

Each ``theirs_*`` function is the authors' JAX code written in plain PyTorch, line for line
(``models.py``, ``training.py``, ``utils_normalization.py``, ``utils_initialization.py``); their
custom-JVP surrogates are written as straight-through expressions (forward exact, backward the box).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_snn import FeedForwardSNN
from lightning_snn.neurons.hsnn_lif import HSNNLIF
from lightning_snn.neurons.hsnn_readout import HSNNReadout


def theirs_spiking_fn(v, thr):
    """models.py:31-44: (x > thr) forward; x_dot * (|x - thr| < 0.5) backward (box)."""
    box = ((v - thr).abs() < 0.5).to(v.dtype)
    return (v > thr).to(v.dtype).detach() + (v - v.detach()) * box.detach()


def theirs_lif_scan(current, alpha, v_thr=1.0):
    """models.py:55-68 (lif_step) scanned over time; current (T, B, N)."""
    alpha = alpha.clamp(0 + 1e-5, 1.0 - 2e-2)
    v_mem = torch.zeros_like(current[0])
    out_spikes = torch.zeros_like(current[0])
    spikes = []
    for input_spikes in current:
        v_mem = alpha * v_mem + input_spikes - out_spikes * v_thr
        out_spikes = theirs_spiking_fn(v_mem, v_thr)
        spikes.append(out_spikes)
    return torch.stack(spikes)


def theirs_batch_norm(x, scale, bias, epsilon=1e-5):
    """utils_normalization.py:122-143 on (b*t, n) rows (training.py:78-80): batch statistics always."""
    mean = x.mean(0)
    var = torch.clamp((x * x).mean(0) - mean * mean, min=0.0)
    return (x - mean) * torch.rsqrt(var + epsilon) * scale + bias


def theirs_li_scan(current, alpha):
    """models.py:97-107 (li_step)."""
    v_mem = torch.zeros_like(current[0])
    out = []
    for input_spikes in current:
        v_mem = alpha * v_mem + (1 - alpha) * input_spikes
        out.append(v_mem)
    return torch.stack(out)


def theirs_alpha_losses(alphas, l2_alpha_sd):
    """training.py:153-154: optimizers.l2_norm (sqrt of the sum of squares) over the list of layers."""
    high = torch.sqrt(sum((torch.relu(a - 1.0 + 5e-2) ** 2).sum() for a in alphas)) * 1e-1
    spread = torch.sqrt(sum(((a - a.mean()) ** 2).sum() for a in alphas)) * l2_alpha_sd
    return high + spread


@pytest.fixture
def current():
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(40, 3, 5, generator=gen) * 1.2).requires_grad_(True)


def test_hsnn_lif_spikes_and_gradients_equal_their_lif_step(current):
    tau = torch.tensor([2.0, 5.0, 30.0, 60.0, 200.0])
    ours = HSNNLIF(5, tau=tau, learn_alpha=True)
    alpha = torch.exp(-1.0 / tau).clamp(0.1, 0.99).requires_grad_(True)
    assert torch.equal(ours.alpha.detach(), alpha.detach())  # init: utils_initialization.py:156-157
    weights = torch.randn(40, 3, 5, generator=torch.Generator().manual_seed(1))
    s_ours = ours(current)
    (s_ours * weights).sum().backward()
    g_ours = current.grad.clone()
    current.grad = None
    s_theirs = theirs_lif_scan(current, alpha)
    (s_theirs * weights).sum().backward()
    assert s_ours.sum() > 10 and torch.equal(s_ours, s_theirs)
    assert torch.allclose(g_ours, current.grad, atol=1e-6)
    assert current.grad.abs().sum() > 0
    # training.py:235: the gradient on α is multiplied by 0.1 before the optimiser
    assert torch.allclose(ours.alpha.grad, 0.1 * alpha.grad, atol=1e-7)
    assert ours.alpha.grad[-1] == 0  # α = 0.99 is clipped to 0.98 in the forward (models.py:61)


def test_detach_reset_cuts_only_the_reset_path(current):
    ours = HSNNLIF(5, tau=20.0, detach_reset=True)
    ours(current).sum().backward()
    g_detached = current.grad.clone()
    current.grad = None
    HSNNLIF(5, tau=20.0)(current).sum().backward()
    assert not torch.allclose(g_detached, current.grad)
    current.grad = None
    alpha = torch.full((5,), math.exp(-1 / 20))
    v, s_prev, out = torch.zeros(3, 5), torch.zeros(3, 5), []
    for x_t in current:  # the same update with the reset term detached
        v = alpha * v + x_t - s_prev.detach()
        s_prev = theirs_spiking_fn(v, 1.0)
        out.append(s_prev)
    torch.stack(out).sum().backward()
    assert torch.allclose(g_detached, current.grad, atol=1e-6)


def test_penalty_equals_their_alpha_losses_for_one_layer():
    tau = torch.tensor([5.0, 20.0, 40.0, 80.0])
    ours = HSNNLIF(4, tau=tau, learn_alpha=True, alpha_spread_weight=1e-3)
    alpha = ours.alpha.detach().clone().requires_grad_(True)
    ours.penalty().backward()
    expected = theirs_alpha_losses([alpha], 1e-3)
    expected.backward()
    assert torch.allclose(ours.penalty(), expected)
    assert torch.allclose(ours.alpha.grad, 0.1 * alpha.grad)
    assert HSNNLIF(4, tau=5.0).penalty() is None  # fixed α: nothing to regularise
    low = HSNNLIF(4, tau=5.0, learn_alpha=True, alpha_spread_weight=0.0)
    low.penalty().backward()  # all α < 0.95: zero penalty, zero (not NaN) gradient
    assert torch.equal(low.alpha.grad, torch.zeros(4))


def test_spike_dropout_is_per_step_after_the_reset(current):
    torch.manual_seed(0)
    ours = HSNNLIF(5, tau=20.0, spike_dropout=0.5)
    clean = HSNNLIF(5, tau=20.0)(current)
    dropped = ours(current)
    kept = dropped > 0
    assert torch.allclose(dropped[kept], torch.full_like(dropped[kept], 2.0))
    assert torch.equal(clean[kept], torch.ones_like(clean[kept]))  # the scan itself is unchanged
    assert 0.3 < kept.sum() / clean.sum() < 0.7
    varies = (kept != kept[:1]).any(0) & (clean.sum(0) > 1)
    assert varies.any()  # a new mask every step (models.py:205-214), not one per sequence
    assert torch.equal(ours.eval()(current), clean)


def test_readout_equals_their_batch_norm_and_li_step():
    x = torch.randn(30, 4, 3, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    ours = HSNNReadout(3, tau=5.0)
    alpha = math.exp(-1 / 5)
    expected = theirs_li_scan(theirs_batch_norm(x.flatten(0, 1), torch.ones(3), torch.zeros(3)).view_as(x), alpha)
    for mode in (ours.train(), ours.eval()):  # batch statistics in both, as theirs
        assert torch.allclose(mode(x), expected, atol=1e-5)
    assert list(ours.parameters()) == [ours.norm.weight, ours.norm.bias] and ours.alpha.requires_grad is False


def test_network_loss_and_gradients_equal_their_hsnn_forward():
    """training.py:53-91 + decoder_vmem_time + the CE of training.py:146 on every step, 2 hidden layers."""
    torch.manual_seed(3)
    tau = [torch.tensor([8.0, 12.0, 30.0, 50.0]), torch.tensor([20.0, 25.0, 40.0, 70.0])]
    neuron = {"class_path": HSNNLIF, "init_args": {"learn_alpha": True}}
    net = FeedForwardSNN(6, [4, 4], 2, tau=tau, neuron=neuron, batch_norm=True)
    net.output = HSNNReadout(2, tau=5.0)
    x = (torch.rand(50, 8, 6) < 0.3).float()
    y = torch.randint(0, 2, (50, 8))
    loss = nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten())
    loss.backward()

    weights = [net.synapses[0].synapse.weight, net.synapses[1].synapse.weight, net.output_synapse.weight]
    weights = [w.detach().clone().requires_grad_(True) for w in weights]
    alphas = [n.alpha.detach().clone().requires_grad_(True) for n in net.neurons]
    layer_input = x
    for layer in range(3):
        t, b, _ = layer_input.shape
        current = layer_input.flatten(0, 1) @ weights[layer].T  # no bias: BN removes a constant anyway
        n = current.shape[-1]
        current = theirs_batch_norm(current, torch.ones(n), torch.zeros(n)).view(t, b, n)
        layer_input = theirs_lif_scan(current, alphas[layer]) if layer < 2 else theirs_li_scan(current, math.exp(-0.2))
    y_hat = torch.softmax(layer_input, -1)  # decoder_vmem_time
    one_hot = nn.functional.one_hot(y, 2).float()
    loss_theirs = -torch.mean(torch.sum(one_hot * torch.log(y_hat + 1e-12), -1))
    loss_theirs.backward()
    assert torch.allclose(loss, loss_theirs, atol=1e-5)
    ours_grads = [net.synapses[0].synapse.weight.grad, net.synapses[1].synapse.weight.grad]
    for g_ours, w in zip(ours_grads + [net.output_synapse.weight.grad], weights):
        assert torch.allclose(g_ours, w.grad, atol=1e-5)
    for neuron_layer, a in zip(net.neurons, alphas):
        assert torch.allclose(neuron_layer.alpha.grad, 0.1 * a.grad, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tau": -1.0}, "tau must be a positive finite"),
        ({"tau": [1.0, 2.0]}, "or 3 of them"),
        ({"spike_dropout": 1.0}, "spike_dropout must be in [0, 1)"),
        ({"alpha_max": 1.5}, "alpha_max must be in"),
        ({"alpha_grad_scale": -0.1}, "alpha_grad_scale must be a finite number >= 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        HSNNLIF(3, **kwargs)


def test_under_adam_the_gradient_scale_only_rescales_epsilon(current):
    """Why ×0.1 barely slows α: Adam's update m/(√v + ε) with g → 0.1 g equals the unscaled one with ε → 10 ε."""
    runs = []
    for scale, eps in ((0.1, 1e-8), (1.0, 1e-7)):
        torch.manual_seed(0)
        neuron = HSNNLIF(5, tau=torch.tensor([5.0, 10.0, 20.0, 30.0, 40.0]), learn_alpha=True, alpha_grad_scale=scale)
        opt = torch.optim.Adam(neuron.parameters(), lr=0.01, eps=eps)
        for _ in range(3):
            opt.zero_grad()
            (neuron(current.detach()).sum() + neuron.penalty()).backward()
            opt.step()
        runs.append(neuron.alpha.detach())
    assert torch.allclose(runs[0], runs[1], atol=1e-6)
