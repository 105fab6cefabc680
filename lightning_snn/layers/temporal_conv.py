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

from lightning_snn import state as stream
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
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state))
        validation.check_layer_input(x, self.in_channels, type(self).__name__)
        x = validation.match_dtype(x, self.conv.weight.dtype)
        xb = F.pad(x.permute(1, 2, 0), (self.receptive_field - 1, 0))
        return self.conv(xb).permute(2, 0, 1)

    def initial_state(self, batch: int, dtype: torch.dtype | None = None, device=None) -> stream.ConvState:
        """From rest: ``(k-1)·δ`` zero inputs ``((k-1)δ, B, in)``."""
        shape = (self.receptive_field - 1, batch, self.in_channels)
        return stream.ConvState(torch.zeros(shape, dtype=dtype or self.conv.weight.dtype, device=device))

    def forward_with_state(
        self, x: torch.Tensor, state: stream.ConvState | None = None
    ) -> tuple[torch.Tensor, stream.ConvState]:
        """``(y, ConvState)``: the convolution over the chunk preceded by the previous ``(k-1)·δ`` inputs
        (zeros from rest), which is exactly what the left padding of one full pass supplies."""
        validation.check_layer_input(x, self.in_channels, type(self).__name__)
        x = validation.match_dtype(x, self.conv.weight.dtype)
        length = self.receptive_field - 1
        window = stream.history_window(None if state is None else state.history, x, length)
        y = self.conv(window.permute(1, 2, 0)).permute(2, 0, 1)
        return y, stream.ConvState(stream.last_inputs(window, length))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"
