"""The Triton kernels (lightning_snn.functional.lif_triton) against the plain-autograd reference, without a GPU.

Each test runs with ``TRITON_INTERPRET=1`` set through ``monkeypatch`` (restored afterwards), and the kernels
are jitted per mode on first use (``lif_triton.kernels(interpret)``), so the interpreter never leaks into
other test modules of the same process. Sizes are small (T <= 8, B·N <= 64): the interpreter is slow.
The last tests compile the kernels with the real compiler for a CUDA target (no device needed)."""

import itertools
import math

import pytest
import torch

from lightning_snn.functional import lif_triton
from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference
from lightning_snn.functional.lif_scan import leaky_integrate_fused, lif_fused, lif_fused_state
from lightning_snn.functional.surrogates import SURROGATES, Surrogate, SurrogateDefinition

pytest.importorskip("triton")

CONFIGS = [
    LIFConfig(reset, v_reset, decay_input, detach, Surrogate(sur))
    for reset, v_reset in (("hard", 0.0), ("hard", -0.3), ("soft", 0.0))
    for decay_input, detach, sur in itertools.product((False, True), (False, True), sorted(SURROGATES))
]


@pytest.fixture
def interpret(monkeypatch):
    """Run the Triton kernels in the interpreter, on CPU tensors, for this test only."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.delenv("LIGHTNING_SNN_TRITON", raising=False)


def _inputs(cfg, per_neuron, dtype, steps=8, batch=4, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, batch, n, generator=g, dtype=dtype) * (2.5 if cfg.decay_input else 0.9)
    beta = torch.rand(n, generator=g, dtype=dtype) * 0.6 + 0.3 if per_neuron else torch.tensor(0.7, dtype=dtype)
    thr = torch.rand(n, generator=g, dtype=dtype) * 0.4 + 0.8 if per_neuron else torch.tensor(1.0, dtype=dtype)
    v0 = torch.rand(batch, n, generator=g, dtype=dtype) * 0.5
    return [t.requires_grad_() for t in (x, beta, thr, v0)]


def _run(fn, x, beta, thr, v0, cfg):
    """Spikes, the last membrane and the gradients (x, β, θ, v0) of a fixed weighted sum of both."""
    s, v_end = fn(x, beta, thr, cfg, v0)
    w = torch.linspace(-1, 1, s.numel(), dtype=s.dtype).view_as(s)
    w_end = torch.linspace(1, -0.5, v_end.numel(), dtype=s.dtype).view_as(v_end)
    return s.detach(), v_end.detach(), torch.autograd.grad((s * w).sum() + (v_end * w_end).sum(), (x, beta, thr, v0))


def _reference(x, beta, thr, cfg, v0):
    s, v = lif_reference(x, beta, thr, cfg, return_membrane=True, v0=v0)
    return s, v[-1] - (cfg.v_reset if cfg.reset == "hard" else 0.0)


def _triton(x, beta, thr, cfg, v0):
    s, v_end = lif_fused_state(x, beta, thr, cfg, v0)
    assert s.grad_fn.engine == "triton"  # the Triton path ran, not the PyTorch or Numba loop
    return s, v_end


def _mismatch(cfg, per_neuron, float64=True) -> str | None:
    """``None`` when the kernels equal the reference for ``cfg``, else what differs. float32: spikes identical, the
    last membrane and the gradients (x, β, θ, v0) to 1e-5 of their largest magnitude; with ``float64``, to 1e-10."""
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5))[0 if float64 else 1 :]:
        x, beta, thr, v0 = _inputs(cfg, per_neuron, dtype)
        s_ref, v_ref, g_ref = _run(_reference, x, beta, thr, v0, cfg)
        s, v_end, g = _run(_triton, x, beta, thr, v0, cfg)
        if not 0.02 < s_ref.mean() < 0.95:
            return f"degenerate input: spike rate {s_ref.mean():.3f}"
        if not torch.equal(s, s_ref):
            return f"{dtype} spikes differ"
        if not torch.allclose(v_end, v_ref, rtol=tol, atol=tol):
            return f"{dtype} last membrane differs"
        for name, a, b in zip(("x", "beta", "threshold", "v0"), g, g_ref):
            if not torch.allclose(a, b, rtol=tol, atol=tol * max(1.0, b.abs().max().item())):
                return f"{dtype} gradient of {name} differs by {(a - b).abs().max().item():.3g}"
    return None


@pytest.mark.parametrize("i, cfg", list(enumerate(CONFIGS)), ids=[str(c) for c in CONFIGS])
def test_triton_lif_equals_reference(i, cfg, interpret):
    """Every configuration (resets, detach, decay_input, each surrogate), per-layer and per-neuron β/θ alternately,
    from an initial state with a gradient reaching the last one: spikes, v_end and gradients equal in float32, and
    in float64 for every fifth configuration (the interpreter's time budget)."""
    assert _mismatch(cfg, per_neuron=bool(i % 2), float64=i % 5 == 0) is None


def test_comparison_catches_a_wrong_surrogate_constant(interpret, monkeypatch):
    """The comparison has teeth: the kernel given atan's c2 off by 1% (the reference keeps the registry's) fails."""
    cfg = CONFIGS[0]
    assert cfg.surrogate.name == "atan" and not cfg.detach_reset
    assert _mismatch(cfg, per_neuron=True) is None
    atan = SURROGATES["atan"]
    wrong = SurrogateDefinition(atan.derivative, lambda a: (a / 2, 1.01 * (math.pi / 2 * a) ** 2), 2.0)
    monkeypatch.setattr(lif_triton, "definition", lambda name: wrong if name == "atan" else SURROGATES[name])
    assert "gradient" in _mismatch(cfg, per_neuron=True)


@pytest.mark.parametrize("steps, cfg", [(1, CONFIGS[13]), (5, CONFIGS[33])], ids=["T1-hard", "T5-soft"])
def test_only_input_gradient_and_a_partial_block(steps, cfg, interpret):
    """β and θ fixed (the usual layer: no β/θ sums in the kernel), no initial state, T = 1 or 5, and B·N = 15 lanes
    (a partial block; the per-neuron β/θ of lane k is neuron k mod N): equal to the reference."""
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(steps, 3, 5, generator=g) * 2.0).requires_grad_()
    beta, thr = torch.rand(5, generator=g) * 0.6 + 0.3, torch.rand(5, generator=g) * 0.4 + 0.6
    s = lif_fused(x, beta, thr, cfg)
    s_ref = lif_reference(x, beta, thr, cfg)
    assert s.grad_fn.engine == "triton" and torch.equal(s, s_ref) and 0 < s_ref.mean() < 1
    w = torch.linspace(-1, 1, s.numel()).view_as(s)
    (gx,), (gx_ref,) = (torch.autograd.grad((out * w).sum(), x) for out in (s, s_ref))
    assert torch.allclose(gx, gx_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_input_integrates_in_float32(dtype, interpret):
    """Half-precision x is read as it is and integrated in float32: the spikes of the float32 run on the same
    values; gradients in x's dtype, equal to the float32 ones (same upstream gradient) to x's precision."""
    cfg = LIFConfig(decay_input=False, detach_reset=False)
    x, beta, thr, _ = _inputs(cfg, True, torch.float32)
    xh = x.detach().to(dtype).requires_grad_()
    s = lif_fused(xh, beta, thr, cfg)
    assert s.dtype == dtype and s.grad_fn.engine == "triton"
    x32 = xh.detach().float().requires_grad_()
    s_ref = lif_reference(x32, beta, thr, cfg)
    assert torch.equal(s.float(), s_ref)
    w = torch.linspace(-1, 1, s.numel(), dtype=dtype).view_as(s)  # the spikes' gradient arrives in x's dtype
    (gx,) = torch.autograd.grad((s * w).sum(), xh)
    (gx_ref,) = torch.autograd.grad((s_ref * w.float()).sum(), x32)
    assert gx.dtype == dtype
    torch.testing.assert_close(gx, gx_ref.to(dtype))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy, inside the interpreter
def test_non_finite_rule_holds_in_the_kernel(interpret):
    """spike = Θ(u) + 0·u: a NaN or inf input gives NaN spikes from that step on, where the reference has them."""
    cfg = LIFConfig()
    x, beta, thr, _ = _inputs(cfg, True, torch.float32)
    x = x.detach().clone()
    x[2, 0, 1], x[5, 1, 3], x[3, 2, 0] = float("nan"), float("inf"), -float("inf")
    s = lif_fused(x, beta.detach(), thr.detach(), cfg)
    ref = lif_reference(x, beta.detach(), thr.detach(), cfg)
    torch.testing.assert_close(s, ref, equal_nan=True, rtol=0, atol=0)
    assert s[2:, 0, 1].isnan().all() and s[5:, 1, 3].isnan().all() and s[:2, 0, 1].isfinite().all()


@pytest.mark.parametrize("decay_input, per_neuron", [(False, True), (True, False)])
def test_triton_leaky_integrator_gradcheck(decay_input, per_neuron, interpret):
    """The leaky integrator kernels: gradcheck in float64 (x, β, v0), and equal to ``leaky_integrate`` in float32."""
    x = torch.rand(5, 2, 3, dtype=torch.float64, requires_grad=True)
    beta = (
        torch.rand(3, dtype=torch.float64) if per_neuron else torch.tensor(0.6, dtype=torch.float64)
    ).requires_grad_()
    v0 = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    assert leaky_integrate_fused(x, beta, decay_input, v0).grad_fn.triton
    fn = lambda a, b, c: leaky_integrate_fused(a, b, decay_input, c)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, beta, v0), fast_mode=True)  # random projections: few interpreted runs
    x32, b32, v32 = (t.detach().float().requires_grad_() for t in (x, beta, v0))
    out, ref = leaky_integrate_fused(x32, b32, decay_input, v32), leaky_integrate(x32, b32, decay_input, v32)
    assert torch.allclose(out, ref, rtol=1e-6, atol=1e-6)
    w = torch.randn_like(out)
    for a, b in zip(
        torch.autograd.grad((out * w).sum(), (x32, b32, v32)), torch.autograd.grad((ref * w).sum(), (x32, b32, v32))
    ):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())


