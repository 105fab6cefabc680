r"""The time-major modules an imported NIR graph runs on: every one maps ``(T, B, *shape)`` to
``(T, B, *shape')`` and computes what the package's own layers compute, with the same operations, so a
graph exported by :func:`~lightning_snn.nir.to_nir` runs bit-exactly (see :mod:`lightning_snn.nir.convention`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_snn.functional.lif import LIFConfig
from lightning_snn.functional.lif_scan import leaky_integrate_fused, lif_fused
from lightning_snn.layers.integer_delay import integer_delay_linear


class FrameModule(nn.Module):
    """Applies a frame-wise module (Conv2d, pooling) to all ``T·B`` frames at once, as ConvSNN does."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x.flatten(0, 1))
        return y.reshape(*x.shape[:2], *y.shape[1:])


class SumPool2d(nn.Module):
    """NIR ``SumPool2d``: the sum over each window (``avg_pool2d`` with ``divisor_override=1``)."""

    def __init__(self, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


class Heaviside(nn.Module):
    r"""NIR ``Threshold``: :math:`z = [x > \theta]` elementwise (θ of the node's shape)."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold).to(x.dtype)


class Flatten(nn.Module):
    """NIR ``Flatten`` (dimensions counted without batch) on time-major ``(T, B, ...)``."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim = start_dim + 2 if start_dim >= 0 else start_dim
        self.end_dim = end_dim + 2 if end_dim >= 0 else end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.start_dim, self.end_dim)


class FixedLIF(nn.Module):
    r"""LIF with fixed per-neuron β, θ (hard reset to :math:`V_r`), run by the package's fused LIF:
    :math:`H = V_r + \beta(V - V_r) + cX`, :math:`S = [H \ge \theta]`, :math:`V = H(1-S) + V_r S`, over
    the neurons of ``shape`` (a feature map is flattened to ``N`` neurons, as in ConvSNN)."""

    parameter_roles = {"beta": "tau", "threshold": "threshold"}

    def __init__(
        self,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        v_reset: float,
        decay_input: bool,
        shape: Sequence[int],
        gain: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.register_buffer("beta", beta.reshape(-1))
        self.register_buffer("threshold", threshold.reshape(-1))
        self.register_buffer("gain", None if gain is None else gain.reshape(-1))
        self.cfg = LIFConfig(reset="hard", v_reset=float(v_reset), decay_input=decay_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[:2], -1)
        if self.gain is not None:
            flat = flat * self.gain
        return lif_fused(flat, self.beta, self.threshold, self.cfg).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, v_reset={self.cfg.v_reset}, decay_input={self.cfg.decay_input}"


class FixedLI(nn.Module):
    r"""Non-spiking leaky integrator, :math:`V[t] = \beta V[t-1] + cX[t]` (the package's fused readout)."""

    parameter_roles = {"beta": "tau"}

    def __init__(self, beta: torch.Tensor, decay_input: bool, shape: Sequence[int], gain: torch.Tensor | None) -> None:
        super().__init__()
        self.shape, self.decay_input = tuple(int(s) for s in shape), decay_input
        self.register_buffer("beta", beta.reshape(-1))
        self.register_buffer("gain", None if gain is None else gain.reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[:2], -1)
        if self.gain is not None:
            flat = flat * self.gain
        return leaky_integrate_fused(flat, self.beta, self.decay_input).reshape(x.shape)


class DelayedSum(nn.Module):
    r"""Branches ``Linear/Affine(W_k, b_k) → Delay(d_k)`` summed into one node:
    :math:`y[t] = \sum_k W_k x[t - d_k] + b_k [t \ge d_k]`, in increasing ``d_k`` (integer steps).

    With one weight per synapse over the branches (disjoint supports, distinct delays, no bias) this is
    :func:`~lightning_snn.layers.integer_delay.integer_delay_linear` on the summed weight and delay
    matrices, the very computation of :class:`~lightning_snn.layers.delayed_linear.DelayedLinear` in
    eval mode; otherwise each branch is shifted and added in turn."""

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor | None], delays: list[int]) -> None:
        super().__init__()
        order = sorted(range(len(delays)), key=lambda k: delays[k])
        self.delays = [int(delays[k]) for k in order]
        self.weights = nn.ParameterList(nn.Parameter(weights[k], requires_grad=False) for k in order)
        biases = [biases[k] for k in order]
        self.biases = nn.ParameterList(nn.Parameter(b, requires_grad=False) for b in biases if b is not None)
        self.has_bias = [b is not None for b in biases]
        supports = torch.stack([w != 0 for w in weights]).sum(0) if weights else None
        self.merged = (
            not any(self.has_bias) and len(set(self.delays)) == len(self.delays) and bool((supports <= 1).all())
        )
        if self.merged:
            weight = torch.stack(list(self.weights)).sum(0)
            delay = torch.full(weight.shape, self.delays[0], dtype=torch.long)
            for d, w in zip(self.delays, self.weights):
                delay[w != 0] = d
            self.register_buffer("weight", weight)
            self.register_buffer("delay", delay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return integer_delay_linear(x, self.weight, self.delay)
        steps = x.shape[0]
        y = x.new_zeros(steps, x.shape[1], self.weights[0].shape[0])
        biases = iter(self.biases)
        for d, w, has_bias in zip(self.delays, self.weights, self.has_bias):
            bias = next(biases) if has_bias else None
            if d >= steps:
                continue  # delivers after the end of the sequence
            part = x[: steps - d] @ w.t()
            y[d:] += part if bias is None else part + bias
        return y
