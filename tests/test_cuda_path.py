"""The CUDA path: the Triton kernels against the CPU reference on a device, and no host sync in forward passes.

Every test here needs a CUDA device (skipped elsewhere; ``benchmarks/gpu_check.py`` runs them). "No host sync"
is checked with ``torch.cuda.set_sync_debug_mode("error")``, which raises on any operation that makes the host
wait for the device (``.item()``, ``nonzero``, a device-to-host copy, ...)."""

import contextlib
import itertools

import pytest
import torch

from lightning_snn.functional.lif import LIFConfig, lif_reference
from lightning_snn.functional.lif_scan import leaky_integrate_fused, lif_fused, lif_fused_state
from lightning_snn.functional.surrogates import SURROGATES, Surrogate

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CONFIGS = [
    LIFConfig(reset, v_reset, decay_input, detach, Surrogate(sur))
    for (reset, v_reset), decay_input, detach, sur in itertools.product(
        (("hard", 0.0), ("hard", -0.3), ("soft", 0.0)), (False, True), (False, True), sorted(SURROGATES)
    )
]


@contextlib.contextmanager
def no_host_sync():
    """Raise on any device-to-host synchronisation inside the block."""
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def _inputs(cfg, dtype, device, steps=40, batch=6, n=32):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(steps, batch, n, generator=g, dtype=dtype) * (2.5 if cfg.decay_input else 0.9)
    beta = torch.rand(n, generator=g, dtype=dtype) * 0.6 + 0.3
    thr = torch.rand(n, generator=g, dtype=dtype) * 0.4 + 0.8
    v0 = torch.rand(batch, n, generator=g, dtype=dtype) * 0.5
    return [t.to(device).requires_grad_() for t in (x, beta, thr, v0)]


@needs_cuda
@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_cuda_triton_lif_equals_reference(cfg):
    """On CUDA the Triton kernels run (selected automatically) and equal the plain-autograd reference in float64."""
    x, beta, thr, v0 = _inputs(cfg, torch.float64, "cuda")
    s, v_end = lif_fused_state(x, beta, thr, cfg, v0)
    assert s.grad_fn.engine == "triton"
    s_ref, v_ref = lif_reference(x, beta, thr, cfg, return_membrane=True, v0=v0)
    v_ref = v_ref[-1] - (cfg.v_reset if cfg.reset == "hard" else 0.0)
    assert torch.equal(s, s_ref) and torch.allclose(v_end, v_ref, atol=1e-12)
    w = torch.linspace(-1, 1, s.numel(), dtype=s.dtype, device="cuda").view_as(s)
    args = (x, beta, thr, v0)
    ours = torch.autograd.grad((s * w).sum() + v_end.sum(), args)
    ref = torch.autograd.grad((s_ref * w).sum() + v_ref.sum(), args)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-10) for a, b in zip(ours, ref))


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_triton_lif_dtypes_equal_torch_loop(dtype, monkeypatch):
    """float32 / bf16 / fp16 input: the Triton kernels equal the PyTorch loop (LIGHTNING_SNN_TRITON=0) on the device."""
    cfg = LIFConfig(reset="soft", detach_reset=False)
    x, beta, thr, _ = _inputs(cfg, torch.float32, "cuda")
    x = x.detach().to(dtype).requires_grad_()
    s = lif_fused(x, beta, thr, cfg)
    (gx, gb) = torch.autograd.grad(s.float().sum(), (x, beta))
    monkeypatch.setenv("LIGHTNING_SNN_TRITON", "0")
    s_ref = lif_fused(x, beta, thr, cfg)
    assert s_ref.grad_fn.engine is None
    (gx_ref, gb_ref) = torch.autograd.grad(s_ref.float().sum(), (x, beta))
    assert s.dtype == dtype and torch.equal(s, s_ref)
    # the loop computes H = lerp(X, V, β), the kernel βV + (1-β)X: float32 rounding apart, then x's dtype
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(gx.float(), gx_ref.float(), rtol=tol, atol=tol * gx_ref.abs().max().item())
    torch.testing.assert_close(gb, gb_ref, rtol=1e-4, atol=1e-4 * gb_ref.abs().max().item())


