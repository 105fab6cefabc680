r"""Fused LIF and leaky-integrator time loops: one autograd node per layer, hand-written BPTT.

The dynamics are those of :mod:`lightning_snn.functional.lif` (``lif_reference`` is the reference):

.. math::
    H_t = V_r + \beta (V_{t-1} - V_r) + c X_t,\quad S_t = \Theta(H_t - \theta),\quad
    V_t = H_t - \theta \hat S_t \;\text{(soft)}\;\text{or}\; H_t (1 - \hat S_t) + V_r \hat S_t \;\text{(hard)}

**Forward** runs the loop without autograd, writing :math:`H` and the spikes (as floats) into
preallocated ``(T, B, N)`` buffers, and saves only those two (plus :math:`X` when ``decay_input`` and β
needs a gradient). Resets are recomputed from them in the backward pass. On CPU, when Numba is
installed, the forward loop is one compiled pass (:mod:`lightning_snn.functional.lif_numba`, same
outputs). On CUDA, when Triton is installed, both directions are single Triton kernels
(:mod:`lightning_snn.functional.lif_triton`, which saves ``H`` only and reads half-precision input as it
is; also on CPU tensors under ``TRITON_INTERPRET=1``, how they are tested). Elsewhere (no Numba or Triton,
``LIGHTNING_SNN_TRITON=0``, a non-Heaviside spike function) it is the PyTorch loop below, the fallback.

**Backward.** With :math:`\sigma_t = g(H_t - \theta)` the surrogate derivative, the adjoint
:math:`\bar H_t = \partial L / \partial H_t` obeys a *linear* recurrence backwards in time,

.. math::
    \bar H_t = B_t + \beta A_t \bar H_{t+1}, \qquad
    A_t = \frac{\partial V_t}{\partial H_t}\Big|_{\hat S} + [\text{not detach}]\,
          \frac{\partial V_t}{\partial \hat S_t}\sigma_t, \qquad B_t = \bar S_t\,\sigma_t,

computed backwards one ``(B, N)`` slice at a time (small, cache-resident tensors: on CPU this beats
whole-sequence passes, whose temporaries cost more than the arithmetic). What does not depend on
the adjoint (:math:`\sigma_t` and :math:`\partial H_t / \partial\beta`) is evaluated ahead of the
recurrence for a block of steps at once: a few kernel launches per block instead of per step, which
is what counts on a GPU. The gradients for :math:`X`, β and θ are accumulated on the way, then
reduced over batch (and neurons for a per-layer β or θ):
:math:`\bar X_t = c \bar H_t`,
:math:`\bar\beta = \sum_t \bar H_t (V_{t-1} - V_r) - [\text{decay\_input}] \bar H_t X_t`,
:math:`\bar\theta = -\sum_t \bar S^{tot}_t \sigma_t - [\text{soft}] \bar V_t \hat S_t`.

**State.** For streaming (:mod:`lightning_snn.state`), :func:`lif_fused_state` starts from a given
membrane :math:`v_0 = V_{-1} - V_r` ``(B, N)`` and also returns the last one, :math:`V_{T-1} - V_r`.
A gradient arriving at the last membrane starts the adjoint recurrence (``carry``), and the adjoint
leaving step 0, :math:`\partial L/\partial v_0 = \beta \bar H_0`, is the initial state's gradient;
:math:`\bar\beta` uses :math:`v_0` for :math:`V_{-1}`. Without a state (``v0=None``) both loops run as
before (the compiled one from a zero array).

The spike function is the config's surrogate: ``spike(u)`` forward and ``derivative(u)`` backward
(for a :class:`~lightning_snn.functional.surrogates.Surrogate`, its registry definition, which the
compiled Numba and Triton kernels use too; an unknown name raises ``ValueError`` before the forward pass). Any
differentiable pair works, which is how ``gradcheck`` verifies this backward exactly (with a
smooth sigmoid "spike") in the tests. Half-precision inputs (autocast) are integrated in float32.
"""

from __future__ import annotations

import torch

from lightning_snn.functional import lif_numba, lif_triton
from lightning_snn.functional.lif import LIFConfig
from lightning_snn.functional.surrogates import Surrogate, definition

