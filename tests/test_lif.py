import pytest
import torch

from lightning_snn.call_statistics import CallStatistics
from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference
from lightning_snn.functional.surrogates import Surrogate
from lightning_snn.neurons import LeakyReadout, LearnableLIF
from lightning_snn.validation import nan_checks

X = torch.tensor([0.6, 0.6, 0.6, 0.0, 1.2]).view(5, 1, 1)
BETA = torch.tensor(0.5)
THR = torch.tensor(1.0)


@pytest.mark.parametrize(
    "reset, spikes, membrane",
    [
        ("hard", [0, 0, 1, 0, 1], [0.6, 0.9, 0.0, 0.0, 0.0]),
        ("soft", [0, 0, 1, 0, 1], [0.6, 0.9, 0.05, 0.025, 0.2125]),
    ],
)
def test_golden_trajectory(reset, spikes, membrane):
    cfg = LIFConfig(reset=reset, decay_input=False)
    s, v = lif_reference(X, BETA, THR, cfg, return_membrane=True)
    assert s.flatten().tolist() == spikes
    assert torch.allclose(v.flatten(), torch.tensor(membrane))


def test_golden_trajectory_decay_input_and_v_reset():
    # H = v_r + beta (V - v_r) + (1 - beta) X with v_r = -0.5, V[-1] = v_r, X = 2: H = -0.5 + 0 + 1 = 0.5,
    # then H = -0.5 + 0.5 * (0.5 + 0.5) + 1 = 1.0 >= threshold -> spike -> V = v_r
    cfg = LIFConfig(reset="hard", v_reset=-0.5, decay_input=True)
    s, v = lif_reference(torch.full((2, 1, 1), 2.0), BETA, THR, cfg, return_membrane=True)
    assert s.flatten().tolist() == [0.0, 1.0]
    assert torch.allclose(v.flatten(), torch.tensor([0.5, -0.5]))


def test_leaky_integrator_golden():
    v = leaky_integrate(torch.tensor([1.0, 0.0, 2.0]).view(3, 1, 1), BETA, decay_input=False)
    assert v.flatten().tolist() == [1.0, 0.5, 2.25]


def test_detach_reset_changes_only_gradient():
    x = (torch.rand(20, 3, 4) * 1.5).requires_grad_()
    grads = []
    for detach in (True, False):
        cfg = LIFConfig(reset="soft", decay_input=False, detach_reset=detach)
        s = lif_reference(x, BETA, THR, cfg)
        (g,) = torch.autograd.grad(s.sum(), x)
        grads.append((s.detach(), g))
    assert torch.equal(grads[0][0], grads[1][0])
    assert not torch.allclose(grads[0][1], grads[1][1])


def _run(backend, x, tau, reset, decay_input, detach_reset, surrogate):
    lif = LearnableLIF(
        x.shape[-1],
        tau=tau,
        reset=reset,
        decay_input=decay_input,
        detach_reset=detach_reset,
        surrogate=surrogate,
        backend=backend,
    )
    x = x.clone().requires_grad_()
    s = lif(x)
    w = torch.linspace(-1, 1, s.numel()).view_as(s)
    (s * w).sum().backward()
    return s.detach(), x.grad, lif.tau.raw.grad


CASES = [
    (per_neuron, reset, decay_input, surrogate)
    for per_neuron in (False, True)
    for reset in ("hard", "soft")
    for decay_input in (False, True)
    for surrogate in ("atan", "fast_sigmoid")
]


@pytest.mark.parametrize("per_neuron, reset, decay_input, surrogate", CASES)
@pytest.mark.parametrize("detach_reset", [False, True])
def test_backends_agree_on_spikes_and_gradients(per_neuron, reset, decay_input, surrogate, detach_reset):
    n = 6
    tau = torch.linspace(1.5, 6.0, n) if per_neuron else 3.0
    # Inputs keep H below 2 thresholds: there snntorch's reset_delay=False path resets twice.
    scale = 1.8 if decay_input else 0.8
    x = torch.rand(25, 4, n) * scale
    backends = ["native", "spikingjelly"] + ([] if detach_reset else ["snntorch"])
    results = {b: _run(b, x, tau, reset, decay_input, detach_reset, surrogate) for b in backends}
    ref = results["native"]
    assert 0.05 < ref[0].mean() < 0.9  # the comparison exercises spikes and resets
    for b in backends[1:]:
        s, gx, gtau = results[b]
        assert torch.equal(s, ref[0]), b
        assert torch.allclose(gx, ref[1], rtol=1e-5, atol=1e-6), b
        assert torch.allclose(gtau, ref[2], rtol=1e-4, atol=1e-5), b


