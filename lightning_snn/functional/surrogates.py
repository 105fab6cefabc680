r"""Surrogate gradients for the Heaviside spike function.

The forward pass is always the Heaviside step :math:`S = \Theta(u) = 1[u \ge 0]` (the SpikingJelly
convention); the backward pass replaces :math:`\delta(u)` by a smooth derivative :math:`g(u)`:

- ``atan`` (Fang et al. 2021, PLIF):      :math:`g(u) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha u)^2}`
  (equal to ``snntorch.surrogate.atan(alpha)`` and ``spikingjelly ... surrogate.ATan(alpha)``);
- ``fast_sigmoid`` (Zenke & Ganguli 2018): :math:`g(u) = \frac{1}{(\alpha |u| + 1)^2}`
  (equal to ``snntorch.surrogate.fast_sigmoid(slope=alpha)``);
- ``box`` (rectangular, Moro et al. 2024): :math:`g(u) = \frac{1}{\alpha} 1[|u| < \alpha/2]`.

``Surrogate`` is a frozen, picklable spec. Calling it applies the spike function with autograd;
``derivative`` exposes :math:`g` as a pure function for fused kernels that write their own backward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DEFAULT_ALPHA = {"atan": 2.0, "fast_sigmoid": 25.0, "box": 1.0}


def atan_derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * u).square())


def fast_sigmoid_derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:
    return 1.0 / (alpha * u.abs() + 1.0).square()


def box_derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:
    return (u.abs() < alpha / 2).to(u.dtype) / alpha


_ONE = torch.ones(())

DERIVATIVES = {"atan": atan_derivative, "fast_sigmoid": fast_sigmoid_derivative, "box": box_derivative}


def heaviside(u: torch.Tensor) -> torch.Tensor:
    """The spike: 1 where ``u >= 0``, else 0, in ``u``'s dtype."""
    return (u >= 0).to(u.dtype)


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.name, ctx.alpha = name, alpha
        return heaviside(u)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad_out * DERIVATIVES[ctx.name](u, ctx.alpha), None, None


@dataclass(frozen=True)
class Surrogate:
    """Heaviside forward, surrogate derivative ``g(u)`` backward (see the module docstring)."""

    name: str = "atan"
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.name not in DERIVATIVES:
            raise ValueError(f"Unknown surrogate {self.name!r}; expected one of {sorted(DERIVATIVES)}.")
        if self.alpha is None:
            object.__setattr__(self, "alpha", DEFAULT_ALPHA[self.name])
        if not self.alpha > 0:
            raise ValueError(f"Surrogate alpha must be > 0, got {self.alpha} for {self.name!r}.")

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return _SurrogateSpike.apply(u, self.name, float(self.alpha))

    def spike(self, u: torch.Tensor) -> torch.Tensor:
        """The forward spike function without autograd (for fused kernels)."""
        return heaviside(u)

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        return DERIVATIVES[self.name](u, float(self.alpha))

    def backward_add(self, base: torch.Tensor, u: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """``base + grad * g(u)`` in as few kernels as possible (fused backward passes)."""
        alpha = float(self.alpha)
        if self.name == "atan":  # (alpha/2) / (1 + (pi/2 alpha u)^2)
            den = torch.addcmul(_ONE.to(u), u, u, value=(math.pi / 2 * alpha) ** 2)
            return torch.addcdiv(base, grad, den, value=alpha / 2)
        if self.name == "fast_sigmoid":  # 1 / (alpha |u| + 1)^2
            den = torch.abs(u).mul_(alpha).add_(1.0).square_()
            return torch.addcdiv(base, grad, den)
        return torch.addcmul(base, grad, self.derivative(u))
