r"""``IntegerDelayLinear``: a dense layer with one fixed integer delay per synapse (pure PyTorch).

.. math::  y_o[t] = \sum_i w_{oi}\, x_i[t - d_{oi}], \qquad d_{oi} \in \{0, \dots, D-1\},\ x[t<0] = 0

This is what a trained :class:`~lightning_snn.layers.delayed_linear.DelayedLinear` becomes after
``to_integer_delays()`` (σ → 0, rounded positions; Hammouamri et al. 2024, Mészáros et al. 2024):
the form a neuromorphic chip or an event simulator runs. It is computed by shifting and summing,
one matmul per distinct delay value, so no kernel of length D is ever built.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation


def check_integer_delays(delay: torch.Tensor, max_delay: int, where: str) -> None:
    """Raise a ``ValueError`` unless every delay is an integer in ``[0, max_delay - 1]``."""
    if max_delay < 1:
        raise ValueError(f"{where}: max_delay must be >= 1 (1 = no delay), got {max_delay}.")
    if delay.is_floating_point() and not torch.equal(delay, delay.round()):
        raise ValueError(f"{where}: delays must be integers; round them first (got e.g. {delay.flatten()[0]}).")
    if delay.numel() and (delay.min() < 0 or delay.max() > max_delay - 1):
        raise ValueError(
            f"{where}: delays must lie in [0, max_delay - 1] = [0, {max_delay - 1}], got values in "
            f"[{int(delay.min())}, {int(delay.max())}]; raise max_delay or clamp the delays."
        )


def integer_delay_linear(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """``y[t, b, o] = Σ_i weight[o, i] · x[t - delay[o, i], b, i]`` for ``x`` ``(T, B, I)``."""
    steps = x.shape[0]
    y = x.new_zeros(steps, x.shape[1], weight.shape[0])
    for d in torch.unique(delay).tolist():
        if d >= steps:
            continue  # such a synapse only delivers after the end of the sequence
        w_d = torch.where(delay == d, weight, torch.zeros_like(weight))
        y[d:] += x[: steps - d] @ w_d.t()
    return y


class IntegerDelayLinear(nn.Module):
    """Dense synapses with integer delays (see the module docstring)."""

    def __init__(self, weight: torch.Tensor, delay: torch.Tensor, max_delay: int | None = None) -> None:
        super().__init__()
        for name, value in (("weight", weight), ("delay", delay)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"IntegerDelayLinear expects {name} as a torch.Tensor (out, in); got {type(value).__name__}."
                )
        if weight.dim() != 2 or weight.shape != delay.shape:
            raise ValueError(
                f"IntegerDelayLinear needs weight and delay of the same shape (out, in); got "
                f"{tuple(weight.shape)} and {tuple(delay.shape)}."
            )
        self.max_delay = int(max_delay) if max_delay is not None else int(delay.max()) + 1
        check_integer_delays(delay, self.max_delay, "IntegerDelayLinear")
        self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight.detach().clone())
        self.register_buffer("delay", delay.detach().round().long())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, in_features)`` → ``(T, B, out_features)``."""
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state))
        validation.check_layer_input(x, self.in_features, "IntegerDelayLinear")
        return integer_delay_linear(validation.match_dtype(x, self.weight.dtype), self.weight, self.delay)

    def initial_state(self, batch: int, dtype: torch.dtype | None = None, device=None) -> stream.DelayState:
        """From rest: ``max_delay - 1`` zero inputs ``(max_delay - 1, B, in)``."""
        shape = (self.max_delay - 1, batch, self.in_features)
        return stream.DelayState(torch.zeros(shape, dtype=dtype or self.weight.dtype, device=device))

    def forward_with_state(
        self, x: torch.Tensor, state: stream.DelayState | None = None
    ) -> tuple[torch.Tensor, stream.DelayState]:
        """``(y, DelayState)``: the chunk preceded by the previous ``max_delay - 1`` inputs (exact)."""
        validation.check_layer_input(x, self.in_features, "IntegerDelayLinear")
        x = validation.match_dtype(x, self.weight.dtype)
        length = self.max_delay - 1
        window = stream.history_window(None if state is None else state.history, x, length)
        y = integer_delay_linear(window, self.weight, self.delay)[length:]
        return y, stream.DelayState(stream.last_inputs(window, length))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}"
