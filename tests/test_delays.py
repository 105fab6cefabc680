"""DelayedLinear (DCLS), its FFT path, and integer-delay export."""

import math

import pytest
import torch
from DCLS.construct.modules import Dcls1d

from lightning_snn.layers.delay_fft import (
    DCLS_SIGMA_FLOOR,
    causal_direct_conv,
    causal_fft_conv,
    fft_size,
    gaussian_delay_fft,
    gaussian_delay_kernel,
    one_hot_delay_kernel,
)
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import IntegerDelayLinear, integer_delay_linear
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.delay_snn import DelaySNN


def upstream_dcls(layer: DelayedLinear, x: torch.Tensor) -> torch.Tensor:
    """A fresh upstream ``Dcls1d`` holding the layer's weight, positions and σ as *its own* parameters,
    run through its own ``forward`` on the input left-padded with D-1 zeros (Hammouamri et al.'s usage)."""
    d = layer.max_delay
    ref = Dcls1d(
        layer.in_features,
        layer.out_features,
        kernel_count=1,
        dilated_kernel_size=d,
        version="gauss",
        bias=False,
        padding=0,
    )
    with torch.no_grad():
        ref.weight.copy_(layer.weight[..., None])
        ref.P.copy_((d - 1 - layer.delay() - d // 2)[None, :, :, None])
        ref.SIG.fill_(float(layer.sigma))
    xb = torch.nn.functional.pad(x.permute(1, 2, 0), (d - 1, 0))
    return ref(xb).permute(2, 0, 1)


@pytest.mark.parametrize("sigma", [0.0, 0.23, 2.0, 6.5])
def test_fft_path_equals_dcls_in_value_and_gradient(sigma):
    torch.manual_seed(1)
    layer = DelayedLinear(9, 6, max_delay=13, sigma=sigma)
    x = torch.randn(40, 3, 9)
    ys = {}
    for backend in ("fft", "dcls"):
        layer.backend = backend
        layer.zero_grad()
        y = layer(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        ys[backend] = (y.detach(), layer.weight.grad.clone(), layer.delay_position.grad.clone())
    for a, b in zip(ys["fft"], ys["dcls"]):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ys["dcls"][0], upstream_dcls(layer, x).detach(), atol=1e-6, rtol=1e-5)


def test_kernel_matches_upstream_construct_kernel():
    torch.manual_seed(2)
    layer = DelayedLinear(4, 3, max_delay=8, sigma=1.3)
    ref = Dcls1d(4, 3, kernel_count=1, dilated_kernel_size=8, version="gauss", bias=False)
    positions = (8 - 1 - layer.delay() - 8 // 2)[None, :, :, None]
    upstream = ref.DCK(layer.weight[..., None], positions, layer.sigma.expand_as(positions))  # (O, I, taps)
    ours = gaussian_delay_kernel(layer.weight, layer.delay(), layer.sigma, 8)  # (O, I, delays)
    torch.testing.assert_close(ours, upstream.flip(-1), atol=1e-7, rtol=1e-6)


def test_fft_and_direct_convolution_agree_with_explicit_sum():
    torch.manual_seed(3)
    x, kernel = torch.randn(17, 2, 3), torch.randn(4, 3, 5)
    expected = torch.zeros(17, 2, 4)
    for t in range(17):
        for j in range(5):
            if t - j >= 0:
                expected[t] += x[t - j] @ kernel[:, :, j].t()
    torch.testing.assert_close(causal_fft_conv(x, kernel), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(causal_direct_conv(x, kernel), expected, atol=1e-5, rtol=1e-5)


def test_gaussian_fft_path_gradcheck():
    torch.manual_seed(4)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    w = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    d = (torch.rand(2, 3, dtype=torch.float64) * 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda w, d: gaussian_delay_fft(x, w, d, 0.8, 4), (w, d))


@pytest.mark.parametrize("n, expected", [(1, 1), (7, 8), (97, 100), (124, 125), (129, 135), (1000, 1000)])
def test_fft_size_is_smallest_5_smooth_length(n, expected):
    assert fft_size(n) == expected


@pytest.mark.parametrize("mode", ["fft", "dcls", "integer"])
def test_output_is_causal(mode):
    torch.manual_seed(5)
    layer = DelayedLinear(5, 4, max_delay=6, sigma=2.0, backend="dcls" if mode == "dcls" else "fft")
    x = torch.rand(20, 2, 5)
    x2 = x.clone()
    x2[11:] = torch.rand(9, 2, 5) + 3.0
    y, y2 = layer(x, integer=mode == "integer"), layer(x2, integer=mode == "integer")
    torch.testing.assert_close(y[:11], y2[:11], atol=1e-5, rtol=0)
    assert (y[11:] - y2[11:]).abs().max() > 1e-2  # the later inputs do reach the later outputs
    xg = x.clone().requires_grad_()
    layer(xg, integer=mode == "integer")[7].sum().backward()
    future, past = xg.grad[8:].abs().max(), xg.grad[:8].abs().max()
    assert past > 0.1
    if mode == "fft":  # exact in value; float32 FFT round-off leaves ~1e-8 on future steps
        assert future < 1e-6 * past
    else:
        assert future == 0


@pytest.mark.parametrize("t, d", [(0, 0), (3, 4), (10, 9)])
def test_single_spike_at_t_with_delay_d_arrives_at_t_plus_d(t, d):
    weight, delay = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)
    weight[1, 2], delay[1, 2] = 0.7, d
    x = torch.zeros(25, 1, 3)
    x[t, 0, 2] = 1.0
    y = IntegerDelayLinear(weight, delay, max_delay=10)(x)
    expected = torch.zeros(25, 1, 2)
    expected[t + d, 0, 1] = 0.7
    assert torch.equal(y, expected)
    layer = DelayedLinear(3, 2, max_delay=10).eval()
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.delay_position.fill_(d + 0.3)  # rounds to d
    assert torch.equal(layer(x), expected)


def test_integer_export_equals_layer_in_eval_and_dcls_at_minimum_sigma():
    torch.manual_seed(6)
    layer = DelayedLinear(8, 5, max_delay=12, sigma=0.0).eval()
    x = (torch.rand(30, 4, 8) < 0.3).float()
    weight, delay = layer.to_integer_delays()
    assert delay.dtype == torch.long and delay.shape == (5, 8) and weight.shape == (5, 8)
    assert torch.equal(delay, layer.delay_position.detach().round().long())
    exported = layer.to_integer_layer()(x)
    assert torch.equal(layer(x), exported)
    torch.testing.assert_close(integer_delay_linear(x, weight, delay), exported)
    # Upstream DCLS cannot reach σ = 0 (its width is |σ| + 0.27): at rounded positions each neighbour
    # tap keeps q = exp(-0.5 / 0.27²) of the weight, so it differs from the exact shift by at most
    # 2q·Σ|w||x| per output.
    with torch.no_grad():
        layer.delay_position.copy_(delay.float())
    dcls = upstream_dcls(layer, x).detach()
    q = math.exp(-0.5 / DCLS_SIGMA_FLOOR**2)
    bound = 2 * q * (x.abs().sum(0).max() * weight.abs().max())
    assert (dcls - exported).abs().max() <= bound
    assert (dcls - exported).abs().max() > 0  # the floor is real: DCLS alone is not exact


def test_one_hot_kernel_is_the_integer_delay_layer():
    torch.manual_seed(9)
    w, d = torch.randn(4, 6), torch.randint(0, 7, (4, 6))
    x = torch.randn(20, 3, 6)
    torch.testing.assert_close(causal_direct_conv(x, one_hot_delay_kernel(w, d, 7)), integer_delay_linear(x, w, d))


def test_positions_init_uniform_and_clamped_by_parametrisation_only():
    torch.manual_seed(7)
    layer = DelayedLinear(100, 50, max_delay=25)
    p = layer.delay_position.detach()
    assert p.min() >= 0 and p.max() <= 24
    assert abs(p.mean().item() - 12) < 0.3 and abs(p.std().item() - 24 / math.sqrt(12)) < 0.3
    with torch.no_grad():
        layer.delay_position[0, :10] = -3.0
        layer.delay_position[1, :5] = 40.0
    raw = layer.delay_position.detach().clone()
    layer(torch.rand(5, 1, 100)).sum().backward()
    assert torch.equal(layer.delay_position.detach(), raw)  # forward never edits the parameter
    d = layer.delay()
    assert d.min() == 0 and d.max() == 24
    grad = layer.delay_position.grad
    below, above = grad[0, :10], grad[1, :5]
    # Out of range, only the gradient that moves a position back inside survives (descent: p -= lr·g).
    assert torch.all(below <= 0) and torch.all(above >= 0)
    stats = layer.temporal_statistics()
    assert stats["delay_at_bounds"].dim() == 0 and stats["delay_at_bounds"].item() == pytest.approx(15 / 5000)
    assert stats["delay"].shape == (5000,) and stats["delay"].max() == 24
    assert stats["delay_sigma"].item() == 12.5  # max_delay / 2 by default


def test_inward_clamp_gradient():
    p = torch.tensor([-2.0, -2.0, 1.0, 1.0, 5.0, 5.0], requires_grad=True)
    from lightning_snn.layers.delayed_linear import InwardClamp

    out = InwardClamp.apply(p, 0.0, 3.0)
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 3.0, 3.0]
    out.backward(torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    assert p.grad.tolist() == [0.0, -1.0, 1.0, -1.0, 1.0, 0.0]


def test_eval_switches_to_integer_delays_and_train_does_not():
    torch.manual_seed(8)
    layer = DelayedLinear(6, 4, max_delay=9, sigma=3.0)
    x = torch.rand(15, 2, 6)
    y_train = layer(x)
    y_eval = layer.eval()(x)
    assert torch.equal(y_eval, layer(x, integer=True))
    assert (y_train - y_eval).abs().max() > 1e-2
    assert torch.equal(layer(x, integer=False), y_train)


def test_layer_owns_weight_and_positions_in_delay_group():
    net = DelaySNN(12, [16, 8], 3, max_delay=5)
    names = dict(net.named_parameters())
    positions = [n for n in names if "delay_position" in n]
    assert len(positions) == 3  # two hidden DelayedLinear + the delayed readout
    assert not any(n.endswith((".P", ".SIG")) for n in names)
    assert all(names[n].shape == names[n.replace("delay_position", "weight")].shape[:2] for n in positions)
    groups = {g["name"]: g for g in SpikingClassifier(net, lr=2e-3).parameter_groups()}
    assert {id(p) for p in groups["delay"]["params"]} == {id(names[n]) for n in positions}
    assert groups["delay"]["lr"] == pytest.approx(0.2) and groups["weight"]["lr"] == 2e-3
    assert all(n.detach_reset for n in (lif.cfg for lif in net.neurons))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DelayedLinear(3, 2, max_delay=0), "max_delay must be an integer >= 1"),
        (lambda: DelayedLinear(3, 2, max_delay=2.5), "max_delay must be an integer >= 1"),
        (lambda: DelayedLinear(3, 2, max_delay=4, backend="cuda"), "unknown backend"),
        (lambda: DelayedLinear(3, 2, max_delay=4)(torch.zeros(0, 1, 3)), "T >= 1"),
        (lambda: DelayedLinear(3, 2, max_delay=4)(torch.zeros(5, 3)), r"time-major input \(T, B, 3\)"),
        (lambda: IntegerDelayLinear(torch.ones(2, 2), torch.tensor([[0, 5], [1, 2]]), max_delay=5), r"\[0, 4\]"),
        (lambda: IntegerDelayLinear(torch.ones(2, 2), torch.tensor([[0, -1], [1, 2]])), r"\[-1, 2\]"),
        (lambda: IntegerDelayLinear(torch.ones(2, 2), torch.tensor([[0.5, 1.0], [1.0, 2.0]])), "integers"),
        (lambda: IntegerDelayLinear(torch.ones(2, 2), torch.zeros(2, 3)), "same shape"),
    ],
)
def test_bad_input_raises_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
