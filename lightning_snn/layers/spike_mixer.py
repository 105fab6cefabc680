r"""``SpikeMixer`` and ``ClampFuse``: the channel mixing and residual fusion of P-SpikeSSM blocks.

Bal & Sengupta, ICLR 2025 (authors' code ``NeuroCompLab-psu/PSpikeSSMs``):

- ``SpikeMixer``: :math:`z = \mathrm{GELU}(W s + c)` across channels at every step; the spikes ``s`` of
  the SSM sampler are mixed by one Linear (``2H → H`` when the SSM is bidirectional).
- ``ClampFuse``: :math:`o = \mathrm{Norm}(z + r)`, the residual connection ``r`` (the block input) plus
  normalisation (post-norm), or :math:`o = \mathrm{Norm}(z)` without the residual (``residual=False``).
  Its clamp to [0, 1] is applied by the next block's :class:`SpikeSampler` (``clamp(a·o + b, 0, 1)``),
  so it is not repeated here.
- ``TiedDropout``: dropout whose mask is shared by all time steps (the authors' ``DropoutNd``, ``tie=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_snn import validation

NORMS = ("layer", "batch", "none")


class TiedDropout(nn.Module):
    r"""Dropout over ``(T, B, C)`` with one mask per (sample, channel) for all steps: :math:`x_t \odot m / (1-p)`.

    The authors' ``src/models/nn/dropout.py`` ``DropoutNd`` (``tie=True``); identity in eval mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"TiedDropout: p must be in [0, 1), got {p}.")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand(x.shape[1:], device=x.device) < 1 - self.p
        return x * mask.to(x.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SpikeMixer(nn.Module):
    r""":math:`z_t = \mathrm{Dropout}(\mathrm{GELU}(W s_t + c))` over ``(T, B, n_inputs)`` → ``(T, B, d_model)``."""

    def __init__(
        self, d_model: int, bidirectional: bool = False, dropout: float = 0.0, tie_dropout: bool = False
    ) -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "SpikeMixer")
        if not 0 <= dropout < 1:
            raise ValueError(f"SpikeMixer: dropout must be in [0, 1), got {dropout}.")
        self.n_inputs = 2 * d_model if bidirectional else d_model
        self.linear = nn.Linear(self.n_inputs, d_model)
        self.activation = nn.GELU()
        if dropout > 0:
            self.dropout = TiedDropout(dropout) if tie_dropout else nn.Dropout(dropout)
        else:
            self.dropout = nn.Identity()

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        validation.check_layer_input(spikes, self.n_inputs, "SpikeMixer")
        spikes = validation.match_dtype(spikes, self.linear.weight.dtype)
        return self.dropout(self.activation(self.linear(spikes)))


class ClampFuse(nn.Module):
    r""":math:`o = \mathrm{Norm}(z + r)` (or :math:`\mathrm{Norm}(z)`, ``residual=False``); the clamp is the next
    sampler's."""

    def __init__(self, d_model: int, norm: str = "layer", residual: bool = True) -> None:
        super().__init__()
        d_model = validation.check_int(d_model, "d_model", "ClampFuse")
        if norm not in NORMS:
            raise ValueError(f"ClampFuse: unknown norm {norm!r}; expected one of {NORMS}.")
        self.norm_kind, self.d_model, self.residual = norm, d_model, residual
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
        out = validation.match_dtype(z, dtype)
        if self.residual:
            out = out + validation.match_dtype(residual, dtype)
        if self.norm_kind == "batch":
            return self.norm(out.flatten(0, 1)).view_as(out)
        return self.norm(out)