def test_selection(monkeypatch):
    """CPU tensors take the Triton path only under the interpreter; LIGHTNING_SNN_TRITON=0 turns it off."""
    x, cfg = torch.rand(3, 2, 4), LIFConfig()
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not lif_triton.supports(x, cfg)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert lif_triton.supports(x, cfg) and not lif_triton.supports(x.long())
    assert not lif_triton.supports(x, cfg._replace(surrogate=object()))  # a custom spike pair: the PyTorch loop
    monkeypatch.setenv("LIGHTNING_SNN_TRITON", "0")
    assert not lif_triton.supports(x, cfg)


def _compile_for_cuda(kernel, signature: dict, constexprs: dict) -> str:
    """PTX of ``kernel`` from Triton's real compiler for an sm_90 target (CUDA's ptxas ships with triton)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    src = ASTSource(kernel, signature={**signature, **dict.fromkeys(constexprs, "constexpr")}, constexprs=constexprs)
    options = {"enable_fp_fusion": False, "num_warps": 4}
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


@pytest.mark.skipif(lif_triton.interpreting(), reason="TRITON_INTERPRET is set for the whole process")
def test_kernels_compile_for_a_cuda_target():
    """The interpreter accepts what the compiler may not (Python's ``abs``, jitted helpers): every kernel, every
    surrogate's derivative and half-precision pointers compile to PTX with the real compiler (no GPU needed)."""
    k, f32 = lif_triton.kernels(False), "*fp32"
    lanes = dict(T="i32", M="i32", N="i32")
    flags = dict(REST=-0.3, DECAY_INPUT=True, HARD=True, HAS_V0=True, STAGES=3, BLOCK=128)
    for x in (f32, "*bf16"):
        fwd = dict(x_ptr=x, beta_ptr=f32, thr_ptr=f32, v0_ptr=f32, h_ptr=f32, s_ptr=x, v_end_ptr=f32)
        ptx = _compile_for_cuda(k.lif_forward, {**fwd, **lanes}, flags)
        assert ".entry lif_forward_kernel" in ptx
        assert x != f32 or "cp.async" in ptx  # float32: the loads of later steps are in flight (asynchronous copies)
    bwd = dict(h_ptr=f32, gs_ptr="*bf16", x_ptr="*bf16", beta_ptr=f32, thr_ptr=f32, v0_ptr=f32, g_end_ptr=f32)
    bwd |= dict(gx_ptr="*bf16", acc_beta_ptr=f32, acc_thr_ptr=f32, g_v0_ptr=f32, **lanes)
    for i, name in enumerate(sorted(SURROGATES)):
        c1, c2 = SURROGATES[name].constants(SURROGATES[name].default_alpha)
        flags = dict(G=k.derivative(name), REST=0.0, C1=c1, C2=c2, DECAY_INPUT=True, HARD=bool(i % 2), DETACH=False)
        flags |= dict(NEED_BETA=True, NEED_THR=True, HAS_V0=True, HAS_G_END=True, STAGES=3, BLOCK=128)
        ptx = _compile_for_cuda(k.lif_backward, bwd, flags)
        assert ".entry lif_backward_kernel" in ptx and "cp.async" in ptx
    leaky = dict(x_ptr="*fp16", beta_ptr=f32, v0_ptr=f32, v_ptr=f32, **lanes)
    flags = dict(DECAY_INPUT=True, HAS_V0=True, STAGES=3, BLOCK=128)
    assert ".entry leaky_forward_kernel" in _compile_for_cuda(k.leaky_forward, leaky, flags)
    leaky = dict(gv_ptr="*fp16", v_ptr=f32, x_ptr="*fp16", beta_ptr=f32, v0_ptr=f32, gx_ptr="*fp16")
    leaky |= dict(acc_beta_ptr=f32, g_v0_ptr=f32, **lanes)
    flags = dict(DECAY_INPUT=True, NEED_BETA=True, HAS_V0=True, STAGES=3, BLOCK=128)
    assert ".entry leaky_backward_kernel" in _compile_for_cuda(k.leaky_backward, leaky, flags)
