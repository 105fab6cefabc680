r"""``InwardClamp``: a clamp that lets out-of-range values find their way back (pure autograd Function).

Used wherever a parametrisation constrains a learned value to bounds: delay positions
(:mod:`lightning_snn.layers.delayed_linear`) and the membrane decay of
:mod:`lightning_snn.functional.tau`. Forward: :math:`\mathrm{clamp}(p, lo, hi)`. Backward: the
gradient of an in-range value as usual; of an out-of-range value only when a descent step would move
it back inside.
"""

from __future__ import annotations

import torch


class InwardClamp(torch.autograd.Function):
    """``clamp(p, lo, hi)`` whose backward keeps the gradient of an out-of-range ``p`` when a descent
    step would move it back inside (and drops it when it would push further out).

    A plain clamp gives an out-of-range position no gradient at all, so a position that the optimiser
    pushes past a bound stays there for good. Upstream (``Thvnvtos/SNN-delays``) avoids this by clamping
    the parameter in place after every step; this keeps the parametrisation pure and has the same effect.
    """

    @staticmethod
    def forward(ctx, p: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        ctx.save_for_backward(p)
        ctx.lo, ctx.hi = lo, hi
        return p.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (p,) = ctx.saved_tensors
        keep = ((p >= ctx.lo) & (p <= ctx.hi)) | ((p < ctx.lo) & (grad < 0)) | ((p > ctx.hi) & (grad > 0))
        return torch.where(keep, grad, torch.zeros_like(grad)), None, None


def inward_clamp(p: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """``clamp(p, lo, hi)`` with :class:`InwardClamp`'s gradient."""
    return InwardClamp.apply(p, lo, hi)
