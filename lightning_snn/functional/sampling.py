r"""Bernoulli spike sampling with a stochastic surrogate gradient (P-SpikeSSM, Bal & Sengupta, ICLR 2025).

Forward: :math:`s = \mathbb{1}[y > U]` with :math:`U \sim \mathcal U[0, 1)`, i.e.
:math:`s \sim \mathrm{Bernoulli}(\mathrm{clamp}(y, 0, 1))`. Backward: :math:`\partial s / \partial y := g(y)`,
a swappable surrogate derivative. The paper's is the pass-through of the clamp,
:math:`g(y) = \mathbb{1}[0 < y < 1]` (the gradient of :math:`\mathrm{clamp}(y, 0, 1)`, whose value is the
spike probability); :func:`straight_through` passes every gradient. A surrogate is any function
``g(y) -> Tensor`` of the same shape, so users can register their own in ``SAMPLING_SURROGATES``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SurrogateGrad = Callable[[torch.Tensor], torch.Tensor]


def clamp_pass_through(y: torch.Tensor) -> torch.Tensor:
    r""":math:`g(y) = \mathbb{1}[0 < y < 1]`: the derivative of ``clamp(y, 0, 1)`` off its kinks."""
    return ((y > 0) & (y < 1)).to(y.dtype)


def straight_through(y: torch.Tensor) -> torch.Tensor:
    r""":math:`g(y) = 1`: the straight-through estimator."""
    return torch.ones_like(y)


SAMPLING_SURROGATES: dict[str, SurrogateGrad] = {
    "clamp": clamp_pass_through,
    "straight_through": straight_through,
}


def resolve_sampling_surrogate(surrogate: str | SurrogateGrad) -> SurrogateGrad:
    """A surrogate derivative from its name in ``SAMPLING_SURROGATES`` or a callable."""
    if callable(surrogate):
        return surrogate
    if surrogate not in SAMPLING_SURROGATES:
        raise ValueError(
            f"Unknown sampling surrogate {surrogate!r}; expected one of {sorted(SAMPLING_SURROGATES)} "
            "or a callable g(y) -> Tensor."
        )
    return SAMPLING_SURROGATES[surrogate]


def check_probabilities(y: torch.Tensor, where: str) -> None:
    """Raise a ``ValueError`` if the (unclamped) spike probabilities contain NaN."""
    if torch.isnan(y).any():
        raise ValueError(
            f"{where}: {int(torch.isnan(y).sum())} of {y.numel()} spike probabilities are NaN "
            f"(shape {tuple(y.shape)}). Check the layer feeding the sampler (exploding activations, a bad "
            "learning rate, or NaN inputs)."
        )


class _BernoulliSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, uniform: torch.Tensor, grad_fn: SurrogateGrad) -> torch.Tensor:
        ctx.save_for_backward(y)
        ctx.grad_fn = grad_fn
        return (y > uniform).to(y.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (y,) = ctx.saved_tensors
        return grad_out * ctx.grad_fn(y), None, None


def bernoulli_spikes(y: torch.Tensor, uniform: torch.Tensor, surrogate: str | SurrogateGrad = "clamp") -> torch.Tensor:
    r"""Spikes :math:`\mathbb{1}[y > U]` (``uniform`` holds the draws of U) with surrogate gradient ``g(y)``."""
    if uniform.shape != y.shape:
        raise ValueError(f"uniform draws have shape {tuple(uniform.shape)}, expected {tuple(y.shape)}.")
    return _BernoulliSpike.apply(y, uniform, resolve_sampling_surrogate(surrogate))


def deterministic_spikes(y: torch.Tensor, mode: str) -> torch.Tensor:
    """Evaluation without noise: ``"threshold"`` → 1[clamp(y,0,1) > 0.5]; ``"expectation"`` → clamp(y,0,1)."""
    p = y.clamp(0.0, 1.0)
    if mode == "threshold":
        return (p > 0.5).to(y.dtype)
    if mode == "expectation":
        return p
    raise ValueError(f"Unknown deterministic mode {mode!r}; expected 'threshold' or 'expectation'.")
