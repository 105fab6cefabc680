"""The fused LIF (native backend) against the plain-autograd reference: values, gradients, gradcheck."""

import itertools

import pytest
import torch

from lightning_snn.functional import lif_numba, lif_scan
from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference
from lightning_snn.functional.lif_scan import _forward_loop, leaky_integrate_fused, lif_fused
from lightning_snn.functional.surrogates import Surrogate

CONFIGS = [
    LIFConfig(reset, v_reset, decay_input, detach, Surrogate(sur))
    for reset, v_reset in (("hard", 0.0), ("hard", -0.3), ("soft", 0.0))
    for decay_input, detach, sur in itertools.product((False, True), (False, True), ("atan", "fast_sigmoid", "box"))
]


def _inputs(cfg, per_neuron, dtype, n=5, steps=30, batch=3):
    x = torch.rand(steps, batch, n, dtype=dtype) * (2.5 if cfg.decay_input else 0.9)
    beta = torch.rand(n, dtype=dtype) * 0.6 + 0.3 if per_neuron else torch.tensor(0.7, dtype=dtype)
    thr = torch.rand(n, dtype=dtype) * 0.4 + 0.8 if per_neuron else torch.tensor(1.0, dtype=dtype)
    return x.requires_grad_(), beta.requires_grad_(), thr.requires_grad_()


def _spikes_and_grads(fn, x, beta, thr, cfg):
    s = fn(x, beta, thr, cfg)
    w = torch.linspace(-1, 1, s.numel(), dtype=s.dtype).view_as(s)
    return s.detach(), torch.autograd.grad((s * w).sum(), (x, beta, thr))


def _use_path(path: str, monkeypatch) -> None:
    """Select the compiled (Numba) loops or the PyTorch loops for the rest of the test."""
    if path == "numba" and not lif_numba.available():
        pytest.skip("numba is not installed")
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "1" if path == "numba" else "0")


# The compiled backward is specialised per configuration (about 1-3 s of compilation each): a quick
# representative subset runs by default, every configuration under the "slow" mark.
PATH_CASES = [pytest.param("torch", cfg, id=f"torch-{cfg}") for cfg in CONFIGS] + [
    pytest.param("numba", cfg, id=f"numba-{cfg}", marks=() if i % 6 == 0 else pytest.mark.slow)
    for i, cfg in enumerate(CONFIGS)
]


@pytest.mark.parametrize("path, cfg", PATH_CASES)
@pytest.mark.parametrize("per_neuron", [False, True])
def test_fused_equals_reference(path, cfg, per_neuron, monkeypatch):
    """Both paths. float64: equal to 1e-10. float32: spikes identical, input gradient to 1e-5 relative, and the
    β / θ gradients (sums over T·B terms that cancel) as close to the float64 value as the reference."""
    _use_path(path, monkeypatch)
    x, beta, thr = _inputs(cfg, per_neuron, torch.float64)
    s_ref, g_ref = _spikes_and_grads(lif_reference, x, beta, thr, cfg)
    s, g = _spikes_and_grads(lif_fused, x, beta, thr, cfg)
    assert 0.02 < s_ref.mean() < 0.95
    assert torch.equal(s, s_ref)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(g, g_ref))
    x32, beta32, thr32 = (t.detach().float().requires_grad_() for t in (x, beta, thr))
    s_ref32, g_ref32 = _spikes_and_grads(lif_reference, x32, beta32, thr32, cfg)
    s32, g32 = _spikes_and_grads(lif_fused, x32, beta32, thr32, cfg)
    assert torch.equal(s32, s_ref32) and torch.equal(s32.double(), s_ref)
    assert torch.allclose(g32[0], g_ref32[0], rtol=1e-5, atol=1e-5 * g_ref32[0].abs().max().item())
    for name, ours, ref, exact in zip(("beta", "threshold"), g32[1:], g_ref32[1:], g_ref[1:]):
        err_ours, err_ref = (ours.double() - exact).abs(), (ref.double() - exact).abs()
        assert (err_ours <= 1e-5 * exact.abs().max() + 4 * err_ref).all(), name


@pytest.mark.parametrize("block_steps", [1, 4])
@pytest.mark.parametrize("cfg", CONFIGS[::4], ids=str)
def test_torch_backward_in_blocks_equals_reference(cfg, block_steps, monkeypatch):
    """The PyTorch backward evaluates σ and ∂H/∂β a block of steps at a time (one block in the other tests):
    blocks of 1 step and of 4 (not dividing T = 30) give the reference's gradients."""
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
    x, beta, thr = _inputs(cfg, True, torch.float64)
    monkeypatch.setattr(lif_scan, "_BLOCK_CPU", block_steps * x[0].numel())
    s_ref, g_ref = _spikes_and_grads(lif_reference, x, beta, thr, cfg)
    s, g = _spikes_and_grads(lif_fused, x, beta, thr, cfg)
    assert torch.equal(s, s_ref)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(g, g_ref))


