import pytest
import torch

from lightning_snn.call_statistics import CallStatistics
from lightning_snn.functional.sampling import bernoulli_spikes, clamp_pass_through, deterministic_spikes
from lightning_snn.neurons.spike_sampler import EVAL_SEED_SALT, SpikeSampler
from lightning_snn.validation import nan_checks

Y_GRID = torch.tensor([-0.5, 0.0, 0.05, 0.3, 0.5, 0.8, 0.97, 1.0, 1.4])


def test_empirical_rate_matches_clamped_probability():
    n = 40_000
    sampler = SpikeSampler(len(Y_GRID), scale=1.0, bias=0.0, seed=123)
    x = Y_GRID.expand(n // 100, 100, -1).contiguous()  # (T, B, C): y = x for the identity affine
    rate = sampler(x).mean(dim=(0, 1))
    p = Y_GRID.clamp(0, 1)
    sigma = (p * (1 - p) / n).sqrt()
    assert bool((rate - p).abs().le(5 * sigma + 1e-6).all()), (rate, p)
    assert rate[0] == 0 and rate[1] == 0 and rate[-2] == 1 and rate[-1] == 1  # deterministic ends


def test_spikes_are_binary_and_equal_the_threshold_rule():
    y = torch.rand(5, 3, 4) * 1.6 - 0.3
    u = torch.rand(5, 3, 4)
    s = bernoulli_spikes(y, u)
    assert torch.equal(s, (y > u).float())


@pytest.mark.parametrize(
    "surrogate, expected",
    [
        ("clamp", [0, 0, 1, 1, 1, 1, 1, 0, 0]),  # 1 strictly inside (0, 1)
        ("straight_through", [1] * 9),
        (lambda y: 3 * y, (3 * Y_GRID).tolist()),
    ],
)
def test_surrogate_gradient_values(surrogate, expected):
    y = Y_GRID.clone().requires_grad_(True)
    u = torch.rand(len(Y_GRID))
    upstream = torch.linspace(0.5, 2.0, len(Y_GRID))
    bernoulli_spikes(y, u, surrogate).backward(upstream)
    torch.testing.assert_close(y.grad, upstream * torch.tensor(expected, dtype=torch.float32))


def test_sampler_affine_gradients_use_the_surrogate():
    sampler = SpikeSampler(3, scale=2.0, bias=-0.5, seed=0)
    x = torch.tensor([[[0.1, 0.5, 0.9]]], requires_grad=True)  # y = 2x - 0.5 = [-0.3, 0.5, 1.3]
    sampler(x).sum().backward()
    inside = torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(x.grad.flatten(), 2.0 * inside)
    torch.testing.assert_close(sampler.scale.grad, x.detach().flatten() * inside)
    torch.testing.assert_close(sampler.bias.grad, inside)
    assert clamp_pass_through(torch.tensor([0.0, 1.0])).tolist() == [0.0, 0.0]


def test_generator_state_survives_save_and_load(tmp_path):
    a = SpikeSampler(8, seed=7)
    x = torch.rand(20, 4, 8)
    a(x)  # advance the generator
    torch.save(a.state_dict(), tmp_path / "sampler.pt")
    expected = [a(x), a(x)]
    b = SpikeSampler(8, seed=99)
    b.load_state_dict(torch.load(tmp_path / "sampler.pt", weights_only=True))
    assert b.seed == 7
    assert all(torch.equal(e, b(x)) for e in expected)


def test_sampling_leaves_the_global_rng_alone_and_seeds_distinguish_samplers():
    x = torch.rand(10, 2, 6)
    before = torch.get_rng_state()
    s1, s2 = SpikeSampler(6, seed=1)(x), SpikeSampler(6, seed=1)(x)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, SpikeSampler(6, seed=2)(x))
    torch.manual_seed(0)
    first, second = SpikeSampler(6).seed, SpikeSampler(6).seed  # seed=None draws from the global RNG
    torch.manual_seed(0)
    assert first != second and SpikeSampler(6).seed == first


def test_eval_modes():
    x = torch.tensor([[[-0.2, 0.3, 0.5, 0.7, 1.2]]])
    threshold = SpikeSampler(5, seed=0).eval()
    assert threshold(x).flatten().tolist() == [0, 0, 0, 1, 1]
    expectation = SpikeSampler(5, eval_mode="expectation", seed=0).eval()
    torch.testing.assert_close(expectation(x).flatten(), torch.tensor([0.0, 0.3, 0.5, 0.7, 1.0]))
    sample = SpikeSampler(5, eval_mode="sample", seed=0).eval()
    uniform = torch.rand(x.shape, generator=torch.Generator().manual_seed(0 ^ EVAL_SEED_SALT))
    assert torch.equal(sample(x), (x.clamp(0, 1) > uniform).float())
    assert torch.equal(deterministic_spikes(x, "threshold"), threshold(x))


def test_call_statistics_report_the_rate():
    sampler = SpikeSampler(4, seed=3)
    assert not hasattr(sampler, "temporal_statistics")  # no per-call state kept
    with CallStatistics(torch.nn.Sequential(sampler)) as recorder:
        spikes = sampler(torch.rand(50, 8, 4))
    torch.testing.assert_close(recorder.means()["spike_rate"]["0"], spikes.mean(dim=(0, 1)))
    assert set(recorder.means()["spike_rate"]) == {"0"}


def test_bad_inputs_are_rejected():
    sampler = SpikeSampler(3, seed=0)
    x = torch.rand(4, 2, 3) + 0.1
    x[1, 0, 2] = 0.0
    with torch.no_grad():
        sampler.scale[2] = float("inf")  # a finite input, one NaN probability: inf · 0
    with nan_checks(), pytest.raises(ValueError, match="1 of 24 spike probabilities are NaN"):
        sampler(x)
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        sampler(torch.rand(4, 3))
    with pytest.raises(ValueError, match="eval_mode"):
        SpikeSampler(3, eval_mode="mean")
    with pytest.raises(ValueError, match="surrogate"):
        SpikeSampler(3, surrogate="sigmoid")
    with pytest.raises(ValueError, match="not a sampler state"):
        sampler.set_extra_state({"x": 1})


def test_eval_sampling_never_advances_the_training_generator():
    """Validation in eval_mode="sample" (e.g. Lightning's sanity check) must not shift training noise."""
    x = torch.rand(20, 4, 3)
    plain, validated = SpikeSampler(3, seed=5, eval_mode="sample"), SpikeSampler(3, seed=5, eval_mode="sample")
    validated.eval()
    first_eval = validated(x)
    assert torch.equal(first_eval, validated(x))  # evaluation draws are reproducible call to call
    validated.train()
    assert torch.equal(plain(x), validated(x))