@needs_cuda
def test_cuda_non_finite_rule_holds_in_the_compiled_kernel():
    """spike = Θ(u) + 0·u survives the compiler (no x·0 → 0 folding): NaN spikes where the reference has them."""
    cfg = LIFConfig()
    x, beta, thr, _ = (t.detach() for t in _inputs(cfg, torch.float32, "cuda"))
    x[2, 0, 1], x[5, 1, 3], x[3, 2, 0] = float("nan"), float("inf"), -float("inf")
    s = lif_fused(x, beta, thr, cfg)
    torch.testing.assert_close(s, lif_reference(x, beta, thr, cfg), equal_nan=True, rtol=0, atol=0)
    assert s[2:, 0, 1].isnan().all()


@needs_cuda
def test_cuda_forward_passes_never_sync():
    """Forward passes on CUDA: the LIF (Triton and PyTorch loop), the readout, SpikeSampler's generator, the FFT delay
    path, S4D and a network under bf16 autocast, with the host never waiting for the device."""
    from lightning_snn import DelayedLinear, FeedForwardSNN, LeakyReadout, LearnableLIF, S4DLayer, SpikeSampler

    x = torch.rand(20, 4, 16, device="cuda")
    modules = [
        LearnableLIF(16, per_neuron=True, learn_threshold=True),
        LeakyReadout(16, learn_tau=True),
        SpikeSampler(16, seed=3),
        DelayedLinear(16, 8, max_delay=5),
        S4DLayer(16),
    ]
    modules = [m.cuda().train() for m in modules]
    net = FeedForwardSNN(16, [32], 4).cuda()
    for m in modules:  # first calls outside the check: kernels compile, generators are created
        m(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        net(x)
    with no_host_sync():
        for m in modules:
            m(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            net(x)


@needs_cuda
def test_cuda_backward_of_fused_paths_never_syncs():
    """The Triton and leaky-integrator backward passes do not sync either."""
    cfg = LIFConfig(detach_reset=False)
    x, beta, thr, v0 = _inputs(cfg, torch.float32, "cuda")
    lif_fused_state(x, beta, thr, cfg, v0)[0].sum().backward()  # compile first
    leaky_integrate_fused(x, beta, True, v0).sum().backward()
    with no_host_sync():
        lif_fused_state(x, beta, thr, cfg, v0)[0].sum().backward()
        leaky_integrate_fused(x, beta, True, v0).sum().backward()


@needs_cuda
def test_cuda_rng_state_checkpoint_restores_cuda_draws():
    """RNGStateCheckpoint's capture holds CUDA's generator state; restoring it repeats the CUDA draws."""
    from lightning_snn.callbacks.rng_state import capture_rng_state, restore_rng_state

    state = capture_rng_state()
    assert "cuda" in state
    first = torch.rand(8, device="cuda")
    restore_rng_state(state)
    assert torch.equal(torch.rand(8, device="cuda"), first)


@needs_cuda
def test_cuda_spike_sampler_generator_follows_the_device():
    """SpikeSampler draws its training noise from a CUDA generator on a CUDA input, reproducibly from its seed."""
    from lightning_snn import SpikeSampler

    x = torch.rand(5, 2, 8, device="cuda")
    a, b = SpikeSampler(8, seed=7).cuda().train(), SpikeSampler(8, seed=7).cuda().train()
    assert torch.equal(a(x), b(x))
    assert a.generator(x.device).device.type == "cuda"


@needs_cuda
def test_cuda_non_finite_guard_finds_the_bad_tensor():
    """NonFiniteGuard's scan works on CUDA tensors and names the first non-finite one."""
    from lightning_snn.callbacks.non_finite_guard import first_non_finite

    good, bad = torch.ones(3, device="cuda"), torch.tensor([1.0, float("nan")], device="cuda")
    assert first_non_finite([("a", good), ("b", None)]) is None
    assert first_non_finite([("a", good), ("b", bad)])[0] == "b"


def test_rng_state_restores_the_devices_it_can_and_warns(monkeypatch):
    """A checkpoint from more CUDA devices than this process sees: the common ones are restored, with a warning
    (before: nothing was restored, silently). Runs without a GPU: torch.cuda's functions are stand-ins."""
    from lightning_snn.callbacks.rng_state import capture_rng_state, restore_rng_state

    cpu_state, restored = capture_rng_state(), []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    state = {
        **cpu_state,
        "cuda": [torch.tensor([7], dtype=torch.uint8), torch.tensor([9], dtype=torch.uint8)],
    }
    with pytest.warns(UserWarning, match="CUDA random state of 2 device"):
        restore_rng_state(state)
    assert restored == [(7, 0)]
