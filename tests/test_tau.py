import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_snn.functional.tau import decay_from_raw, raw_from_tau, tau_from_decay
from lightning_snn.neurons.time_constant import TimeConstant


def test_plif_init_matches_fang_et_al():
    # w = -ln(tau0 - 1); k = sigmoid(w) = 1/tau0
    w = raw_from_tau(torch.tensor(2.0), "plif")
    assert w.item() == pytest.approx(0.0)
    assert decay_from_raw(raw_from_tau(torch.tensor(4.0), "plif"), "plif", 1.0, 1.01, 1e4).item() == pytest.approx(0.75)


def test_log_form_is_exp_minus_dt_over_tau():
    raw = raw_from_tau(torch.tensor(0.3), "log")
    decay = decay_from_raw(raw, "log", 0.01, 0.0043, 0.995)
    assert decay.item() == pytest.approx(math.exp(-0.01 / 0.3), rel=1e-6)
    assert tau_from_decay(decay, 0.01, "log").item() == pytest.approx(0.3, rel=1e-5)


def test_log_form_clips_alpha_as_paper_a():
    tc = TimeConstant(1, tau=2.0, parametrisation="log")
    lo, hi = decay_from_raw(torch.tensor([-50.0, 50.0]), "log", 1.0, tc.tau_min, tc.tau_max).tolist()
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.99)


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8), param=st.sampled_from(["plif", "log"]))
def test_decay_and_tau_always_inside_bounds(raw, param):
    tc = TimeConstant(len(raw), tau=3.0, per_neuron=True, parametrisation=param)
    with torch.no_grad():
        tc.raw.copy_(torch.tensor(raw))
    decay = tc.decay()
    assert ((decay > 0) & (decay < 1)).all()
    tau = tc.value
    assert ((tau >= tc.tau_min * (1 - 1e-4)) & (tau <= tc.tau_max * (1 + 1e-4))).all()


def test_per_neuron_vector_and_gradient():
    tc = TimeConstant(4, tau=[2.0, 3.0, 4.0, 5.0])
    assert tc.per_neuron and tc.raw.shape == (4,)
    assert torch.allclose(tc.value, torch.tensor([2.0, 3.0, 4.0, 5.0]), rtol=1e-5)
    tc.decay().sum().backward()
    assert tc.raw.grad is not None and (tc.raw.grad != 0).all()


def test_fixed_tau_is_a_buffer():
    tc = TimeConstant(3, tau=5.0, learn=False)
    assert list(tc.parameters()) == [] and "raw" in tc.state_dict()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau": 1.0}, "strictly inside"),  # PLIF needs tau0 > 1 (tau_min = 1.01 dt)
        ({"tau": 0.3, "parametrisation": "log"}, "strictly inside"),  # alpha < 0.1
        ({"tau": 2.0, "parametrisation": "exp"}, "Unknown tau parametrisation"),
        ({"tau": 2.0, "tau_min": 0.5}, "tau_min > dt"),
        ({"tau": [2.0, 3.0]}, "n_neurons=3"),
        ({"tau": 2.0, "dt": 0.0}, "dt must be > 0"),
    ],
)
def test_bad_tau_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimeConstant(3, **kwargs)


@pytest.mark.parametrize("param, raw", [("plif", [-12.0, 6.0]), ("log", [math.log(500.0), math.log(0.2)])])
def test_tau_beyond_a_bound_keeps_the_gradient_back_inside(param, raw):
    """Neuron 0 is past the slow bound (β too large), neuron 1 past the fast one (β too small)."""
    tc = TimeConstant(2, tau=3.0, per_neuron=True, parametrisation=param)
    with torch.no_grad():
        tc.raw.copy_(torch.tensor(raw))
    assert torch.allclose(tc.value, torch.tensor([tc.tau_max, tc.tau_min]), rtol=1e-3)
    # descending this loss lowers β[0] and raises β[1]: both back inside, so the gradient is kept
    inward = torch.autograd.grad((tc.decay() * torch.tensor([1.0, -1.0])).sum(), tc.raw)[0]
    outward = torch.autograd.grad((tc.decay() * torch.tensor([-1.0, 1.0])).sum(), tc.raw)[0]
    assert (inward != 0).all() and (outward == 0).all()
