r"""``SpikeMixer`` and ``ClampFuse``: the channel mixing and residual fusion of P-SpikeSSM blocks.

Bal & Sengupta, ICLR 2025 (authors' code ``NeuroCompLab-psu/PSpikeSSMs``):

- ``SpikeMixer``: :math:`z = \mathrm{GELU}(W s + c)` across channels at every step; the spikes ``s`` of
  the SSM sampler are mixed by one Linear (``2H → H`` when the SSM is bidirectional).
- ``ClampFuse``: :math:`o = \mathrm{Norm}(z + r)`, the residual connection ``r`` (the block input) plus
  normalisation. Its clamp to [0, 1] is applied by the next block's :class:`SpikeSampler`
  (``clamp(a·o + b, 0, 1)``), so it is not repeated here.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("layer", "batch", "none")


class SpikeMixer(nn.Module):
    r""":math:`z_t = \mathrm{Dropout}(\mathrm{GELU}(W s_t + c))` over ``(T, B, n_inputs)`` → ``(T, B, d_model)``."""

    def __init__(self, d_model: int, bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model < 1:
            raise ValueError(f"SpikeMixer: d_model must be >= 1, got {d_model}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"SpikeMixer: dropout must be in [0, 1), got {dropout}.")
        self.n_inputs = 2 * d_model if bidirectional else d_model
        self.linear = nn.Linear(self.n_inputs, d_model)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        if spikes.dim() != 3 or spikes.shape[-1] != self.n_inputs:
            raise ValueError(
                f"SpikeMixer expects time-major spikes (T, B, {self.n_inputs}); got shape {tuple(spikes.shape)}."
            )
        return self.dropout(self.activation(self.linear(spikes)))


class ClampFuse(nn.Module):
    r""":math:`o = \mathrm{Norm}(z + r)`; the clamp of the fusion is done by the next sampler."""

    def __init__(self, d_model: int, norm: str = "layer") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"ClampFuse: unknown norm {norm!r}; expected one of {NORMS}.")
        self.norm_kind = norm
        if norm == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif norm == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, z: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if z.shape != residual.shape:
            raise ValueError(f"ClampFuse: branch {tuple(z.shape)} and residual {tuple(residual.shape)} differ.")
        out = z + residual
        if self.norm_kind == "batch":
            return self.norm(out.flatten(0, 1)).view_as(out)
        return self.norm(out)
