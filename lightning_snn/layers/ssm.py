r"""``S4DLayer``: a diagonal state-space layer over ``(T, B, H)``, parallel (FFT) or sequential.

Each of the ``H`` channels is an independent S4D system with ``d_state/2`` complex modes
(:mod:`lightning_snn.functional.ssm`; Gu et al. 2022, as used in P-SpikeSSM, Bal & Sengupta 2025):

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
