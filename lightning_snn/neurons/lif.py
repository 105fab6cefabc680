r"""``LearnableLIF``: a multi-step LIF layer with a learnable membrane time constant.

Implements, for time-major input :math:`X` of shape ``(T, B, N)``,

.. math::
    H[t] = V_r + \beta(\tau)\,(V[t-1] - V_r) + c\,X[t], \quad S[t] = \Theta(H[t] - \theta), \quad
    V[t] = \mathrm{reset}(H[t], S[t])

(PLIF, Fang et al. 2021, with the reset choices of :mod:`lightning_snn.functional.lif`). τ is per layer
or per neuron, learnable or fixed, and parametrised by :class:`~lightning_snn.neurons.time_constant.TimeConstant`.
The engine is chosen by ``backend``: ``"native"`` (ours), ``"snntorch"`` (``snntorch.Leaky``) or
``"spikingjelly"`` (``ParametricLIFNode`` / ``LIFNode``); all compute the same spikes and gradients.
Every call starts from the rest potential: no state is kept between calls; streaming passes the
membrane explicitly (:meth:`LearnableLIF.forward_with_state`, :class:`~lightning_snn.state.LIFState`).
A NaN or ±inf input, a NaN τ or a non-finite θ gives NaN spikes on every backend path (the non-finite rule of
:mod:`lightning_snn.functional.lif`, no host sync); under :func:`lightning_snn.validation.nan_checks`
the layer raises a ``ValueError`` naming itself instead. The module declares its
temporal parameters (:mod:`lightning_snn.roles`): τ through its :class:`TimeConstant`, the threshold
as ``"threshold"``. Its per-call statistic, the spike rate, is gathered by
:class:`~lightning_snn.callbacks.TemporalStatsLogger` through :meth:`LearnableLIF.call_statistics`.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.call_statistics import spike_rate
from lightning_snn.functional.lif import RESETS, LIFConfig
from lightning_snn.functional.lif_scan import leaky_integrate_fused, lif_fused_state
from lightning_snn.functional.surrogates import Surrogate
from lightning_snn.neurons.backends import BACKENDS, check_snntorch_support
from lightning_snn.neurons.time_constant import TauInit, TimeConstant


class LearnableLIF(nn.Module):
    """Multi-step LIF with learnable τ (see the module docstring for the equations)."""

    parameter_roles = {"threshold": "threshold"}

    def __init__(
        self,
        n_neurons: int,
        tau: TauInit = 2.0,
        learn_tau: bool = True,
        per_neuron: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        tau_min: float | None = None,
        tau_max: float | None = None,
        threshold: float = 1.0,
        learn_threshold: bool = False,
        reset: str = "hard",
        v_reset: float = 0.0,
        detach_reset: bool = True,
        decay_input: bool = True,
        surrogate: str = "atan",
        surrogate_alpha: float | None = None,
        backend: str = "native",
    ) -> None:
        super().__init__()
        where = type(self).__name__
        n_neurons = validation.check_int(n_neurons, "n_neurons", where)
        if backend not in BACKENDS:
            raise ValueError(f"{where}: Unknown backend {backend!r}; expected one of {sorted(BACKENDS)}.")
        if reset not in RESETS:
            raise ValueError(f"{where}: Unknown reset {reset!r}; expected one of {RESETS}.")
        threshold = validation.check_finite_number(threshold, "threshold", where)
        v_reset = validation.check_finite_number(v_reset, "v_reset", where)
        if not threshold > (v_reset if reset == "hard" else 0.0):
            raise ValueError(
                f"{where}: threshold must be above the rest potential "
                f"({v_reset if reset == 'hard' else 0.0}), got threshold={threshold}."
            )
        self.n_neurons, self.backend = n_neurons, backend
        self.tau = TimeConstant(n_neurons, tau, learn_tau, per_neuron, parametrisation, dt, tau_min, tau_max)
        self.cfg = LIFConfig(reset, float(v_reset), decay_input, detach_reset, Surrogate(surrogate, surrogate_alpha))
        if backend == "snntorch":
            check_snntorch_support(self.cfg, learn_threshold)
        if backend == "spikingjelly" and learn_threshold:
            raise ValueError("backend='spikingjelly' needs a fixed threshold; use backend='native'.")
        thr = torch.tensor(float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(thr)
        else:
            self.register_buffer("threshold", thr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``(T, B, N)`` for input current ``x`` ``(T, B, N)``."""
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state))
        return BACKENDS[self.backend](x, self._decay(x), self.threshold, self.cfg)

    def _decay(self, x: torch.Tensor) -> torch.Tensor:
        where = type(self).__name__
        validation.check_layer_input(x, self.n_neurons, where)
        decay = self.tau.decay()
        if validation.nan_checks_enabled():  # debug mode: a host sync per call (see the non-finite rule)
            validation.check_nan(decay.detach(), where, "membrane decay β (from τ)")
            validation.check_nan(self.threshold.detach(), where, "threshold θ")
        return decay

    def initial_state(self, batch: int, dtype: torch.dtype | None = None, device=None) -> stream.LIFState:
        """The rest state: ``V - V_r = 0`` ``(B, N)``."""
        dtype = dtype or self.threshold.dtype
        return stream.LIFState(torch.zeros(batch, self.n_neurons, dtype=dtype, device=device or self.threshold.device))

    def forward_with_state(
        self, x: torch.Tensor, state: stream.LIFState | None = None
    ) -> tuple[torch.Tensor, stream.LIFState]:
        """``(spikes (T, B, N), LIFState)`` starting from ``state`` (``None``: rest). Chunks chained through
        the state give the spikes of one pass; gradients flow through it (native backend only)."""
        if self.backend != "native":
            raise ValueError(
                f"{type(self).__name__}: streaming with a state needs backend='native' (got {self.backend!r})."
            )
        v0 = None if state is None else state.v
        spikes, v = lif_fused_state(x, self._decay(x), self.threshold, self.cfg, v0)
        return spikes, stream.LIFState(v)

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """Parameter statistics for :class:`~lightning_snn.callbacks.TemporalStatsLogger`: τ."""
        return {"tau": self.tau.value.flatten()}

    call_statistics = staticmethod(spike_rate)

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"{self.n_neurons}, reset={c.reset}, detach_reset={c.detach_reset}, "
            f"decay_input={c.decay_input}, surrogate={c.surrogate.name}, backend={self.backend}"
        )


