import math

import pytest
import torch

from lightning_snn.functional.ssm import (
    causal_fft_conv,
    check_d_state,
    dt_from_raw,
    s4d_a_init,
    s4d_kernel,
    s4d_recurrence,
    zoh_discretize,
)
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.validation import nan_checks


@pytest.mark.parametrize("init", ["lin", "inv"])
@pytest.mark.parametrize("steps", [1, 7, 300])
def test_fft_equals_recurrence(init, steps):
    layer = S4DLayer(6, d_state=16, init=init)
    u = torch.randn(steps, 3, 6)
    fft, rec = layer(u, mode="fft"), layer(u, mode="recurrence")
    assert fft.shape == rec.shape == (steps, 3, 6)
    torch.testing.assert_close(fft, rec, atol=1e-4, rtol=1e-4)


def test_fft_and_recurrence_gradients_agree():
    layer = S4DLayer(4, d_state=8, init="inv")
    u = torch.randn(50, 2, 4, requires_grad=True)
    grads = []
    for mode in ("fft", "recurrence"):
        layer.zero_grad()
        u.grad = None
        (layer(u, mode=mode) ** 2).sum().backward()
        grads.append([u.grad.clone()] + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_streaming_step_equals_forward():
    layer = S4DLayer(5, d_state=8)
    u = torch.randn(40, 2, 5)
    state, outs = None, []
    for u_t in u:
        y_t, state = layer.step(u_t, state)
        outs.append(y_t)
    torch.testing.assert_close(torch.stack(outs), layer(u), atol=1e-4, rtol=1e-4)
    assert state.shape == (2, 5, 4) and state.is_complex()


def test_kernel_golden_single_real_mode():
    # d_state=2, S4D-Lin: one mode A = -0.5 (imaginary part pi*0 = 0), so
    # K_l = 2 Re(C (e^{-dt/2} - 1)/(-1/2) e^{-l dt/2}) = 4 c (1 - e^{-dt/2}) e^{-l dt/2} for real C = c.
    log_a, a_im = s4d_a_init(1, 2, "lin")
    dt, c = torch.tensor([0.05], dtype=torch.float64), 0.7
    c_complex = torch.tensor([[c + 0j]], dtype=torch.complex128)
    a_bar, c_bar = zoh_discretize(log_a.double(), a_im.double(), dt, c_complex)
    dt_a = torch.complex(-torch.exp(log_a.double()), a_im.double()) * dt[:, None]
    kernel = s4d_kernel(dt_a, c_bar, 5)
    expected = [4 * c * (1 - math.exp(-0.025)) * math.exp(-0.025 * lag) for lag in range(5)]
    torch.testing.assert_close(kernel[0], torch.tensor(expected, dtype=torch.float64))
    assert a_bar.item() == pytest.approx(math.exp(-0.025))


def test_s4d_inits_golden():
    log_a, lin = s4d_a_init(2, 6, "lin")
    torch.testing.assert_close(lin[0], torch.tensor([0.0, math.pi, 2 * math.pi]))
    torch.testing.assert_close(torch.exp(log_a), torch.full((2, 3), 0.5))
    _, inv = s4d_a_init(1, 4, "inv")  # N/pi * (N/(2n+1) - 1), N = 4
    torch.testing.assert_close(inv[0], torch.tensor([4 / math.pi * 3, 4 / math.pi * (4 / 3 - 1)]))


def test_causal_fft_conv_golden():
    u = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    k = torch.tensor([[1.0, 0.5, 0.25]])
    torch.testing.assert_close(causal_fft_conv(u, k).flatten(), torch.tensor([1.0, 2.5, 4.25]))


def test_recurrence_is_causal():
    layer = S4DLayer(3, d_state=4)
    u = torch.randn(20, 1, 3)
    v = u.clone()
    v[10:] = torch.randn(10, 1, 3)
    torch.testing.assert_close(layer(u)[:10], layer(v)[:10])


def test_kernel_gradcheck():
    torch.manual_seed(1)
    log_a, a_im = (t.double() for t in s4d_a_init(2, 4, "lin"))
    c = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    raw = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    u = torch.randn(6, 1, 2, dtype=torch.float64)

    def f(c_real, dt_raw):
        dt = dt_from_raw(dt_raw, 1e-3, 1e-1)
        a_bar, c_bar = zoh_discretize(log_a, a_im, dt, c_real)
        dt_a = torch.complex(-torch.exp(log_a), a_im) * dt[:, None]
        return causal_fft_conv(u, s4d_kernel(dt_a, c_bar, 6))

    assert torch.autograd.gradcheck(f, (c, raw))


def test_dt_stays_in_bounds_and_parameters_are_real():
    layer = S4DLayer(4, d_state=8, dt_min=0.002, dt_max=0.05)
    dt = layer.timescales.dt()
    assert bool(((dt >= 0.002) & (dt <= 0.05)).all())
    with torch.no_grad():
        layer.timescales.log_dt_raw.copy_(torch.tensor([-50.0, -1.0, 1.0, 50.0]))
    dt = layer.timescales.dt()
    assert dt[0].item() == pytest.approx(0.002) and dt[-1].item() == pytest.approx(0.05)
    assert all(not t.is_complex() for t in layer.state_dict().values())
    assert layer.C.shape == (4, 4, 2)


def test_ssm_time_parameters_are_in_the_tau_group():
    from lightning_snn.roles import parameter_roles

    layer = S4DLayer(4, d_state=8)
    roles = parameter_roles(layer)
    assert roles == {
        "timescales.log_dt_raw": "tau",
        "timescales.log_a_real": "tau",
        "timescales.a_imag": "tau",
        "C": "weight",
        "D": "weight",
    }


def test_temporal_statistics_decay_time():
    layer = S4DLayer(2, d_state=4)
    stats = layer.temporal_statistics()
    dt = layer.timescales.dt()
    # |A_bar| = exp(-0.5 dt) per step, so the decay time in steps is 1 / (0.5 dt).
    torch.testing.assert_close(stats["tau"], (1 / (0.5 * dt)).repeat_interleave(2))
    torch.testing.assert_close(stats["ssm_dt"], dt)


@pytest.mark.parametrize("d_state", [3, 0, 7])
def test_odd_d_state_is_rejected(d_state):
    with pytest.raises(ValueError, match="even"):
        S4DLayer(4, d_state=d_state)
    with pytest.raises(ValueError, match="even"):
        check_d_state(d_state)


def test_inverted_dt_bounds_are_rejected():
    with pytest.raises(ValueError, match="inverted.*Swap"):
        S4DLayer(4, d_state=8, dt_min=0.1, dt_max=0.001)
    with pytest.raises(ValueError, match="positive"):
        S4DLayer(4, d_state=8, dt_min=0.0, dt_max=0.1)


def test_bad_inputs_are_rejected():
    layer = S4DLayer(4, d_state=8)
    with pytest.raises(ValueError, match=r"\(T, B, 4\)"):
        layer(torch.randn(10, 4))
    with pytest.raises(ValueError, match=r"\(T, B, 4\)"):
        layer(torch.randn(10, 2, 5))
    with nan_checks(), pytest.raises(ValueError, match="NaN"):
        layer(torch.full((3, 1, 4), float("nan")))
    with pytest.raises(ValueError, match="mode"):
        S4DLayer(4, d_state=8, mode="scan")
    with pytest.raises(ValueError, match="one time step"):
        layer.step(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match="init"):
        S4DLayer(4, d_state=8, init="legs")


def test_recurrence_with_given_state_continues_the_sequence():
    layer = S4DLayer(3, d_state=4)
    u = torch.randn(30, 2, 3)
    _, a_bar, c_bar = layer.discretize()
    y_all, _ = s4d_recurrence(u, a_bar, c_bar)
    y1, state = s4d_recurrence(u[:12], a_bar, c_bar)
    y2, _ = s4d_recurrence(u[12:], a_bar, c_bar, state)
    torch.testing.assert_close(torch.cat([y1, y2]), y_all)
