"""The faster delay paths equal the paths they replace: the Numba spectral training path against the PyTorch FFT
path (values and gradients for input, weight and delay), and the event-driven integer path against shift-and-sum."""

import pytest
import torch

from lightning_snn.layers import delay_spectral, integer_delay
from lightning_snn.layers.delay_fft import DCLS_SIGMA_FLOOR, _gaussian_taps, gaussian_delay_fft
from lightning_snn.layers.delay_spectral import GaussianTaps, gaussian_delay_spectral
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import event_delay_linear, integer_delay_linear, shift_and_sum_delay_linear

pytestmark = pytest.mark.skipif(delay_spectral.numba is None, reason="the Numba paths need numba")


def values_and_grads(path, x, weight, delay, sigma, max_delay):
    """Output and the gradients of a fixed projection of it w.r.t. input, weight and delay."""
    for p in (x, weight, delay):
        p.grad = None
    y = path(x, weight, delay, sigma, max_delay)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y).cos()).sum().backward()
    return [y.detach(), x.grad.clone(), weight.grad.clone(), delay.grad.clone()]


@pytest.mark.parametrize(
    "steps, batch, inputs, outputs, max_delay, sigma",
    [
        (40, 3, 9, 6, 13, 0.0),
        (40, 3, 9, 6, 13, 0.23),
        (40, 3, 9, 6, 13, 2.0),
        (17, 2, 5, 4, 25, 12.5),  # max_delay > T: deliveries past the end are dropped
        (30, 2, 7, 3, 1, 0.5),  # one tap: no delay
        (50, 4, 20, 33, 8, 0.23),  # more rows than one Numba block
    ],
)
def test_spectral_path_equals_fft_path_in_value_and_gradients(steps, batch, inputs, outputs, max_delay, sigma):
    torch.manual_seed(0)
    x = torch.randn(steps, batch, inputs, requires_grad=True)
    weight = torch.randn(outputs, inputs, requires_grad=True)
    # positions anywhere in [0, D-1], plus the two bounds and half-integers (ties of the nearest tap)
    delay = torch.rand(outputs, inputs) * (max_delay - 1)
    delay.view(-1)[:3] = torch.tensor([0.0, max_delay - 1.0, min(2.5, max_delay - 1.0)])
    delay.requires_grad_()
    ref = values_and_grads(gaussian_delay_fft, x, weight, delay, sigma, max_delay)
    new = values_and_grads(gaussian_delay_spectral, x, weight, delay, sigma, max_delay)
    exact = values_and_grads(
        gaussian_delay_fft, *(p.detach().double().requires_grad_() for p in (x, weight, delay)), sigma, max_delay
    )
    for name, a, b, c in zip(("y", "dx", "dweight", "ddelay"), new, ref, exact):
        # as close to the float64 result as the float32 reference is (within 3x), or within 2e-6 of the largest value
        scale = c.abs().max().clamp_min(1e-6)
        bound = max(3 * float((b - c).abs().max()), 2e-6 * float(scale))
        assert float((a - c).abs().max()) <= bound, name
        torch.testing.assert_close(a / scale, b / scale, atol=2e-5, rtol=0, msg=name)


def test_spectral_path_float64_gradcheck_and_equality():
    torch.manual_seed(1)
    x = torch.randn(12, 2, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    delay = (torch.rand(3, 4, dtype=torch.float64) * 5).requires_grad_()
    ref = values_and_grads(gaussian_delay_fft, x, weight, delay, 0.8, 6)
    new = values_and_grads(gaussian_delay_spectral, x, weight, delay, 0.8, 6)
    for a, b in zip(new, ref):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-9)
    assert torch.autograd.gradcheck(lambda *a: gaussian_delay_spectral(*a, 0.8, 6), (x, weight, delay))


@pytest.mark.parametrize("sigma", [0.0, 0.23, 3.0, 12.5])
def test_numba_taps_equal_the_gaussian_taps(sigma):
    torch.manual_seed(2)
    delay = torch.rand(7, 600) * 24  # 4200 synapses: several blocks
    weight = torch.randn(7, 600)
    kernel = GaussianTaps.apply(weight, delay, 1.0 / (sigma + DCLS_SIGMA_FLOOR), 25)
    expected = (weight * _gaussian_taps(delay, sigma, 25)).reshape(25, -1)
    torch.testing.assert_close(kernel, expected, atol=1e-7, rtol=1e-5)


def test_non_finite_delay_stays_nan_like_the_fft_path():
    x, weight, delay = torch.randn(10, 2, 3), torch.randn(4, 3), torch.rand(4, 3) * 4
    delay[1, 2] = float("nan")
    torch.testing.assert_close(
        gaussian_delay_spectral(x, weight, delay, 1.0, 5), gaussian_delay_fft(x, weight, delay, 1.0, 5), equal_nan=True
    )


def test_layer_uses_the_spectral_path_and_matches_the_fft_path(monkeypatch):
    torch.manual_seed(3)
    layer = DelayedLinear(8, 5, max_delay=9, sigma=1.5)
    x = torch.randn(30, 2, 8)
    calls = []
    original = delay_spectral.gaussian_delay_spectral
    monkeypatch.setattr(delay_spectral, "gaussian_delay_spectral", lambda *a: calls.append(1) or original(*a))
    torch.testing.assert_close(
        layer(x), gaussian_delay_fft(x, layer.weight, layer.delay(), layer.sigma, 9), atol=2e-6, rtol=1e-5
    )
    assert calls
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
    assert not delay_spectral.available(x)
    layer(x)
    assert len(calls) == 1  # the PyTorch path ran


@pytest.mark.parametrize("max_delay, density", [(1, 0.1), (6, 0.05), (25, 0.2), (40, 1.0)])
def test_event_path_equals_shift_and_sum(max_delay, density):
    torch.manual_seed(4)
    steps = 30  # max_delay 40 > T: late deliveries dropped
    x = torch.randn(steps, 3, 70) * (torch.rand(steps, 3, 70) < density)
    weight = torch.randn(9, 70)
    delay = torch.randint(0, max_delay, (9, 70))
    torch.testing.assert_close(
        event_delay_linear(x, weight, delay), shift_and_sum_delay_linear(x, weight, delay), atol=1e-5, rtol=1e-5
    )


def test_integer_dispatch_events_only_without_gradient_finite_and_sparse():
    torch.manual_seed(5)
    x = (torch.rand(20, 2, 50) < 0.05).float()
    weight, delay = torch.randn(6, 50), torch.randint(0, 10, (6, 50))
    with torch.no_grad():
        assert integer_delay._use_events(x, weight, delay)
        assert not integer_delay._use_events(torch.ones(20, 2, 50), weight, delay)  # dense: matmuls are faster
        bad = x.clone()
        bad[3, 1, 7] = float("inf")
        assert not integer_delay._use_events(bad, weight, delay)  # inf·0 = NaN rules of the matmul path kept
    assert not integer_delay._use_events(x, weight.requires_grad_(), delay)  # a gradient is needed
    y = integer_delay_linear(x, weight, delay)
    y.sum().backward()
    assert weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(integer_delay_linear(x, weight, delay), y.detach(), atol=1e-5, rtol=1e-5)


def test_event_path_refuses_negative_delays():
    with pytest.raises(ValueError, match="event_delay_linear: delays must be integers >= 0, got a minimum of -1"):
        event_delay_linear(torch.ones(4, 1, 2), torch.ones(3, 2), torch.tensor([[0, 1], [2, -1], [0, 0]]))