# Elements of H per block of the backward loop's precomputed terms (σ, ∂H/∂β): a CPU block stays in
# cache (2^16 measured fastest at B·N = 16K, T = 100); on a GPU a larger one saves kernel launches.
_BLOCK_CPU, _BLOCK_GPU = 1 << 16, 1 << 22


def _reduce_to(acc: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reduce a ``(B, N)`` accumulator to the shape of a ``()`` or ``(N,)`` parameter."""
    g = acc.sum(0)
    return (g.sum() if like.dim() == 0 else g).to(like.dtype)


def _charge(x_t, v, beta, cfg: LIFConfig, rest: float, out: torch.Tensor) -> torch.Tensor:
    """``H = rest + beta v + c X`` written into ``out``, with ``v = V_{t-1} - rest``."""
    if cfg.decay_input:  # (1 - beta) X + beta v = lerp(X, v, beta)
        h = torch.lerp(x_t, v, beta, out=out)
    else:
        h = torch.addcmul(x_t, v, beta, out=out)
    return h.add_(rest) if rest != 0.0 else h


def _spike_into(u: torch.Tensor, cfg: LIFConfig, out: torch.Tensor) -> torch.Tensor:
    """``S = Θ(u)`` (1 where u >= 0) as floats into ``out``: ``clamp(sign(u) + 1, max=1) + 0·u``.

    Float arithmetic is several times faster than a comparison plus a bool→float cast on CPU. The
    ``0·u`` term is the non-finite rule (:mod:`lightning_snn.functional.lif`): NaN where u is NaN or
    ±inf, +0 elsewhere; ``u`` (a temporary) is overwritten. A non-Heaviside spike function (a smooth
    one, in the gradient tests) is evaluated as given.
    """
    if isinstance(cfg.surrogate, Surrogate):
        return torch.sign(u, out=out).add_(1.0).clamp_(max=1.0).add_(u.mul_(0.0))
    return out.copy_(cfg.surrogate.spike(u))


def _membrane_after_reset(h, s, thr, cfg: LIFConfig, rest: float) -> torch.Tensor:
    """``V - rest`` after the reset: ``H - θ S`` (soft) or ``(H - rest)(1 - S)`` (hard)."""
    if cfg.reset == "soft":
        return torch.addcmul(h, s, thr, value=-1.0)
    h = h - rest if rest != 0.0 else h
    return torch.addcmul(h, h, s, value=-1.0)


def _use_compiled(x: torch.Tensor, cfg: LIFConfig) -> bool:
    """The Numba forward kernel: CPU, float32/64, a Heaviside spike, numba importable and enabled."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and isinstance(cfg.surrogate, Surrogate)
        and lif_numba.available()
    )


