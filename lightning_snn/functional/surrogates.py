r"""Surrogate gradients for the Heaviside spike function.

The forward pass is always the Heaviside step :math:`S = \Theta(u) = 1[u \ge 0]` (the SpikingJelly
convention); the backward pass replaces :math:`\delta(u)` by a smooth derivative :math:`g(u)`:

- ``atan`` (Fang et al. 2021, PLIF):      :math:`g(u) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha u)^2}`
  (equal to ``snntorch.surrogate.atan(alpha)`` and ``spikingjelly ... surrogate.ATan(alpha)``);
- ``fast_sigmoid`` (Zenke & Ganguli 2018): :math:`g(u) = \frac{1}{(\alpha |u| + 1)^2}`
  (equal to ``snntorch.surrogate.fast_sigmoid(slope=alpha)``);
- ``box`` (rectangular, Moro et al. 2024): :math:`g(u) = \frac{1}{\alpha} 1[|u| < \alpha/2]`.

Each is defined once, in ``SURROGATES``: a derivative ``g(u, c1, c2, one)`` written with plain
arithmetic and ``abs`` only, plus its constants ``(c1, c2)`` as a function of α. That one function is
evaluated on tensors by :meth:`Surrogate.derivative` (the autograd backward and the fused PyTorch
backward) and compiled by Numba into the fused CPU backward kernel (``lif_numba``). ``one`` is 1 in
the precision of the evaluation: a bare ``1`` would make Numba compute a float32 kernel in float64.
A new surrogate is one more entry, ``SURROGATES[name] = SurrogateDefinition(g, constants, alpha)``;
``Surrogate(name)`` and ``LIFConfig(surrogate=...)`` then use it on every path.

``Surrogate`` is a frozen, picklable spec (a name and α). Calling it applies the spike function with
autograd; ``derivative`` exposes :math:`g` as a pure function for fused kernels that write their own
backward. An unknown name raises ``ValueError`` wherever it is looked up (:func:`definition`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch


class SurrogateDefinition(NamedTuple):
    """One surrogate: ``derivative(u, c1, c2, one)`` and ``constants(alpha) -> (c1, c2)``."""

    derivative: Callable
    constants: Callable[[float], tuple[float, float]]
    default_alpha: float


def atan_derivative(u, c1, c2, one):
    r""":math:`g(u) = c_1 / (1 + c_2 u^2)` with :math:`c_1 = \alpha/2`, :math:`c_2 = (\frac{\pi}{2}\alpha)^2`."""
    return c1 / (one + c2 * u * u)


def fast_sigmoid_derivative(u, c1, c2, one):
    r""":math:`g(u) = 1 / (c_1 |u| + 1)^2` with :math:`c_1 = \alpha` (:math:`c_2` unused)."""
    d = c1 * abs(u) + one
    return one / (d * d)


def box_derivative(u, c1, c2, one):
    r""":math:`g(u) = c_1 1[|u| < c_2]` with :math:`c_1 = 1/\alpha`, :math:`c_2 = \alpha/2`."""
    return c1 * (abs(u) < c2)


SURROGATES: dict[str, SurrogateDefinition] = {
    "atan": SurrogateDefinition(atan_derivative, lambda a: (a / 2, (math.pi / 2 * a) ** 2), 2.0),
    "fast_sigmoid": SurrogateDefinition(fast_sigmoid_derivative, lambda a: (a, 0.0), 25.0),
    "box": SurrogateDefinition(box_derivative, lambda a: (1.0 / a, a / 2), 1.0),
}


def definition(name: str) -> SurrogateDefinition:
    """The registry entry for ``name``; ``ValueError`` naming the allowed ones if there is none."""
    try:
        return SURROGATES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown surrogate {name!r}; expected one of {sorted(SURROGATES)}.") from None


def heaviside(u: torch.Tensor) -> torch.Tensor:
    """The spike: 1 where ``u >= 0``, else 0, in ``u``'s dtype; NaN where ``u`` is NaN or ±inf.

    The NaN is the non-finite rule shared by every LIF path (:mod:`lightning_snn.functional.lif`):
    a non-finite membrane, input, τ or θ gives a NaN spike instead of a silent 0 or 1 (``0·u``)."""
    return (u >= 0).to(u.dtype) + u * 0


def strict_heaviside(u: torch.Tensor) -> torch.Tensor:
    """The spike with a strict comparison, 1 where ``u > 0`` (the hSNN and Mészáros codes' ``V > θ``);
    NaN where ``u`` is NaN or ±inf, as :func:`heaviside`."""
    return (u > 0).to(u.dtype) + u * 0


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, surrogate: Surrogate, strict: bool = False) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        return strict_heaviside(u) if strict else heaviside(u)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.derivative(u), None, None


@dataclass(frozen=True)
class Surrogate:
    """Heaviside forward, surrogate derivative ``g(u)`` backward (see the module docstring)."""

    name: str = "atan"
    alpha: float | None = None

    def __post_init__(self) -> None:
        spec = definition(self.name)
        if self.alpha is None:
            object.__setattr__(self, "alpha", spec.default_alpha)
        if not self.alpha > 0:
            raise ValueError(f"Surrogate alpha must be > 0, got {self.alpha} for {self.name!r}.")

    def constants(self) -> tuple[float, float]:
        """``(c1, c2)`` of the derivative (raises ``ValueError`` for an unknown name)."""
        return definition(self.name).constants(float(self.alpha))

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        definition(self.name)  # an unknown name raises here, not only in the backward pass
        return _SurrogateSpike.apply(u, self, False)

    def strict(self, u: torch.Tensor) -> torch.Tensor:
        """Like calling the surrogate, with the strict spike ``[u > 0]`` forward (:func:`strict_heaviside`)."""
        definition(self.name)
        return _SurrogateSpike.apply(u, self, True)

    def spike(self, u: torch.Tensor) -> torch.Tensor:
        """The forward spike function without autograd (for fused kernels)."""
        return heaviside(u)

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`g(u)` in ``u``'s dtype: the registry's definition on tensors (constants as 0-dim
        CPU tensors of that dtype, which keep the precision and are kernel arguments on CUDA too)."""
        c1, c2 = self.constants()
        return definition(self.name).derivative(u, *(torch.tensor(c, dtype=u.dtype) for c in (c1, c2, 1.0)))