class LeakyReadout(nn.Module):
    r"""Non-spiking leaky-integrator output layer: :math:`V[t] = \beta(\tau) V[t-1] + c X[t]`.

    The output membrane ``(T, B, N)`` is the network's readout (Moro et al. 2024; Mészáros et al. 2024).
    ``tau_min`` / ``tau_max`` bound τ as in :class:`~lightning_snn.neurons.time_constant.TimeConstant`
    (``None``: the parametrisation's defaults), e.g. ``tau_min=1.001`` admits DCLS's τ = 1.005 steps.
    """

    def __init__(
        self,
        n_neurons: int,
        tau: TauInit = 2.0,
        learn_tau: bool = False,
        parametrisation: str = "plif",
        dt: float = 1.0,
        decay_input: bool = False,
        tau_min: float | None = None,
        tau_max: float | None = None,
    ) -> None:
        super().__init__()
        n_neurons = validation.check_int(n_neurons, "n_neurons", type(self).__name__)
        self.n_neurons, self.decay_input = n_neurons, decay_input
        self.tau = TimeConstant(n_neurons, tau, learn_tau, False, parametrisation, dt, tau_min, tau_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state))
        return leaky_integrate_fused(x, self._decay(x), self.decay_input)

    def _decay(self, x: torch.Tensor) -> torch.Tensor:
        where = type(self).__name__
        validation.check_layer_input(x, self.n_neurons, where)
        decay = self.tau.decay()
        if validation.nan_checks_enabled():
            validation.check_nan(decay.detach(), where, "membrane decay β (from τ)")
        return decay

    def initial_state(self, batch: int, dtype: torch.dtype | None = None, device=None) -> stream.ReadoutState:
        """The rest state: ``V = 0`` ``(B, N)``."""
        return stream.ReadoutState(torch.zeros(batch, self.n_neurons, dtype=dtype, device=device))

    def forward_with_state(
        self, x: torch.Tensor, state: stream.ReadoutState | None = None
    ) -> tuple[torch.Tensor, stream.ReadoutState]:
        """``(membrane (T, B, N), ReadoutState)`` from ``state`` (``None``: 0); the state is the last row."""
        v0 = None if state is None else state.v
        out = leaky_integrate_fused(x, self._decay(x), self.decay_input, v0)
        return out, stream.ReadoutState(out[-1])

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        return {"tau": self.tau.value.flatten()}