def _forward_loop(xf: torch.Tensor, beta, thr, cfg: LIFConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The PyTorch loop: ``(H, spikes)`` written one ``(B, N)`` slice at a time into preallocated buffers."""
    return _forward_loop_state(xf, beta, thr, cfg)[:2]


def _forward_loop_state(xf: torch.Tensor, beta, thr, cfg: LIFConfig, v0: torch.Tensor | None = None) -> tuple:
    """:func:`_forward_loop` from the membrane ``v0`` (``V - rest``, (B, N); ``None``: 0); also returns the
    last membrane ``V - rest`` (B, N)."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    h, spikes = torch.empty_like(xf), torch.empty_like(xf)
    v = torch.zeros_like(xf[0]) if v0 is None else v0.to(xf.dtype).expand_as(xf[0])  # V - rest
    for t, x_t in enumerate(xf.unbind(0)):
        h_t = _charge(x_t, v, beta, cfg, rest, out=h[t])
        s_t = _spike_into(h_t - thr, cfg, out=spikes[t])
        v = _membrane_after_reset(h_t, s_t, thr, cfg, rest)
    return h, spikes, v


class FusedLIF(torch.autograd.Function):
    """Forward and backward loops over ``(B, N)`` time slices; see the module docstring.

    ``(x, decay, threshold, v0, cfg) -> (spikes, v_end)``: ``v0`` is the initial membrane relative to
    rest, :math:`V_{-1} - V_r` ``(B, N)`` (``None``: at rest), ``v_end`` the last one, :math:`V_{T-1} - V_r`.
    The gradient reaching ``v_end`` (from a next chunk) starts the adjoint recurrence, and the adjoint
    leaving step 0 is ``dL/dv0`` (:math:`\beta \bar H_0`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, v0, cfg: LIFConfig):
        dtype = x.dtype
        if isinstance(cfg.surrogate, Surrogate):
            definition(cfg.surrogate.name)  # an unknown name raises here, on every path
        ctx.engine = "triton" if lif_triton.supports(x, cfg) else None
        if ctx.engine == "triton":  # half-precision x is read as it is, integrated in float32
            return _triton_forward(ctx, x, decay, threshold, v0, cfg)
        xf = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        beta, thr = decay.detach().to(xf.dtype), threshold.detach().to(xf.dtype)
        v0f = None if v0 is None else v0.detach().to(xf.dtype)
        ctx.compiled = _use_compiled(xf, cfg)
        if ctx.compiled:
            h, spikes, v_end = lif_numba.forward(xf, beta, thr, cfg, v0f, return_state=True)
        else:
            h, spikes, v_end = _forward_loop_state(xf, beta, thr, cfg, v0f)
        ctx.cfg, ctx.dtype = cfg, dtype
        ctx.decay_like, ctx.threshold_like = decay, threshold
        ctx.v0_dtype = None if v0 is None else v0.dtype
        keep_x = cfg.decay_input and decay.requires_grad
        keep_v0 = v0f if (v0f is not None and decay.requires_grad) else None
        ctx.save_for_backward(h, spikes, beta, thr, xf if keep_x else None, keep_v0)
        return spikes.to(dtype), v_end.to(dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor, grad_v_end: torch.Tensor | None):
        h, spikes, beta, thr, x, v0 = ctx.saved_tensors
        cfg: LIFConfig = ctx.cfg
        need_x, need_beta, need_thr, need_v0 = ctx.needs_input_grad[:4]
        grad_v_end = None if grad_v_end is None else grad_v_end.to(h.dtype)
        if ctx.engine == "triton":
            grad_x, acc_beta, acc_thr, grad_v0 = lif_triton.lif_backward(
                h, grad_spikes, x, beta, thr, cfg, need_beta, need_thr, v0, grad_v_end, ctx.dtype
            )
        elif ctx.compiled:
            grad_x, acc_beta, acc_thr, grad_v0 = lif_numba.backward_state(
                h, grad_spikes, x, beta, thr, cfg, need_beta, need_thr, v0, grad_v_end
            )
        else:
            grad_x, acc_beta, acc_thr, grad_v0 = _backward_loop_state(
                h, spikes, grad_spikes, beta, thr, x, cfg, need_beta, need_thr, v0, grad_v_end
            )
        return (
            grad_x.to(ctx.dtype) if need_x else None,
            _reduce_to(acc_beta, ctx.decay_like) if need_beta else None,
            _reduce_to(acc_thr, ctx.threshold_like) if need_thr else None,
            grad_v0.to(ctx.v0_dtype) if need_v0 else None,
            None,
        )


def _triton_forward(ctx, x, decay, threshold, v0, cfg: LIFConfig):
    """:meth:`FusedLIF.forward` through :mod:`~lightning_snn.functional.lif_triton`: saves ``H`` (the spikes and
    resets are recomputed from it) and ``x`` itself when β needs it."""
    state = torch.float64 if x.dtype == torch.float64 else torch.float32
    beta, thr = decay.detach().to(state), threshold.detach().to(state)
    v0f = None if v0 is None else v0.detach().to(state)
    h, spikes, v_end = lif_triton.lif_forward(x, beta, thr, cfg, v0f)
    ctx.cfg, ctx.dtype, ctx.compiled = cfg, x.dtype, False
    ctx.decay_like, ctx.threshold_like = decay, threshold
    ctx.v0_dtype = None if v0 is None else v0.dtype
    keep_x = cfg.decay_input and decay.requires_grad
    ctx.save_for_backward(h, None, beta, thr, x.detach() if keep_x else None, v0f if decay.requires_grad else None)
    return spikes, v_end.to(x.dtype)


def _dh_dbeta(h, spikes, x, thr, cfg: LIFConfig, rest: float, first: int, stop: int, v0=None) -> torch.Tensor:
    """``∂H_t/∂β = (V_{t-1} - rest) - [decay_input] X_t`` for t in ``[first, stop)``, with ``V_{-1} = rest``
    (or ``rest + v0``)."""
    prev = slice(max(first - 1, 0), stop - 1)
    v = _membrane_after_reset(h[prev], spikes[prev], thr, cfg, rest)
    if first == 0:
        start = torch.zeros_like(h[:1]) if v0 is None else v0.expand_as(h[0])[None]
        v = torch.cat([start, v])
    return v - x[first:stop] if cfg.decay_input else v


def _backward_loop(h, spikes, grad_spikes, beta, thr, x, cfg: LIFConfig, need_beta: bool, need_thr: bool):
    """The PyTorch adjoint loop, one ``(B, N)`` slice per step: ``(grad_x, β sums, θ sums)`` (sums (B, N)).

    What does not depend on the adjoint (σ = g(H - θ), and ∂H/∂β) is evaluated a block of steps at a
    time, just before the loop reaches them."""
    return _backward_loop_state(h, spikes, grad_spikes, beta, thr, x, cfg, need_beta, need_thr)[:3]


def _backward_loop_state(
    h, spikes, grad_spikes, beta, thr, x, cfg: LIFConfig, need_beta: bool, need_thr: bool, v0=None, grad_v_end=None
):
    """:func:`_backward_loop` from the initial membrane ``v0`` (``None``: 0) with the gradient
    ``grad_v_end`` of the last membrane (``None``: 0); also returns ``dL/dv0`` (B, N)."""
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    grad_x = torch.empty_like(h)
    acc_beta = torch.zeros_like(h[0]) if need_beta else None
    acc_thr = torch.zeros_like(h[0]) if need_thr else None
    # dL/dV_t arriving from step t+1 (beta * dL/dH_{t+1}), or from outside for the last step
    carry = torch.zeros_like(h[0]) if grad_v_end is None else grad_v_end.expand_as(h[0])
    gs_all = grad_spikes.to(h.dtype).unbind(0)
    one_minus_beta, minus_thr = 1.0 - beta, -thr
    block_elements = _BLOCK_CPU if h.device.type == "cpu" else _BLOCK_GPU
    block = max(1, block_elements // max(1, h[0].numel()))
    for stop in range(h.shape[0], 0, -block):
        first = max(0, stop - block)
        sigma = cfg.surrogate.derivative(h[first:stop] - thr)  # σ_t for t in [first, stop)
        dh_dbeta = _dh_dbeta(h, spikes, x, thr, cfg, rest, first, stop, v0) if need_beta else None
        for t in range(stop - 1, first - 1, -1):
            h_t, s_t, sigma_t = h[t], spikes[t], sigma[t - first]
            gs = gs_all[t]
            if not cfg.detach_reset:  # the reset's own path: dV/dS = -theta (soft) or rest - H (hard)
                gs = torch.addcmul(gs, carry, (rest - h_t) if cfg.reset == "hard" else minus_thr)
            if need_thr:
                acc_thr.addcmul_(gs, sigma_t, value=-1.0)
                if cfg.reset == "soft":
                    acc_thr.addcmul_(carry, s_t, value=-1.0)
            # dL/dV_t * dV_t/dH_t (S fixed): 1 (soft) or 1 - S (hard), plus dL/dS_t * σ_t
            base = carry if cfg.reset == "soft" else torch.addcmul(carry, carry, s_t, value=-1.0)
            gh = torch.addcmul(base, gs, sigma_t)
            if cfg.decay_input:
                torch.mul(gh, one_minus_beta, out=grad_x[t])
            else:
                grad_x[t].copy_(gh)
            if need_beta:
                acc_beta.addcmul_(gh, dh_dbeta[t - first])
            carry = gh.mul_(beta)
    return grad_x, acc_beta, acc_thr, carry


def lif_fused(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """Spikes ``(T, B, N)``; equal to :func:`~lightning_snn.functional.lif.lif_reference`, gradients included."""
    return FusedLIF.apply(x, decay, threshold, None, cfg)[0]


def lif_fused_state(
    x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg: LIFConfig, v0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(spikes (T, B, N), v_end (B, N))`` from the initial membrane ``v0`` ``(B, N)`` (both relative to
    rest, :math:`V - V_r`; ``None``: at rest). Gradients flow into ``v0`` and from ``v_end``, so chunks
    chained through the state back-propagate as one pass (detach the state for truncated BPTT)."""
    return FusedLIF.apply(x, decay, threshold, v0, cfg)


class FusedLeakyIntegrator(torch.autograd.Function):
    r"""``V_t = β V_{t-1} + c X_t`` from ``V_{-1} = v0`` (``None``: 0) with adjoint
    ``\bar V_t = G_t + β \bar V_{t+1}``; ``dL/dv0 = β \bar V_0``. The last state is ``V_{T-1}``, an output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, decay: torch.Tensor, v0, decay_input: bool) -> torch.Tensor:
        dtype = x.dtype
        ctx.triton = lif_triton.supports(x)
        if ctx.triton:  # half-precision x read as it is, integrated in float32
            beta = decay.detach().to(torch.float64 if dtype == torch.float64 else torch.float32)
            start = None if v0 is None else v0.detach().to(beta.dtype).expand_as(x[0])
            v = lif_triton.leaky_forward(x, beta, decay_input, start)
            x = x.detach()
        else:
            x = x.float() if dtype in (torch.float16, torch.bfloat16) else x  # integrate in float32
            beta = decay.detach().to(x.dtype)
            v = torch.empty_like(x)
            prev = torch.zeros_like(x[0]) if v0 is None else v0.detach().to(x.dtype).expand_as(x[0])
            start = prev
            for t, x_t in enumerate(x.unbind(0)):
                if decay_input:
                    prev = torch.lerp(x_t, prev, beta, out=v[t])  # a tensor weight: no device-host sync
                else:
                    prev = torch.addcmul(x_t, prev, beta, out=v[t])
        ctx.decay_input, ctx.decay_like, ctx.dtype = decay_input, decay, dtype
        ctx.v0_dtype = None if v0 is None else v0.dtype
        keep_v0 = start if (v0 is not None and decay.requires_grad) else None
        ctx.save_for_backward(v, beta, x if decay_input and decay.requires_grad else None, keep_v0)
        return v.to(dtype)

    @staticmethod
    def backward(ctx, grad_v: torch.Tensor):
        v, beta, x, v0 = ctx.saved_tensors
        need_x, need_beta, need_v0 = ctx.needs_input_grad[:3]
        if ctx.triton:
            grad_x, acc, carry = lif_triton.leaky_backward(
                grad_v, v, x, beta, ctx.decay_input, need_beta, v0, ctx.dtype
            )
            return (
                grad_x if need_x else None,
                _reduce_to(acc, ctx.decay_like) if need_beta else None,
                carry.to(ctx.v0_dtype) if need_v0 else None,
                None,
            )
        grad_x = torch.empty_like(v) if need_x else None
        acc = torch.zeros_like(v[0]) if need_beta else None
        carry = torch.zeros_like(v[0])
        grad_v = grad_v.to(v.dtype)
        for t in range(v.shape[0] - 1, -1, -1):
            gv = grad_v[t] + carry
            if need_x and ctx.decay_input:
                torch.mul(gv, 1.0 - beta, out=grad_x[t])
            elif need_x:
                grad_x[t].copy_(gv)
            if need_beta:
                if t > 0:
                    acc.addcmul_(gv, v[t - 1])
                elif v0 is not None:
                    acc.addcmul_(gv, v0)
                if ctx.decay_input:
                    acc.sub_(gv * x[t])
            carry = gv.mul_(beta)
        grad_x = grad_x.to(ctx.dtype) if need_x else None
        grad_v0 = carry.to(ctx.v0_dtype) if need_v0 else None
        return grad_x, _reduce_to(acc, ctx.decay_like) if need_beta else None, grad_v0, None


def leaky_integrate_fused(
    x: torch.Tensor, decay: torch.Tensor, decay_input: bool = True, v0: torch.Tensor | None = None
) -> torch.Tensor:
    """Equal to :func:`~lightning_snn.functional.lif.leaky_integrate`, as one autograd node; ``v0``
    ``(B, N)`` is the membrane before the first step (``None``: 0), the last output row the final state."""
    return FusedLeakyIntegrator.apply(x, decay, v0, decay_input)
