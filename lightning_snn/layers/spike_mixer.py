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

from lightning_snn import validation

NORMS = ("layer", "batch", "none")


class SpikeMixer(nn.Module):
    r""":math:`z_t = \mathrm{Dropout}(\mathrm{GELU}(W s_t + c))` over ``(T, B, n_inputs)`` → ``(T, B, d_model)``."""

    def __init__(self, d_model: int, bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "SpikeMixer")
        if not 0 <= dropout < 1:
            raise ValueError(f"SpikeMixer: dropout must be in [0, 1), got {dropout}.")
        self.n_inputs = 2 * d_model if bidirectional else d_model
        self.linear = nn.Linear(self.n_inputs, d_model)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        validation.check_layer_input(spikes, self.n_inputs, "SpikeMixer")
        spikes = validation.match_dtype(spikes, self.linear.weight.dtype)
        return self.dropout(self.activation(self.linear(spikes)))


class ClampFuse(nn.Module):
    r""":math:`o = \mathrm{Norm}(z + r)`; the clamp of the fusion is done by the next sampler."""

    def __init__(self, d_model: int, norm: str = "layer") -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "ClampFuse")
        if norm not in NORMS:
            raise ValueError(f"ClampFuse: unknown norm {norm!r}; expected one of {NORMS}.")
        self.norm_kind, self.d_model = norm, d_model
        if norm == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif norm == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, z: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``(T, B, d_model)`` branch and residual → ``(T, B, d_model)``."""
        validation.check_layer_input(z, self.d_model, "ClampFuse")
        validation.check_layer_input(residual, self.d_model, "ClampFuse")
        if z.shape != residual.shape:
            raise ValueError(
                f"ClampFuse expects branch and residual of the same shape (T, B, {self.d_model}); got "
                f"{tuple(z.shape)} and {tuple(residual.shape)}."
            )
        weight = getattr(self.norm, "weight", None)
        dtype = weight.dtype if isinstance(weight, torch.Tensor) else None
        out = validation.match_dtype(z, dtype) + validation.match_dtype(residual, dtype)
        if self.norm_kind == "batch":
            return self.norm(out.flatten(0, 1)).view_as(out)
        return self.norm(out)