def test_fixed_tau_spikingjelly_uses_lifnode_and_agrees():
    x = torch.rand(15, 2, 3) * 1.2
    a = LearnableLIF(3, tau=4.0, learn_tau=False, decay_input=False)(x)
    b = LearnableLIF(3, tau=4.0, learn_tau=False, decay_input=False, backend="spikingjelly")(x)
    assert torch.equal(a, b)


def test_snntorch_backend_rejects_detached_reset():
    with pytest.raises(ValueError, match="detach_reset=False"):
        LearnableLIF(3, backend="snntorch", detach_reset=True)


@pytest.mark.parametrize("backend", ["native", "snntorch", "spikingjelly"])
def test_no_hidden_state_between_calls_and_shape_changes(backend):
    lif = LearnableLIF(5, tau=3.0, detach_reset=False, decay_input=False, backend=backend)
    x1, x2 = torch.rand(10, 4, 5), torch.rand(7, 2, 5)
    first = lif(x1)
    lif(x2)  # a different batch size and length in between
    again = lif(x1)
    fresh = LearnableLIF(5, tau=3.0, detach_reset=False, decay_input=False, backend=backend)(x1)
    assert torch.equal(first, again) and torch.equal(first, fresh)


def test_learnable_threshold_gets_gradient():
    lif = LearnableLIF(3, tau=2.0, learn_threshold=True, decay_input=False)
    lif(torch.rand(10, 2, 3)).sum().backward()
    assert lif.threshold.grad is not None and lif.threshold.grad.item() != 0.0


def test_spike_rate_statistics_are_recorded():
    lif = LearnableLIF(4, tau=2.0, decay_input=False)
    with CallStatistics(lif) as recorder:
        s = lif(torch.rand(10, 3, 4) * 2)
    stats = {**lif.temporal_statistics(), **{k: v["root"] for k, v in recorder.means().items()}}
    assert torch.allclose(stats["spike_rate"], s.mean(dim=(0, 1)))
    assert torch.allclose(stats["tau"], torch.tensor([2.0]))


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(10, 4), r"\(T, B, 3\)"),
        (torch.rand(10, 2, 4), r"\(T, B, 3\)"),
        (torch.full((4, 2, 3), float("nan")), "NaN"),
    ],
)
def test_bad_input_shapes_and_nan(x, match):
    with nan_checks(), pytest.raises(ValueError, match=match):  # NaN: a host sync, looked for in debug mode
        LearnableLIF(3)(x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backend": "cuda"}, "Unknown backend"),
        ({"reset": "zero"}, "Unknown reset"),
        ({"surrogate": "relu"}, "Unknown surrogate"),
        ({"threshold": 0.0}, "threshold"),
        ({"tau": 0.9}, "strictly inside"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnableLIF(3, **kwargs)


def test_readout_learns_tau_when_asked():
    ro = LeakyReadout(2, tau=3.0, learn_tau=True)
    ro(torch.rand(5, 2, 2)).sum().backward()
    assert ro.tau.raw.grad is not None
    assert torch.allclose(ro.temporal_statistics()["tau"], torch.tensor([3.0]))


def test_surrogate_choice_reaches_the_gradient():
    x = torch.full((1, 1, 1), 0.9, requires_grad=True)
    lif = LearnableLIF(1, tau=2.0, decay_input=False, surrogate="box", surrogate_alpha=1.0)
    lif(x).sum().backward()
    assert x.grad.item() == pytest.approx(Surrogate("box", 1.0).derivative(torch.tensor(-0.1)).item())


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.ones(4, 2, 3, dtype=torch.uint8), "floating-point"),
        (torch.ones(4, 2, 3, dtype=torch.bool), "floating-point"),
        (torch.ones(0, 2, 3), "T >= 1"),
    ],
)
def test_integer_and_empty_inputs_get_clear_errors(x, match):
    with pytest.raises(ValueError, match=match):
        LearnableLIF(3)(x)
    with pytest.raises(ValueError, match=match):
        LeakyReadout(3)(x)


def test_readout_integrates_half_precision_in_float32():
    ro = LeakyReadout(3, tau=50.0, learn_tau=True)
    x = torch.rand(250, 2, 3).to(torch.bfloat16).requires_grad_()
    v = ro(x)
    v32 = ro(x.detach().float())
    assert v.dtype == torch.bfloat16
    assert torch.allclose(v.float(), v32, rtol=1e-2)  # only the final rounding to bf16 differs
    assert torch.equal(v, v32.to(torch.bfloat16))
    v.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16
