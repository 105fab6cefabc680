r"""``HSNNLIF``: the hidden neuron of the hSNN code (Moro, Aceituno, Kriener, Payvand 2024, paper A).

For time-major input current :math:`I` ``(T, B, N)``, as ``lif_step`` in ``EIS-Hub/hSNN`` ``models.py:55-68``:

.. math::
    V[t] = \bar\alpha\,V[t-1] + I[t] - \theta\,S[t-1], \qquad S[t] = \Theta(V[t] - \theta),
    \qquad \bar\alpha = \mathrm{clip}(\alpha, 10^{-5}, \alpha_{max})

a *subtractive* reset applied one step after the spike, with no input scaling :math:`(1-\alpha)` and the
reset path kept in the gradient (``detach_reset=False``, their choice; ``True`` stops it, for paper E's
comparison). :math:`\Theta` is a strict ``>`` with the box surrogate :math:`1[|V - \theta| < 1/2]`
(``models.py:31-44``).

The decay :math:`\alpha` itself is the parameter (``training.py:232-236``), declared with the role ``"tau"``:
it starts at :math:`\mathrm{clip}(e^{-dt/\tau}, 0.1, 0.99)` (``utils_initialization.py:156-157``) and, when
learned, its gradient is multiplied by ``alpha_grad_scale`` (0.1 in their code) through an identity whose
backward scales, so the optimiser sees exactly the scaled gradient (penalty gradients included, as theirs).
:meth:`HSNNLIF.penalty` adds their regularisers on :math:`\alpha` (``training.py:153-154``), per layer:

.. math::
    0.1\,\lVert \mathrm{relu}(\alpha - 0.95) \rVert_2 + \lambda_{sd}\,\lVert \alpha - \bar{\alpha}_{layer} \rVert_2 .

(Their norm runs over all layers at once; summing per-layer norms is the closest the per-module penalty
contract of ``lightning_snn.penalties`` allows; see ``docs/fidelity/hsnn.md``.) ``spike_dropout`` drops
output spikes independently per element and step, after the scan, so the reset uses the undropped spikes
(``training.py:86-89``, ``models.py:205-214``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lightning_snn import validation
from lightning_snn.call_statistics import spike_rate
from lightning_snn.functional.surrogates import Surrogate

#: ``lif_step``'s forward clip of α (``models.py:61``) and the init clip (``utils_initialization.py:157``).
ALPHA_FLOOR, ALPHA_CEIL = 1e-5, 0.98
INIT_ALPHA_BOUNDS = (0.1, 0.99)


class ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def alpha_from_tau(tau: float | Sequence[float] | torch.Tensor, n_neurons: int, dt: float) -> torch.Tensor:
    """``clip(exp(-dt/τ), 0.1, 0.99)`` per neuron ``(n_neurons,)``; τ and dt in the same unit."""
    tau = torch.as_tensor(tau, dtype=torch.get_default_dtype()).detach().clone()
    if tau.dim() == 0:
        tau = tau.expand(n_neurons)
    if tau.shape != (n_neurons,) or not bool(torch.isfinite(tau).all()) or not bool((tau > 0).all()):
        raise ValueError(
            f"HSNNLIF: tau must be a positive finite number or {n_neurons} of them (one per neuron); got "
            f"{tau.tolist() if tau.numel() <= 8 else tuple(tau.shape)}. Give τ in the unit of dt (steps by default)."
        )
    return torch.exp(-dt / tau).clamp(*INIT_ALPHA_BOUNDS)


class HSNNLIF(nn.Module):
    """The hSNN hidden neuron with a learned decay α (see the module docstring for the equations)."""

    parameter_roles = {"alpha": "tau"}

    def __init__(
        self,
        n_neurons: int,
        tau: float | Sequence[float] | torch.Tensor = 30.0,
        dt: float = 1.0,
        learn_alpha: bool = False,
        alpha_grad_scale: float = 0.1,
        alpha_max: float = ALPHA_CEIL,
        threshold: float = 1.0,
        detach_reset: bool = False,
        surrogate: str = "box",
        surrogate_alpha: float | None = None,
        spike_dropout: float = 0.0,
        alpha_high: float = 0.95,
        alpha_high_weight: float = 0.1,
        alpha_spread_weight: float = 1e-2,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.n_neurons = validation.check_int(n_neurons, "n_neurons", where)
        for name, value in (("dt", dt), ("threshold", threshold)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}.")
        if not (isinstance(alpha_max, (int, float)) and ALPHA_FLOOR < alpha_max <= 1):
            raise ValueError(f"{where}: alpha_max must be in ({ALPHA_FLOOR}, 1], got {alpha_max!r} (theirs: 0.98).")
        if not (isinstance(spike_dropout, (int, float)) and 0 <= spike_dropout < 1):
            raise ValueError(f"{where}: spike_dropout must be in [0, 1), got {spike_dropout!r} (theirs: 0.1).")
        for name, value in (
            ("alpha_grad_scale", alpha_grad_scale),
            ("alpha_high_weight", alpha_high_weight),
            ("alpha_spread_weight", alpha_spread_weight),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}.")
        alpha = alpha_from_tau(tau, self.n_neurons, float(dt))
        if learn_alpha:
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("alpha", alpha)
        self.learn_alpha, self.dt, self.alpha_max = bool(learn_alpha), float(dt), float(alpha_max)
        self.alpha_grad_scale, self.threshold = float(alpha_grad_scale), float(threshold)
        self.detach_reset, self.spike_dropout = bool(detach_reset), float(spike_dropout)
        self.alpha_high, self.alpha_high_weight = float(alpha_high), float(alpha_high_weight)
        self.alpha_spread_weight = float(alpha_spread_weight)
        self.surrogate = Surrogate(surrogate, surrogate_alpha)

    def scaled_alpha(self) -> torch.Tensor:
        """α as the forward pass and the penalties see it: its gradient is scaled by ``alpha_grad_scale``."""
        if not self.learn_alpha or self.alpha_grad_scale == 1.0:
            return self.alpha
        return ScaleGradient.apply(self.alpha, self.alpha_grad_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``(T, B, N)`` for input current ``x`` ``(T, B, N)``, from rest."""
        validation.check_layer_input(x, self.n_neurons, type(self).__name__)
        alpha = self.scaled_alpha().clamp(ALPHA_FLOOR, self.alpha_max).to(x.dtype)
        v = torch.zeros_like(x[0])
        reset = torch.zeros_like(x[0])
        spikes = []
        for x_t in x.unbind(0):
            v = alpha * v + x_t - self.threshold * reset
            s = self.surrogate.strict(v - self.threshold)
            reset = s.detach() if self.detach_reset else s
            spikes.append(s)
        out = torch.stack(spikes)
        if self.training and self.spike_dropout > 0:
            out = nn.functional.dropout(out, self.spike_dropout)
        return out

    def penalty(self) -> torch.Tensor | None:
        """Their α regularisers for this layer (``None`` when α is fixed: they cannot change anything)."""
        if not self.learn_alpha:
            return None
        alpha = self.scaled_alpha()
        high = torch.relu(alpha - self.alpha_high).square().sum()
        spread = (alpha - alpha.mean()).square().sum()
        # sqrt with a zero-safe gradient: d sqrt(z)/dz at z = 0 is taken as 0 (the relu is 0 there anyway).
        return self.alpha_high_weight * _safe_sqrt(high) + self.alpha_spread_weight * _safe_sqrt(spread)

    @property
    def tau(self) -> torch.Tensor:
        r"""The time constant :math:`\tau = -dt / \ln \alpha` per neuron (detached), in the unit of dt."""
        alpha = self.alpha.detach().clamp(ALPHA_FLOOR, self.alpha_max)
        return -self.dt / torch.log(alpha)

    def temporal_statistics(self) -> dict[str, torch.Tensor]:
        """Parameter statistics for :class:`~lightning_snn.callbacks.TemporalStatsLogger`: τ."""
        return {"tau": self.tau.flatten()}

    call_statistics = staticmethod(spike_rate)

    def extra_repr(self) -> str:
        return (
            f"{self.n_neurons}, learn_alpha={self.learn_alpha}, detach_reset={self.detach_reset}, "
            f"surrogate={self.surrogate.name}, spike_dropout={self.spike_dropout}"
        )


def _safe_sqrt(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, z.clamp_min(torch.finfo(z.dtype).tiny).sqrt(), torch.zeros_like(z))
