import math

import pytest
import torch

from lightning_snn.functional.surrogates import Surrogate


def _grad(fn, u):
    u = u.clone().requires_grad_()
    fn(u).sum().backward()
    return u.grad


U = torch.linspace(-1.5, 1.5, 41)


def test_forward_is_heaviside_with_spikingjelly_convention():
    s = Surrogate("atan")(torch.tensor([-0.1, 0.0, 0.2]))
    assert s.tolist() == [0.0, 1.0, 1.0]


def test_atan_equals_snntorch_and_spikingjelly():
    import snntorch.surrogate as st
    from spikingjelly.activation_based import surrogate as sj

    ours = _grad(Surrogate("atan", 2.0), U)
    assert torch.allclose(ours, _grad(st.atan(alpha=2.0), U), atol=1e-7)
    assert torch.allclose(ours, _grad(sj.ATan(alpha=2.0), U), atol=1e-7)
    assert ours[20].item() == pytest.approx(1.0)  # alpha / 2 at u = 0


def test_fast_sigmoid_equals_snntorch():
    import snntorch.surrogate as st

    ours = _grad(Surrogate("fast_sigmoid", 25.0), U)
    assert torch.allclose(ours, _grad(st.fast_sigmoid(slope=25.0), U), atol=1e-7)


def test_box_values():
    g = Surrogate("box", 1.0).derivative(torch.tensor([-0.6, -0.4, 0.0, 0.49, 0.5]))
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_derivative_matches_autograd_for_all():
    for name in ("atan", "fast_sigmoid", "box"):
        s = Surrogate(name)
        assert torch.allclose(_grad(s, U), s.derivative(U))
    assert Surrogate("atan", 2.0).derivative(torch.tensor(1.0)).item() == pytest.approx(1 / (1 + math.pi**2))


@pytest.mark.parametrize("kwargs", [{"name": "relu"}, {"name": "atan", "alpha": 0.0}])
def test_bad_surrogate(kwargs):
    with pytest.raises(ValueError, match="urrogate"):
        Surrogate(**kwargs)
