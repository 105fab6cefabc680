r"""State-space layers over ``(T, B, H)``: ``S4DLayer`` (diagonal) and ``S4DPLRLayer`` (S4, DPLR).

``S4DLayer``: each of the ``H`` channels is an independent S4D system with ``d_state/2`` complex modes
(:mod:`lightning_snn.functional.ssm`; Gu et al., NeurIPS 2022). P-SpikeSSM's authors use the S4 DPLR
kernel instead (:class:`S4DPLRLayer`, :mod:`lightning_snn.functional.s4_dplr`); S4D is this package's
lighter alternative, not the paper's kernel.

.. math::
    y = K * u + D \odot u, \qquad K_l = 2\,\mathrm{Re}\sum_n C_n \frac{e^{\Delta A_n} - 1}{A_n} e^{l \Delta A_n}.

Training uses the causal FFT convolution (``mode="fft"``); ``mode="recurrence"`` and :meth:`S4DLayer.step`
run the same parameters one step at a time (reference and streaming inference).

The temporal parameters (``log_dt`` raw, ``log_a_real``, ``a_imag``) live in the submodule
``timescales`` (:class:`SSMTimescales`), which declares them with the role ``"tau"``
(:mod:`lightning_snn.roles`), so :class:`~lightning_snn.lit.SpikingClassifier` puts them in its τ
parameter group (S4 trains them with a smaller learning rate and no weight decay). Complex ``C`` is
stored as its real view ``(H, N/2, 2)`` so state dicts and optimisers see real tensors. Checkpoints
of version 0.1, where the submodule was called ``tau``, load (the keys are migrated).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.functional.s4_dplr import (
    c_from_c_tilde,
    c_tilde_from_c,
    dplr_dense,
    dplr_kernel,
    dt_from_inverse_softplus,
    hippo_legs_nplr,
    inverse_softplus,
    two_sided_fft_conv,
)
from lightning_snn.functional.ssm import (
    causal_fft_conv,
    check_d_state,
    check_dt_bounds,
    dt_from_raw,
    initial_state,
    log_dt_uniform,
    raw_from_dt,
    s4d_a_init,
    s4d_kernel,
    s4d_recurrence,
    s4d_step,
    zoh_discretize,
)

MODES = ("fft", "recurrence")


class SSMTimescales(nn.Module):
    r"""The learnable time scales of S4D: :math:`A = -e^{a_{re}} + i a_{im}` and the bounded step Δ."""

    parameter_roles = {"log_dt_raw": "tau", "log_a_real": "tau", "a_imag": "tau"}

    def __init__(self, d_model: int, d_state: int, init: str, dt_min: float, dt_max: float, learn_a: bool) -> None:
        super().__init__()
        check_dt_bounds(dt_min, dt_max)
        self.dt_min, self.dt_max = float(dt_min), float(dt_max)
        log_a_real, a_imag = s4d_a_init(d_model, d_state, init)
        self.log_dt_raw = nn.Parameter(raw_from_dt(log_dt_uniform(d_model, dt_min, dt_max), dt_min, dt_max))
        if learn_a:
            self.log_a_real, self.a_imag = nn.Parameter(log_a_real), nn.Parameter(a_imag)
        else:
            self.register_buffer("log_a_real", log_a_real)
            self.register_buffer("a_imag", a_imag)

    def dt(self) -> torch.Tensor:
        """Step Δ per channel ``(H,)``, inside ``(dt_min, dt_max)``."""
        return dt_from_raw(self.log_dt_raw, self.dt_min, self.dt_max)

    def dt_a(self) -> torch.Tensor:
        """ΔA, complex ``(H, N/2)``."""
        return torch.complex(-torch.exp(self.log_a_real), self.a_imag) * self.dt()[:, None]

    def steps_constant(self) -> torch.Tensor:
        r"""Decay time of every mode in steps, :math:`1 / (\Delta\, e^{a_{re}})`, flattened ``(H·N/2,)``."""
        return (1.0 / (self.dt()[:, None] * torch.exp(self.log_a_real))).flatten()


class S4DLayer(nn.Module):
    """S4D convolution layer (see the module docstring)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        learn_a: bool = True,
        mode: str = "fft",
    ) -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "S4DLayer")
        if mode not in MODES:
            raise ValueError(f"S4DLayer: unknown mode {mode!r}; expected one of {MODES}.")
        modes = check_d_state(d_state)
        self.d_model, self.d_state, self.mode = d_model, d_state, mode
        self.timescales = SSMTimescales(d_model, d_state, init, dt_min, dt_max, learn_a)
        # complex normal with E|c|^2 = 1/2 (torch.randn complex already has E|z|^2 = 1; S4D uses 1)
        c = torch.randn(d_model, modes, dtype=torch.complex64) * (0.5**0.5)
        self.C = nn.Parameter(torch.view_as_real(c).to(torch.get_default_dtype()).clone())
        self.D = nn.Parameter(torch.randn(d_model))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for key in [k for k in state_dict if k.startswith(f"{prefix}tau.")]:  # version 0.1 layout
            state_dict[f"{prefix}timescales.{key[len(prefix) + 4 :]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ΔA, A_bar, C_bar)``, complex ``(H, N/2)``."""
        a_bar, c_bar = zoh_discretize(self.timescales.log_a_real, self.timescales.a_imag, self.timescales.dt(), self.C)
        return self.timescales.dt_a(), a_bar, c_bar

    def kernel(self, steps: int) -> torch.Tensor:
        """Convolution kernel ``(H, steps)``."""
        dt_a, _, c_bar = self.discretize()
        return s4d_kernel(dt_a, c_bar, steps)

    def forward(self, u: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """``(T, B, H)`` → ``(T, B, H)``; ``mode`` overrides the layer's default path."""
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(u, state))
        validation.check_layer_input(u, self.d_model, type(self).__name__)
        u = validation.match_dtype(u, self.D.dtype)
        mode = mode or self.mode
        if mode == "fft":  # the skip term D·u is folded into the kernel at lag 0: K_0 + D
            kernel = self.kernel(u.shape[0])
            return causal_fft_conv(u, torch.cat([kernel[:, :1] + self.D[:, None], kernel[:, 1:]], dim=1))
        if mode == "recurrence":
            _, a_bar, c_bar = self.discretize()
            y, _ = s4d_recurrence(u, a_bar, c_bar)
            return y + self.D * u
        raise ValueError(f"S4DLayer: unknown mode {mode!r}; expected one of {MODES}.")

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero streaming state, complex ``(B, H, d_state/2)``."""
        return initial_state(batch, self.discretize()[1])

    def forward_with_state(
        self, u: torch.Tensor, state: stream.SSMState | None = None
    ) -> tuple[torch.Tensor, stream.SSMState]:
        """``(y (T, B, H), SSMState)``: the recurrence (the sequential form of the FFT convolution) from
        the complex state ``state.x`` ``(B, H, d_state/2)`` (``None``: zero). Chunks chained through the
        state give one pass exactly; it equals the FFT path up to the FFT's rounding."""
        validation.check_layer_input(u, self.d_model, type(self).__name__)
        u = validation.match_dtype(u, self.D.dtype)
        _, a_bar, c_bar = self.discretize()
        y, x = s4d_recurrence(u, a_bar, c_bar, None if state is None else state.x)
        return y + self.D * u, stream.SSMState(x)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming inference: one input ``(B, H)`` → ``(y_t (B, H), new state)``."""
        if u_t.dim() != 2 or u_t.shape[-1] != self.d_model:
            raise ValueError(f"S4DLayer.step expects one time step (B, {self.d_model}); got {tuple(u_t.shape)}.")
        _, a_bar, c_bar = self.discretize()
        if state is None:
            state = initial_state(u_t.shape[0], a_bar)
        y_t, state = s4d_step(u_t, state, a_bar, c_bar)
        return y_t.to(u_t.dtype) + self.D * u_t, state

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """``ssm_dt`` per channel and ``tau``: the decay time (in steps) of every mode."""
        with torch.no_grad():
            return {"ssm_dt": self.timescales.dt(), "tau": self.timescales.steps_constant()}


class DPLRTimescales(nn.Module):
    r"""The S4 parameters trained with S4's own optimiser settings (lr 0.001, no weight decay; role ``"tau"``).

    :math:`\Lambda = -e^{a_{re}} + i a_{im}`, the rank-1 term :math:`P`, the input vector :math:`B`, all shared
    by the ``H`` channels (``n_ssm = 1``), and :math:`\Delta = \mathrm{softplus}(w)` per channel (S4's
    ``dt_transform: softplus``, initialised log-uniform in ``[dt_min, dt_max]``).
    """

    parameter_roles = {"inv_dt": "tau", "log_a_real": "tau", "a_imag": "tau", "P": "tau", "B": "tau"}

    def __init__(self, d_model: int, d_state: int, dt_min: float, dt_max: float) -> None:
        super().__init__()
        lam, p, b = hippo_legs_nplr(d_state)
        self.inv_dt = nn.Parameter(inverse_softplus(log_dt_uniform(d_model, dt_min, dt_max)))
        self.log_a_real = nn.Parameter(torch.log(-lam.real))
        self.a_imag = nn.Parameter(lam.imag.clone())
        self.P = nn.Parameter(torch.view_as_real(p).clone())
        self.B = nn.Parameter(torch.view_as_real(b).clone())

    def dt(self) -> torch.Tensor:
        """Step Δ per channel ``(H,)``."""
        return dt_from_inverse_softplus(self.inv_dt)

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dt (H,), Lambda, P, B)``, the last three complex ``(N/2,)``."""
        lam = torch.complex(-torch.exp(self.log_a_real), self.a_imag)
        return self.dt(), lam, torch.view_as_complex(self.P), torch.view_as_complex(self.B)

    def steps_constant(self) -> torch.Tensor:
        r"""Decay time in steps of every diagonal mode, :math:`1 / (\Delta\, e^{a_{re}})`, ``(H·N/2,)``."""
        return (1.0 / (self.dt()[:, None] * torch.exp(self.log_a_real)[None, :])).flatten()


class S4DPLRLayer(nn.Module):
    r"""S4 (DPLR, HiPPO-LegS, learned :math:`B`, ``n_ssm = 1``), the kernel of the P-SpikeSSM authors.

    :math:`y = K * u + D \odot u` with :math:`K` from :func:`~lightning_snn.functional.s4_dplr.dplr_kernel`
    (Gu et al., ICLR 2022; authors' ``kernels/ssm.py`` ``SSMKernelDPLR``). The learned output vector is
    :math:`\tilde C = C(I - \bar A^{L})` for ``l_max = L`` (as in S4, set from a random complex normal
    :math:`C` at construction); sequences may be shorter than ``l_max`` (the kernel is truncated), not
    longer. ``two_sided=True`` is S4's ``bidirectional`` layer: a second :math:`\tilde C` gives a backward
    kernel, :math:`y_t = \sum_l K^{\rightarrow}_l u_{t-l} + \sum_m K^{\leftarrow}_m u_{t+1+m} + D u_t`
    (:func:`~lightning_snn.functional.s4_dplr.two_sided_fft_conv`): not causal, so no streaming.
    ``mode="recurrence"``, :meth:`forward_with_state` and :meth:`step` run the dense bilinear recurrence
    :math:`x_t = \bar A x_{t-1} + \bar B u_t`, :math:`y_t = \mathrm{Re}(C x_t) + D u_t` (causal only).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int = 1024,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        two_sided: bool = False,
        mode: str = "fft",
    ) -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "S4DPLRLayer")
        l_max = validation.check_int(l_max, "l_max", "S4DPLRLayer")
        if mode not in MODES:
            raise ValueError(f"S4DPLRLayer: unknown mode {mode!r}; expected one of {MODES}.")
        modes = check_d_state(d_state)
        self.d_model, self.d_state, self.l_max, self.two_sided, self.mode = d_model, d_state, l_max, two_sided, mode
        self.timescales = DPLRTimescales(d_model, d_state, dt_min, dt_max)
        channels = 2 if two_sided else 1
        c = torch.randn(channels, d_model, modes, dtype=torch.complex64)  # E|c|^2 = 1, as S4's randn(cfloat)
        with torch.no_grad():
            a_bar, _ = self.dense()
            c_tilde = c_tilde_from_c(c, a_bar, l_max)
        self.C = nn.Parameter(torch.view_as_real(c_tilde).to(torch.get_default_dtype()).clone())
        self.D = nn.Parameter(torch.randn(d_model))

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense bilinear ``(A_bar (H, N, N), B_bar (H, N))`` (complex, conjugate-doubled)."""
        dt, lam, p, b = self.timescales.params()
        return dplr_dense(dt, lam, p, b)

    def kernel(self, steps: int) -> torch.Tensor:
        """Kernel ``(channels, H, steps)``: computed at ``l_max`` once per call, then truncated."""
        if steps > self.l_max:
            raise ValueError(
                f"S4DPLRLayer: the sequence has {steps} steps but l_max={self.l_max}; the learned C~ is tied to "
                f"l_max. Build the layer with l_max >= {steps} (e.g. the dataset's sequence length)."
            )
        dt, lam, p, b = self.timescales.params()
        return dplr_kernel(dt, lam, p, b, torch.view_as_complex(self.C.contiguous()), self.l_max)[..., :steps]

    def forward(self, u: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """``(T, B, H)`` → ``(T, B, H)``; ``mode`` overrides the layer's default path."""
        ctx = stream.active()
        if ctx is not None:
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(u, state))
        validation.check_layer_input(u, self.d_model, type(self).__name__)
        u = validation.match_dtype(u, self.D.dtype)
        mode = mode or self.mode
        if mode == "recurrence":
            return self.forward_with_state(u)[0]
        if mode != "fft":
            raise ValueError(f"S4DPLRLayer: unknown mode {mode!r}; expected one of {MODES}.")
        k = self.kernel(u.shape[0])
        if self.two_sided:
            return two_sided_fft_conv(u, k[0], k[1]) + self.D * u
        return causal_fft_conv(u, torch.cat([k[0, :, :1] + self.D[:, None], k[0, :, 1:]], dim=1))

    def _recurrence_matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.two_sided:
            raise ValueError(
                "S4DPLRLayer(two_sided=True) reads future inputs (a two-sided kernel), so it has no recurrence "
                "or streaming form. Use two_sided=False for streaming."
            )
        a_bar, b_bar = self.dense()
        c_full = c_from_c_tilde(torch.view_as_complex(self.C.contiguous())[0], a_bar, self.l_max)
        return a_bar, b_bar, c_full

    def forward_with_state(
        self, u: torch.Tensor, state: stream.SSMState | None = None
    ) -> tuple[torch.Tensor, stream.SSMState]:
        """``(y (T, B, H), SSMState)`` by the dense recurrence from ``state.x`` ``(B, H, d_state)`` (None: zero)."""
        validation.check_layer_input(u, self.d_model, type(self).__name__)
        u = validation.match_dtype(u, self.D.dtype)
        a_bar, b_bar, c_full = self._recurrence_matrices()
        x = state.x if state is not None else torch.zeros(u.shape[1], *b_bar.shape, dtype=b_bar.dtype)
        outputs = []
        for u_t in u:
            x = torch.einsum("hmn,bhn->bhm", a_bar, x) + b_bar * u_t[..., None]
            outputs.append((c_full * x).sum(-1).real)
        return torch.stack(outputs).to(u.dtype) + self.D * u, stream.SSMState(x)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming inference: one input ``(B, H)`` → ``(y_t (B, H), new state (B, H, d_state))``."""
        if u_t.dim() != 2 or u_t.shape[-1] != self.d_model:
            raise ValueError(f"S4DPLRLayer.step expects one time step (B, {self.d_model}); got {tuple(u_t.shape)}.")
        y, new = self.forward_with_state(u_t[None], None if state is None else stream.SSMState(state))
        return y[0], new.x

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """``ssm_dt`` per channel and ``tau``: the decay time (in steps) of every diagonal mode."""
        with torch.no_grad():
            return {"ssm_dt": self.timescales.dt(), "tau": self.timescales.steps_constant()}
