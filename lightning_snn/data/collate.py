"""Collation into time-major batches.

Samples are ``(x, y)`` with ``x`` of shape ``(T_i, *features)``. Equal lengths give ``(x, y)`` with
``x`` ``(T, B, *features)``; different lengths are right-padded with zeros and give
``(x, y, lengths)`` so the loss can mask the padding. Per-step targets ``(T_i,)`` are padded with -100.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

IGNORE_INDEX = -100


def _pad_time(tensors: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    steps = max(t.shape[0] for t in tensors)
    out = tensors[0].new_full((steps, len(tensors), *tensors[0].shape[1:]), value)
    for i, t in enumerate(tensors):
        out[: t.shape[0], i] = t
    return out


def time_major_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]):
    """Stack ``(T_i, ...)`` samples into ``(T, B, ...)``, padding (and returning lengths) when needed."""
    xs = [torch.as_tensor(x) for x, _ in batch]
    ys = [torch.as_tensor(y) for _, y in batch]
    lengths = torch.tensor([x.shape[0] for x in xs])
    per_step = ys[0].dim() == 1
    y = _pad_time(ys, IGNORE_INDEX) if per_step else torch.stack(ys)
    x = _pad_time(xs, 0.0)
    if bool((lengths == lengths[0]).all()):
        return x, y
    return x, y, lengths
