r"""``IntegerDelayLinear``: a dense layer with one fixed integer delay per synapse.

.. math::  y_o[t] = \sum_i w_{oi}\, x_i[t - d_{oi}], \qquad d_{oi} \in \{0, \dots, D-1\},\ x[t<0] = 0

This is what a trained :class:`~lightning_snn.layers.delayed_linear.DelayedLinear` becomes after
``to_integer_delays()`` (σ → 0, rounded positions; Hammouamri et al. 2024, Mészáros et al. 2024):
the form a neuromorphic chip or an event simulator runs. Two ways to compute it, equal up to float
rounding (``tests/test_delay_paths.py``):

* shifting and summing, one matmul per distinct delay value (:func:`shift_and_sum_delay_linear`: any
  device, differentiable; its cost grows with the number of distinct delays, up to D matmuls);
* event by event, like the chip (:func:`event_delay_linear`, Numba, CPU): every nonzero input
  :math:`x_i[t]` adds :math:`w_{oi} x_i[t]` to :math:`y_o[t + d_{oi}]` for all ``o``. Its cost is the
  number of nonzero inputs times ``out_features``, whatever D: for spike trains (a few % nonzero) it is
  a fraction of one dense matmul.

:func:`integer_delay_linear` picks the event path when no gradient is needed, Numba is available, the
input is on the CPU, finite, and sparse enough (:data:`EVENT_DENSITY_PER_DELAY`), else shifting and summing.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation

try:  # optional accelerator, a runtime dependency of the package
    import numba
    import numpy as np
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None


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


def shift_and_sum_delay_linear(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """``y[t, b, o] = Σ_i weight[o, i] · x[t - delay[o, i], b, i]`` for ``x`` ``(T, B, I)``: one matmul per
    distinct delay (differentiable, any device)."""
    steps = x.shape[0]
    y = x.new_zeros(steps, x.shape[1], weight.shape[0])
    for d in torch.unique(delay).tolist():
        if d >= steps:
            continue  # such a synapse only delivers after the end of the sequence
        w_d = torch.where(delay == d, weight, torch.zeros_like(weight))
        y[d:] += x[: steps - d] @ w_d.t()
    return y


#: The event path is used when the fraction of nonzero inputs is at most this times the number of
#: distinct delays, and at most 1/2. Shift-and-sum costs one dense matmul per distinct delay, the event
#: path grows with the density: in ``benchmarks/delay_speed.py`` (700 -> 256, 5 % spikes, 1 thread, a
#: loaded CPU) they break even at a density of about 1.4 % per distinct delay (1/70).
EVENT_DENSITY_PER_DELAY = 1 / 70
#: ``x.numel() · out_features`` per thread below which the event kernel uses fewer threads.
_WORK_PER_THREAD = 1 << 22

if numba is not None:

    @numba.njit(cache=True)
    def _count_events(x):  # pragma: no cover - compiled
        """``(nonzero entries, non-finite entries)`` of ``x``, one pass."""
        nonzero = 0
        bad = 0
        for v in x.reshape(-1):
            nonzero += v != 0
            bad += not np.isfinite(v)
        return nonzero, bad

    @numba.njit(cache=True, parallel=True)
    def _deliver_events(x, weight_io, offset_io, y):  # pragma: no cover - compiled
        """``y[b, t + d[i, o], o] += x[t, b, i] · w[i, o]`` for every nonzero ``x[t, b, i]``, with
        ``offset_io[i, o] = d[i, o]·O + o``; ``y`` ``(B, T + D - 1, O)`` (late deliveries land past ``T``
        and are dropped by the caller). One batch row per task: its block of ``y`` stays in the cache
        and no two tasks write the same element."""
        steps, batch, inputs = x.shape
        outputs = weight_io.shape[1]
        for b in numba.prange(batch):
            yb = y[b].reshape(-1)
            for t in range(steps):
                base = t * outputs
                for i in range(inputs):
                    v = x[t, b, i]
                    if v != 0:
                        for o in range(outputs):
                            yb[base + offset_io[i, o]] += v * weight_io[i, o]


def event_delay_linear(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """The same sum as :func:`shift_and_sum_delay_linear`, input event by input event (Numba, CPU,
    float32/float64, no gradient): each nonzero ``x[t, b, i]`` adds ``x[t, b, i] · weight[:, i]`` to
    ``y[t + delay[:, i], b, :]``. ``delay`` holds integers >= 0 (``D = delay.max() + 1``)."""
    if delay.numel() and int(delay.min()) < 0:
        raise ValueError(
            f"event_delay_linear: delays must be integers >= 0, got a minimum of {int(delay.min())}; clamp them."
        )
    steps, batch, _ = x.shape
    outputs = weight.shape[0]
    taps = int(delay.max()) + 1 if delay.numel() else 1
    y = torch.zeros(batch, steps + taps - 1, outputs, dtype=x.dtype)
    weight_io = weight.detach().to(x.dtype).t().contiguous()
    offset_io = (delay.t().to(torch.int32) * outputs + torch.arange(outputs, dtype=torch.int32)).contiguous()
    arrays = (x.detach().contiguous().numpy(), weight_io.numpy(), offset_io.numpy(), y.numpy())
    _run(_deliver_events, *arrays, tasks=min(batch, x.numel() * outputs // _WORK_PER_THREAD))
    return y[:, :steps].transpose(0, 1).contiguous()


def _use_events(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor) -> bool:
    """The event path applies (see the module docstring); the density test is one pass over ``x``."""
    if (
        numba is None
        or os.environ.get("LIGHTNING_SNN_NUMBA", "1") == "0"
        or x.device.type != "cpu"
        or x.dtype not in (torch.float32, torch.float64)
        or weight.device.type != "cpu"
        or delay.device.type != "cpu"
        or x.numel() == 0
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
        return False
    nonzero, bad = _count_events(x.detach().contiguous().numpy())  # compiled, one thread: a cheap pass
    distinct = int(torch.unique(delay).numel())
    return bad == 0 and nonzero <= min(0.5, EVENT_DENSITY_PER_DELAY * distinct) * x.numel()


def integer_delay_linear(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """``y[t, b, o] = Σ_i weight[o, i] · x[t - delay[o, i], b, i]`` for ``x`` ``(T, B, I)``, by
    :func:`event_delay_linear` where it applies (see the module docstring), else
    :func:`shift_and_sum_delay_linear`."""
    if _use_events(x, weight, delay):
        return event_delay_linear(x, weight, delay)
    return shift_and_sum_delay_linear(x, weight, delay)


def _run(kernel, *args, tasks: int) -> None:
    """Run ``kernel`` on PyTorch's thread count, but on no more threads than ``tasks`` (its ``prange``
    length; a small call on one thread pays no OpenMP barrier), and leave PyTorch's setting as it was
    (Numba's OpenMP pool shares libgomp with PyTorch)."""
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, tasks, numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(*args)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


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