@pytest.mark.skipif(not lif_numba.available(), reason="numba is not installed")
@pytest.mark.parametrize("cfg", CONFIGS[::5], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_forward_equals_torch_loop(cfg, dtype):
    """The compiled forward writes the same spikes (exactly) and the same H as the PyTorch loop."""
    torch.manual_seed(0)
    x = torch.randn(40, 3, 7, dtype=dtype) * 1.5 + 0.7
    beta, thr = torch.rand(7, dtype=dtype) * 0.6 + 0.3, torch.rand(7, dtype=dtype) * 0.4 + 0.8
    h, s = lif_numba.forward(x, beta, thr, cfg)
    h_ref, s_ref = _forward_loop(x, beta, thr, cfg)
    assert 0.05 < s.mean() < 0.95
    assert torch.equal(s, s_ref)
    assert torch.allclose(h, h_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not lif_numba.available(), reason="numba is not installed")
def test_compiled_path_keeps_torch_thread_setting():
    """Numba's OpenMP pool must not override torch.set_num_threads (DDP / OMP_NUM_THREADS=1 users)."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x = torch.rand(10, 4, 8, requires_grad=True)
        lif_fused(x, torch.tensor(0.5, requires_grad=True), torch.tensor(1.0), LIFConfig()).sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class SmoothSpike:
    """A differentiable stand-in for the Heaviside: S = sigmoid(k u), g = k S (1 - S) exactly.

    With it the fused backward must equal the true gradient, which ``gradcheck`` measures."""

    k = 3.0

    def spike(self, u):
        return torch.sigmoid(self.k * u)

    def derivative(self, u):
        s = torch.sigmoid(self.k * u)
        return self.k * s * (1 - s)

    __call__ = spike


@pytest.mark.parametrize(
    "reset, v_reset, decay_input, detach",
    [
        (r, vr, d, det)
        for r, vr in (("hard", 0.0), ("hard", -0.3), ("soft", 0.0))
        for d in (False, True)
        for det in (False, True)
    ],
)
@pytest.mark.parametrize("per_neuron", [False, True])
def test_gradcheck_float64(reset, v_reset, decay_input, detach, per_neuron):
    cfg = LIFConfig(reset, v_reset, decay_input, detach, SmoothSpike())
    x, beta, thr = _inputs(cfg, per_neuron, torch.float64, n=3, steps=6, batch=2)
    if not detach:  # a detached reset deliberately drops a true gradient path: no finite-difference match
        assert torch.autograd.gradcheck(lambda a, b, c: lif_fused(a, b, c, cfg), (x, beta, thr))
    # and the reference (plain autograd through the same smooth spike, same detach) agrees with it
    s_ref, g_ref = _spikes_and_grads(lif_reference, x, beta, thr, cfg)
    s, g = _spikes_and_grads(lif_fused, x, beta, thr, cfg)
    assert torch.allclose(s, s_ref, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g, g_ref))


@pytest.mark.parametrize("decay_input", [False, True])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_leaky_integrator_fused(decay_input, per_neuron):
    x = torch.rand(8, 2, 3, dtype=torch.float64, requires_grad=True)
    beta = (
        torch.rand(3, dtype=torch.float64) if per_neuron else torch.tensor(0.6, dtype=torch.float64)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: leaky_integrate_fused(a, b, decay_input), (x, beta))
    assert torch.allclose(leaky_integrate_fused(x, beta, decay_input), leaky_integrate(x, beta, decay_input))


def test_only_needed_gradients_are_computed():
    cfg = LIFConfig()
    x = torch.rand(5, 2, 3, requires_grad=True)
    s = lif_fused(x, torch.tensor(0.5), torch.tensor(1.0), cfg)
    (gx,) = torch.autograd.grad(s.sum(), x)
    assert gx.shape == x.shape


def _saved_bytes(fn):
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn().sum().backward()
    return sum(seen.values())


@pytest.mark.parametrize("decay_input", [False, True])
def test_saves_less_for_backward_than_the_plain_loop(decay_input):
    cfg = LIFConfig(decay_input=decay_input)
    x = torch.rand(50, 8, 16, requires_grad=True)
    beta = torch.tensor(0.6, requires_grad=True)
    fused = _saved_bytes(lambda: lif_fused(x, beta, torch.tensor(1.0), cfg))
    plain = _saved_bytes(lambda: lif_reference(x, beta, torch.tensor(1.0), cfg))
    assert fused < plain
    assert fused <= (3 if decay_input else 2) * x.numel() * 4 + 64  # H, spikes (and X)


def test_bf16_autocast_integrates_in_float32():
    cfg = LIFConfig(decay_input=False)
    x = (torch.rand(20, 4, 8) * 0.9).to(torch.bfloat16).requires_grad_()
    beta = torch.tensor(0.7, requires_grad=True)
    s = lif_fused(x, beta, torch.tensor(1.0), cfg)
    s32 = lif_fused(x.detach().float(), beta, torch.tensor(1.0), cfg)
    assert s.dtype == torch.bfloat16 and torch.equal(s.float(), s32)
    s.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and beta.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_equals_cpu():
    cfg = LIFConfig(reset="soft", detach_reset=False)
    x, beta, thr = _inputs(cfg, True, torch.float32)
    s_cpu, g_cpu = _spikes_and_grads(lif_fused, x, beta, thr, cfg)
    xc, bc, tc = (t.detach().cuda().requires_grad_() for t in (x, beta, thr))
    s, g = _spikes_and_grads(lif_fused, xc, bc, tc, cfg)
    assert torch.equal(s.cpu(), s_cpu)
    assert all(torch.allclose(a.cpu(), b, rtol=1e-4, atol=1e-5) for a, b in zip(g, g_cpu))


def test_pytorch_loops_never_read_a_tensor_on_the_host(monkeypatch):
    """No ``.item()`` / ``float()`` / ``bool()`` / ``.tolist()`` of a tensor in the PyTorch loops (what CUDA runs):
    each would be a device-to-host sync per call or per step there."""
    x, beta, thr = _inputs(LIFConfig(), True, torch.float32)
    args = [(x, beta, thr), (x, beta.detach()[0].requires_grad_(), thr.detach()[0])]
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
    for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, name=name: pytest.fail(f"Tensor.{name} called"))
    for (a, b, c), cfg in itertools.product(args, CONFIGS[::4] + [LIFConfig(surrogate=SmoothSpike())]):
        lif_fused(a, b, c, cfg).sum().backward()
    for decay_input in (False, True):
        for a, b, _ in args:
            leaky_integrate_fused(a, b, decay_input).sum().backward()
