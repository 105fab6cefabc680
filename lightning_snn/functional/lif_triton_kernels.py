r"""Triton kernel bodies of the fused LIF and leaky integrator (jitted by :mod:`~lightning_snn.functional.lif_triton`).

These are plain functions: :func:`lightning_snn.functional.lif_triton.kernels` wraps them with
``triton.jit`` on first use, once per mode (compiled, or the interpreter under ``TRITON_INTERPRET=1``),
so importing this module compiles nothing and the mode is the one in force when the kernels are
first needed. Each program owns ``BLOCK`` lanes of the flattened ``(B·N)`` batch and walks through
time once, its state in registers; time slice ``t`` of a ``(T, B, N)`` tensor starts at ``t·M``
(``M = B·N``; 64-bit offsets). The loops are ``tl.range(T, num_stages=STAGES)``: the compiler keeps the
loads of the next ``STAGES - 1`` steps in flight (asynchronous copies) while a step computes, since a
step's loads never depend on the state; without that each step would wait one memory latency.
Loads are cast to the state dtype (float32, or float64 for float64 input); stores to the buffer's.
The bodies call only builtins of ``triton.language`` (``tl.full``, not ``tl.zeros``, which is itself a
jitted function, fixed in one mode when triton is imported): so the interpreter runs them whatever the
order of imports, and a test can switch to it for itself alone.

The equations, the saved tensors and the adjoint recurrence are those of
:mod:`lightning_snn.functional.lif_scan` (its Numba kernels in :mod:`~lightning_snn.functional.lif_numba`
are the same loops on CPU):

.. math::
    H_t = V_r + \beta v_{t-1} + c X_t,\quad S_t = \Theta(H_t - \theta) + 0\cdot(H_t - \theta),\quad
    v_t = (H_t - V_r)(1 - S_t) \;\text{(hard)}\;\text{or}\; H_t - \theta S_t \;\text{(soft)},

with :math:`v = V - V_r`, and backwards :math:`\bar H_t = \bar S_t g(H_t - \theta) + \beta A_t \bar H_{t+1}`.
``G`` is the surrogate's registry derivative ``g(u, c1, c2, one)``, jitted as it is written in
:mod:`lightning_snn.functional.surrogates`. ``REST``, ``C1``, ``C2`` are compile-time constants
(full precision in float64 kernels; one compilation per layer configuration).
"""

from __future__ import annotations

import triton.language as tl


def absolute(u):
    """``|u|``: what a registry derivative's ``abs`` means inside a kernel."""
    return tl.abs(u)


