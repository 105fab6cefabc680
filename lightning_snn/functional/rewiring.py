r"""Pure mask functions for dynamic sparse connectivity: DEEP R removal and RigL / random regrowth.

A sparse weight is :math:`W = s \odot \theta \odot m` with magnitude :math:`\theta \ge 0`, a fixed sign
:math:`s \in \{-1, +1\}` (per synapse, or per presynaptic neuron for Dale's law) and a binary mask
:math:`m` with exactly :math:`K = \mathrm{round}((1 - \text{sparsity}) N)` ones.

- **DEEP R** (Bellec et al., ICLR 2018): a synapse whose magnitude crossed :math:`\theta \le 0` is cut.
- **RigL** (Evci et al., ICML 2020): as many synapses are regrown at the inactive positions with the
  largest :math:`|\partial L / \partial W|` (the dense gradient of the masked weight).
- **Random** regrowth draws the positions uniformly from a seeded generator.

Paper D (Mészáros, Knight, Nowotny 2024) combines DEEP R removal with RigL regrowth. Every function
here is deterministic given its inputs (and the generator state), so all DDP ranks agree.
No state and no ``nn.Module`` here; :class:`~lightning_snn.callbacks.rewiring.Rewiring` owns the state.
"""

from __future__ import annotations

import torch


def target_active(numel: int, sparsity: float) -> int:
    """Number of active synapses ``round((1 - sparsity) · numel)`` (Python rounding)."""
    return int(round((1.0 - sparsity) * numel))


def random_mask(shape: torch.Size, n_active: int, generator: torch.Generator) -> torch.Tensor:
    """Boolean mask of ``shape`` with exactly ``n_active`` ones at uniformly random positions."""
    numel = int(torch.Size(shape).numel())
    order = torch.randperm(numel, generator=generator)
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[order[:n_active]] = True
    return mask.view(shape)


def magnitude_mask(weight: torch.Tensor, n_active: int) -> torch.Tensor:
    """Boolean mask with ones at the ``n_active`` largest ``|weight|`` (ties: lower flat index first)."""
    flat = weight.detach().abs().flatten().cpu()
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[order[:n_active]] = True
    return mask.view(weight.shape).to(weight.device)


def weight_signs(weight: torch.Tensor) -> torch.Tensor:
    """±1 per synapse from the sign of ``weight`` (0 counts as +1)."""
    return torch.where(weight < 0, -1.0, 1.0).to(weight.dtype)


def dale_signs(
    shape: torch.Size, excitatory_fraction: float, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """±1 per presynaptic neuron (axis 1 of an ``(out, in, *rest)`` weight), broadcast to ``shape``.

    ``round(excitatory_fraction · in)`` randomly chosen presynaptic neurons are excitatory (+1).
    """
    n_pre = shape[1]
    n_exc = int(round(excitatory_fraction * n_pre))
    per_pre = torch.full((n_pre,), -1.0, dtype=dtype)
    per_pre[torch.randperm(n_pre, generator=generator)[:n_exc]] = 1.0
    view = [1, n_pre] + [1] * (len(shape) - 2)
    return per_pre.view(view).expand(shape).clone()


def crossed_zero(weight: torch.Tensor, sign: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""DEEP R removal: active synapses whose magnitude :math:`\theta = s \cdot W` is :math:`\le 0`."""
    return mask & (weight * sign <= 0)


def regrow_positions(
    scores: torch.Tensor, mask: torch.Tensor, n: int, just_removed: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask of the ``n`` inactive positions with the largest ``scores`` (any finite numbers).

    Active positions are never chosen. Positions in ``just_removed`` are chosen only when there are
    fewer than ``n`` other inactive positions (e.g. sparsity 0).
    """
    grown = torch.zeros_like(mask)
    if n == 0:
        return grown
    flat = scores.detach().flatten().to(torch.float64)
    inactive = ~mask.flatten()
    available = int(inactive.sum())
    if n > available:
        raise ValueError(f"Cannot regrow {n} synapses: only {available} inactive positions.")
    removed = just_removed.flatten() if just_removed is not None else torch.zeros_like(inactive)
    for tier in (inactive & ~removed, inactive & removed):  # never-cut positions first
        if n == 0:
            break
        index = tier.nonzero().flatten()
        take = min(n, index.numel())
        grown.view(-1)[index[torch.topk(flat[index], take, sorted=False).indices]] = True
        n -= take
    return grown


def rigl_scores(dense_grad: torch.Tensor) -> torch.Tensor:
    """RigL growth score: the magnitude of the dense gradient of the masked weight."""
    return dense_grad.detach().abs()


def aligned_rigl_scores(dense_grad: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    r"""Sign-aware growth score :math:`\max(0, -s\,\partial L/\partial W)`: how fast gradient descent would
    grow the magnitude of a synapse that must keep sign :math:`s` (0 where it would push it below 0)."""
    return (-sign * dense_grad.detach()).clamp_min(0.0)


def signed_rigl_scores(dense_grad: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    r"""Growth score :math:`-\partial L/\partial\theta = -s\,\partial L/\partial W`, unclipped: the most negative
    magnitude gradient ranks first (Mészáros et al. 2024, ``mbalazs98/spatiotemporal`` snn_delays.py:141-145)."""
    return -sign * dense_grad.detach()


def random_scores(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Uniform ``[0, 1)`` scores from ``generator`` (CPU), for random regrowth."""
    return torch.rand(shape, generator=generator)


def deep_r_noise_l1(
    weight: torch.Tensor,
    sign: torch.Tensor,
    mask: torch.Tensor,
    shrink: float,
    noise_std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""DEEP R's extra terms on active magnitudes: :math:`\theta \leftarrow \theta - \eta\alpha + \sqrt{2\eta T}\,\nu`.

    ``shrink`` is :math:`\eta\alpha` (L1), ``noise_std`` is :math:`\sqrt{2\eta T}`; returns the new weight.
    """
    theta = weight * sign
    if shrink:
        theta = theta - shrink
    if noise_std:
        theta = theta + noise_std * torch.randn(weight.shape, generator=generator).to(weight)
    return torch.where(mask, theta * sign, weight)
