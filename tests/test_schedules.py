import math

import pytest
import torch

from lightning_snn.models.feedforward import FeedForwardSNN
from lightning_snn.schedules import TauSchedule, hierarchical_kernels, hierarchical_tau


@pytest.mark.parametrize("kind", ["linear", "geometric", "tanh"])
@pytest.mark.parametrize("delta", [20.0, -20.0])
def test_monotone_with_end_values(kind, delta):
    taus = torch.stack(hierarchical_tau(5, mean=30.0, delta=delta, kind=kind))
    diffs = taus.diff()
    assert (diffs > 0).all() if delta > 0 else (diffs < 0).all()
    assert taus[0].item() == pytest.approx(30.0 - delta / 2)
    assert taus[-1].item() == pytest.approx(30.0 + delta / 2)


def test_linear_is_the_authors_linspace_and_constant_is_flat():
    assert torch.allclose(torch.stack(hierarchical_tau(3, 0.3, 0.2)), torch.tensor([0.2, 0.3, 0.4]))
    assert torch.stack(hierarchical_tau(4, 10.0, 8.0, kind="constant")).tolist() == [10.0] * 4


def test_geometric_has_constant_ratio():
    taus = torch.stack(hierarchical_tau(4, 10.0, 16.0, kind="geometric"))
    ratios = taus[1:] / taus[:-1]
    assert torch.allclose(ratios, ratios[0].expand(3), rtol=1e-5)


def test_per_neuron_jitter_is_seeded_and_bounded():
    a = hierarchical_tau(2, 10.0, 4.0, jitter=0.2, widths=[50, 60], seed=3)
    b = hierarchical_tau(2, 10.0, 4.0, jitter=0.2, widths=[50, 60], seed=3)
    assert [t.shape for t in a] == [(50,), (60,)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert (a[0] >= 8.0 * 0.8).all() and (a[0] <= 8.0 * 1.2).all() and a[0].std() > 0
    normal = hierarchical_tau(1, 10.0, jitter=0.1, jitter_kind="normal", widths=[4000])[0]
    assert normal.std().item() == pytest.approx(1.0, rel=0.1)


def test_model_accepts_schedule_from_config_dict():
    net = FeedForwardSNN(4, [8, 8, 8], 2, tau={"kind": "linear", "mean": 10.0, "delta": 8.0})
    taus = [n.tau.value.item() for n in net.neurons]
    assert taus == pytest.approx([6.0, 10.0, 14.0], rel=1e-5)
    net = FeedForwardSNN(4, [8, 8], 2, tau=TauSchedule(mean=5.0, jitter=0.1))
    assert net.neurons[0].tau.value.shape == (8,)


def test_kernel_schedule_grows_and_constant_baseline():
    assert hierarchical_kernels(3, (3, 7), (1, 4)) == [(3, 1), (5, 2), (7, 4)]
    assert hierarchical_kernels(3, (3, 7), (1, 5), kind="constant") == [(5, 3)] * 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: hierarchical_tau(3, 10.0, 4.0, kind="cubic"), "Unknown schedule kind"),
        (lambda: hierarchical_tau(3, 5.0, 12.0), "must be > tau_min"),
        (lambda: hierarchical_tau(3, 10.0, jitter=1.5), "jitter"),
        (lambda: hierarchical_tau(3, 10.0, widths=[4, 4]), "one width per layer"),
        (lambda: hierarchical_kernels(2, (0, 3)), ">= 1"),
        (lambda: FeedForwardSNN(4, [8, 8], 2, tau=[2.0, 3.0, 4.0]), "one τ per hidden layer"),
    ],
)
def test_bad_schedules(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_kernel_schedule_needs_pairs():
    with pytest.raises(ValueError, match="kernel_size must be an int or a"):
        hierarchical_kernels(3, [3, 5, 7])
    with pytest.raises(ValueError, match="dilation must be an int or a"):
        hierarchical_kernels(3, (3, 5), (1,))


def theirs_tanh(n_layers, tau_mem, delta_tau, tanh_coef=0.5, tanh_center=0.5):
    """EIS-Hub/hSNN utils_initialization.py:88-93, transcribed."""
    tanh = lambda x, a: (math.exp(2 * x / a) - 1) / (math.exp(2 * x / a) + 1)  # noqa: E731
    x = torch.linspace(0, 1, n_layers, dtype=torch.float64).tolist()
    h = [tanh(v - tanh_center, tanh_coef) for v in x]
    return [tau_mem + ((v - min(h)) / max(abs(u - min(h)) for u in h) - 0.5) * delta_tau for v in h]


@pytest.mark.parametrize("n_layers", [2, 3, 5, 6])
@pytest.mark.parametrize(("coef", "center", "delta"), [(0.5, 0.5, 15.0), (0.1, 0.5, -40.0), (1.0, 0.25, 50.0)])
def test_tanh_equals_the_authors_schedule(n_layers, coef, center, delta):
    ours = hierarchical_tau(n_layers, 30.0, delta, "tanh", steepness=1 / (2 * coef), center=center)
    assert [t.item() for t in ours] == pytest.approx(theirs_tanh(n_layers, 30.0, delta, coef, center), abs=1e-4)


def test_tanh_default_steepness_is_unchanged_and_differs_from_theirs_from_four_layers():
    ours = [t.item() for t in hierarchical_tau(6, 10.0, 15.0, "tanh")]
    expected = [10.0 + 7.5 * math.tanh(2 * x) / math.tanh(2) for x in torch.linspace(-1, 1, 6).tolist()]
    assert ours == pytest.approx(expected, abs=1e-5)
    assert ours != pytest.approx(theirs_tanh(6, 10.0, 15.0), abs=1e-3)
    assert [t.item() for t in hierarchical_tau(3, 10.0, 15.0, "tanh")] == pytest.approx(theirs_tanh(3, 10.0, 15.0))
    with pytest.raises(ValueError, match="steepness > 0"):
        hierarchical_tau(4, 10.0, 5.0, "tanh", steepness=0.0)
