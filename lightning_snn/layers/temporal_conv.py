r"""``CausalConv1d``: a dilated temporal convolution over time-major ``(T, B, C)`` input.

.. math::  y_o[t] = b_o + \sum_i \sum_{j=0}^{k-1} w_{oij}\, x_i[t - j\,\delta], \qquad x[t<0] = 0

with kernel size :math:`k` and dilation :math:`\delta`: ``nn.Conv1d`` on the input left-padded with
:math:`(k-1)\delta` zeros, so ``y[t]`` depends on ``x[t-(k-1)δ .. t]`` only. The temporal-convolution
SNNs of Moro et al. 2024 (paper A, claim 3) stack these with LIF neurons, kernel size and dilation
growing with depth (:func:`~lightning_snn.schedules.hierarchical_kernels`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_snn import validation


class CausalConv1d(nn.Module):
    """Causal dilated Conv1d along time (see the module docstring)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True
    ) -> None:
        super().__init__()
        in_channels = validation.check_int(in_channels, "in_channels", "CausalConv1d")
        out_channels = validation.check_int(out_channels, "out_channels", "CausalConv1d")
        kernel_size = validation.check_int(kernel_size, "kernel_size", "CausalConv1d", minimum=None)
        dilation = validation.check_int(dilation, "dilation", "CausalConv1d", minimum=None)
        if kernel_size < 1 or dilation < 1:
            raise ValueError(
                f"CausalConv1d: kernel_size and dilation must be >= 1, got kernel_size={kernel_size}, "
                f"dilation={dilation}."
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation = int(kernel_size), int(dilation)
        self.conv = nn.Conv1d(in_channels, out_channels, self.kernel_size, dilation=self.dilation, bias=bias)

    @property
    def receptive_field(self) -> int:
        """Number of input steps that reach one output step: ``(k-1)·δ + 1``."""
        return (self.kernel_size - 1) * self.dilation + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, in_channels)`` → ``(T, B, out_channels)``."""
        validation.check_layer_input(x, self.in_channels, type(self).__name__)
        x = validation.match_dtype(x, self.conv.weight.dtype)
        xb = F.pad(x.permute(1, 2, 0), (self.receptive_field - 1, 0))
        return self.conv(xb).permute(2, 0, 1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"