def lif_forward_kernel(
    x_ptr, beta_ptr, thr_ptr, v0_ptr, h_ptr, s_ptr, v_end_ptr, T, M, N,
    REST: tl.constexpr, DECAY_INPUT: tl.constexpr, HARD: tl.constexpr, HAS_V0: tl.constexpr,
    STAGES: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Write ``H`` (state dtype) and the spikes (``s_ptr``'s dtype) for every step, and the last ``v``."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = lanes < M
    neuron = lanes % N
    b = tl.load(beta_ptr + neuron, mask=live, other=0.0)
    th = tl.load(thr_ptr + neuron, mask=live, other=1.0)
    if HAS_V0:
        v = tl.load(v0_ptr + lanes, mask=live, other=0.0).to(b.dtype)
    else:
        v = tl.full([BLOCK], 0.0, b.dtype)
    for t in tl.range(T, num_stages=STAGES):  # loads of later steps in flight (cp.async) while this one runs
        at = tl.cast(t, tl.int64) * M + lanes
        xt = tl.load(x_ptr + at, mask=live, other=0.0).to(b.dtype)
        if DECAY_INPUT:
            hh = REST + b * v + (1.0 - b) * xt
        else:
            hh = REST + b * v + xt
        u = hh - th
        s = tl.where(u >= 0.0, 1.0, 0.0).to(b.dtype) + u * 0.0  # NaN where u is NaN or ±inf
        tl.store(h_ptr + at, hh, mask=live)
        tl.store(s_ptr + at, s.to(s_ptr.dtype.element_ty), mask=live)
        if HARD:
            v = (hh - REST) * (1.0 - s)
        else:
            v = hh - th * s
    tl.store(v_end_ptr + lanes, v, mask=live)


def lif_backward_kernel(
    h_ptr, gs_ptr, x_ptr, beta_ptr, thr_ptr, v0_ptr, g_end_ptr, gx_ptr, acc_beta_ptr, acc_thr_ptr, g_v0_ptr,
    T, M, N,
    G: tl.constexpr, REST: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, DECAY_INPUT: tl.constexpr,
    HARD: tl.constexpr, DETACH: tl.constexpr, NEED_BETA: tl.constexpr, NEED_THR: tl.constexpr,
    HAS_V0: tl.constexpr, HAS_G_END: tl.constexpr, STAGES: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """The adjoint recurrence from ``t = T-1`` down to 0: ``grad_x`` per step, per-lane β and θ sums,
    and ``dL/dv0 = β H̄_0``."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = lanes < M
    neuron = lanes % N
    b = tl.load(beta_ptr + neuron, mask=live, other=0.0)
    th = tl.load(thr_ptr + neuron, mask=live, other=1.0)
    if HAS_G_END:  # dL/dV_{T-1} from outside (a next chunk)
        carry = tl.load(g_end_ptr + lanes, mask=live, other=0.0).to(b.dtype)
    else:
        carry = tl.full([BLOCK], 0.0, b.dtype)
    if HAS_V0:
        v_first = tl.load(v0_ptr + lanes, mask=live, other=0.0).to(b.dtype)
    else:
        v_first = tl.full([BLOCK], 0.0, b.dtype)
    a_beta = tl.full([BLOCK], 0.0, b.dtype)
    a_thr = tl.full([BLOCK], 0.0, b.dtype)
    hh = tl.load(h_ptr + tl.cast(T - 1, tl.int64) * M + lanes, mask=live, other=0.0)
    for step in tl.range(T, num_stages=STAGES):
        t = T - 1 - step
        at = tl.cast(t, tl.int64) * M + lanes
        s = tl.where(hh >= th, 1.0, 0.0).to(b.dtype)
        gs = tl.load(gs_ptr + at, mask=live, other=0.0).to(b.dtype)
        if not DETACH:  # the reset's own path: dV/dS = rest - H (hard) or -θ (soft)
            if HARD:
                gs = gs + carry * (REST - hh)
            else:
                gs = gs - carry * th
        g = G(hh - th, C1, C2, 1.0)
        if NEED_THR:
            if HARD:
                a_thr -= gs * g
            else:
                a_thr -= gs * g + carry * s
        if HARD:
            gh = carry * (1.0 - s) + gs * g
        else:
            gh = carry + gs * g
        if DECAY_INPUT:
            tl.store(gx_ptr + at, (gh * (1.0 - b)).to(gx_ptr.dtype.element_ty), mask=live)
        else:
            tl.store(gx_ptr + at, gh.to(gx_ptr.dtype.element_ty), mask=live)
        # H_{t-1} (the next step's H): one load per step, also for V_{t-1} = reset(H_{t-1})
        hp = tl.load(h_ptr + (at - M), mask=live & (lanes * 0 + t > 0), other=0.0)
        if NEED_BETA:
            sp = tl.where(hp >= th, 1.0, 0.0).to(b.dtype)
            if HARD:
                v_prev = (hp - REST) * (1.0 - sp)
            else:
                v_prev = hp - th * sp
            v_prev = tl.where(t > 0, v_prev, v_first)
            if DECAY_INPUT:
                a_beta += gh * (v_prev - tl.load(x_ptr + at, mask=live, other=0.0).to(b.dtype))
            else:
                a_beta += gh * v_prev
        carry = gh * b
        hh = hp
    if NEED_BETA:
        tl.store(acc_beta_ptr + lanes, a_beta, mask=live)
    if NEED_THR:
        tl.store(acc_thr_ptr + lanes, a_thr, mask=live)
    tl.store(g_v0_ptr + lanes, carry, mask=live)


def leaky_forward_kernel(
    x_ptr, beta_ptr, v0_ptr, v_ptr, T, M, N,
    DECAY_INPUT: tl.constexpr, HAS_V0: tl.constexpr, STAGES: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """``V_t = β V_{t-1} + c X_t`` for every step, from ``V_{-1} = v0`` (or 0)."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = lanes < M
    b = tl.load(beta_ptr + lanes % N, mask=live, other=0.0)
    if HAS_V0:
        v = tl.load(v0_ptr + lanes, mask=live, other=0.0).to(b.dtype)
    else:
        v = tl.full([BLOCK], 0.0, b.dtype)
    for t in tl.range(T, num_stages=STAGES):
        at = tl.cast(t, tl.int64) * M + lanes
        xt = tl.load(x_ptr + at, mask=live, other=0.0).to(b.dtype)
        if DECAY_INPUT:
            v = b * v + (1.0 - b) * xt
        else:
            v = b * v + xt
        tl.store(v_ptr + at, v, mask=live)


def leaky_backward_kernel(
    gv_ptr, v_ptr, x_ptr, beta_ptr, v0_ptr, gx_ptr, acc_beta_ptr, g_v0_ptr, T, M, N,
    DECAY_INPUT: tl.constexpr, NEED_BETA: tl.constexpr, HAS_V0: tl.constexpr, STAGES: tl.constexpr,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """``V̄_t = G_t + β V̄_{t+1}``; ``grad_x = c V̄``, β sums ``V̄_t (V_{t-1} - [decay_input] X_t)``, ``β V̄_0``."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = lanes < M
    b = tl.load(beta_ptr + lanes % N, mask=live, other=0.0)
    if HAS_V0:
        v_first = tl.load(v0_ptr + lanes, mask=live, other=0.0).to(b.dtype)
    else:
        v_first = tl.full([BLOCK], 0.0, b.dtype)
    carry = tl.full([BLOCK], 0.0, b.dtype)
    a_beta = tl.full([BLOCK], 0.0, b.dtype)
    for step in tl.range(T, num_stages=STAGES):
        t = T - 1 - step
        at = tl.cast(t, tl.int64) * M + lanes
        gv = tl.load(gv_ptr + at, mask=live, other=0.0).to(b.dtype) + carry
        if DECAY_INPUT:
            tl.store(gx_ptr + at, (gv * (1.0 - b)).to(gx_ptr.dtype.element_ty), mask=live)
        else:
            tl.store(gx_ptr + at, gv.to(gx_ptr.dtype.element_ty), mask=live)
        if NEED_BETA:
            v_prev = tl.where(t > 0, tl.load(v_ptr + (at - M), mask=live & (lanes * 0 + t > 0), other=0.0), v_first)
            if DECAY_INPUT:
                a_beta += gv * (v_prev - tl.load(x_ptr + at, mask=live, other=0.0).to(b.dtype))
            else:
                a_beta += gv * v_prev
        carry = gv * b
    if NEED_BETA:
        tl.store(acc_beta_ptr + lanes, a_beta, mask=live)
    tl.store(g_v0_ptr + lanes, carry, mask=live)
