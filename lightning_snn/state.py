r"""Streaming state: what every temporal module carries from one chunk of a sequence to the next.

A module's plain call ``module(x)`` starts from rest and keeps nothing (the package's contract). For
streaming, every temporal module also has ``forward_with_state(x, state=None) -> (out, new_state)``,
whose ``state`` is one of the small typed tuples below (``None``: from rest, the same as the plain
call). Running a sequence in chunks and passing each chunk's ``new_state`` to the next gives the
output of one pass over the whole sequence (see ``docs/streaming.md`` for which modules are exact).

A :class:`~lightning_snn.models.network.Network` gathers the states of all its layers in one dict,
``{qualified module name: state}``
(:meth:`~lightning_snn.models.network.Network.forward_with_state`). It does so without a second copy of
each network's ``forward``: the network runs its ordinary forward inside a :class:`StreamContext`, and
each temporal module, when it finds one active, calls its own
``forward_with_state`` with the state stored under its name and records the new one
(:func:`stream_call`). Outside such a context nothing changes.

The states hold tensors that stay in the autograd graph: chaining chunks through them back-propagates
as one pass (full BPTT); :func:`detach_state` cuts the graph between chunks (truncated BPTT).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import nn


class LIFState(NamedTuple):
    """:class:`~lightning_snn.neurons.lif.LearnableLIF`: membrane after the last step, relative to the
    rest potential, :math:`V - V_r` ``(B, N)`` (equal to V for the soft reset and ``v_reset=0``)."""

    v: torch.Tensor


class ReadoutState(NamedTuple):
    """:class:`~lightning_snn.neurons.lif.LeakyReadout`: the output membrane of the last step ``(B, N)``."""

    v: torch.Tensor


class DelayState(NamedTuple):
    """Integer or Gaussian delay synapses: the last ``max_delay - 1`` inputs ``(max_delay - 1, B, in)``."""

    history: torch.Tensor


class ConvState(NamedTuple):
    """:class:`~lightning_snn.layers.temporal_conv.CausalConv1d`: the last ``(k - 1)·dilation`` inputs
    ``((k-1)δ, B, in)``."""

    history: torch.Tensor


class SSMState(NamedTuple):
    """:class:`~lightning_snn.layers.ssm.S4DLayer`: the complex modal state ``(B, H, d_state/2)``."""

    x: torch.Tensor


class SamplerState(NamedTuple):
    """:class:`~lightning_snn.neurons.spike_sampler.SpikeSampler` in training (or ``eval_mode="sample"``):
    the state of the generator its draws come from (a ``torch.Generator`` state, a CPU byte tensor)."""

    generator: torch.Tensor


class PoolState(NamedTuple):
    """A network's pooling over time (``pool="mean"``): the running sum ``(B, d)`` and the step count."""

    total: torch.Tensor
    steps: int


def history_window(history: torch.Tensor | None, x: torch.Tensor, length: int) -> torch.Tensor:
    """``x`` ``(T, B, C)`` preceded by ``length`` past inputs: ``history`` or zeros (from rest)."""
    if length == 0:
        return x
    if history is None:
        history = x.new_zeros(length, *x.shape[1:])
    if history.shape[0] != length or history.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"the streaming state holds inputs of shape {tuple(history.shape)}, but this chunk needs "
            f"({length}, {', '.join(map(str, x.shape[1:]))}): pass the state returned for this batch."
        )
    return torch.cat([history.to(x.dtype), x], 0)


def last_inputs(window: torch.Tensor, length: int) -> torch.Tensor:
    """The last ``length`` rows of a window (its inputs for the next chunk's history)."""
    return window[window.shape[0] - length :]


def detach_state(state: Any) -> Any:
    """The same structure with every tensor detached (truncated BPTT: no gradient into the past)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(v) for v in state))
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(v) for v in state)
    return state


class StreamContext:
    """The states of one network call: read by name at each temporal module, the new ones recorded."""

    def __init__(self, root: nn.Module, state: dict[str, Any] | None) -> None:
        if state is not None and not isinstance(state, dict):
            raise TypeError(
                f"{type(root).__name__}.forward_with_state expects the state as the dict it returned "
                f"({{module name: state}}) or None; got {type(state).__name__}."
            )
        self.names = {id(m): name for name, m in root.named_modules()}
        self.state_in = dict(state or {})
        self.state_out: dict[str, Any] = {}

    def name(self, module: nn.Module) -> str:
        return self.names.get(id(module), f"<{type(module).__name__}@{id(module):x}>")

    def get(self, name: str) -> Any:
        return self.state_in.get(name)

    def put(self, name: str, value: Any) -> None:
        if name in self.state_out:
            raise RuntimeError(
                f"module {name!r} was called twice in one streaming call; its state would be ambiguous "
                "(streaming needs each temporal module to run once per network call)."
            )
        self.state_out[name] = value


_ACTIVE: contextvars.ContextVar[StreamContext | None] = contextvars.ContextVar("lightning_snn_stream", default=None)


def active() -> StreamContext | None:
    """The streaming context of the network call in progress, or ``None`` (a plain, stateless call)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def streaming(root: nn.Module, state: dict[str, Any] | None) -> Iterator[StreamContext]:
    """Run calls of ``root``'s modules with their states (see the module docstring)."""
    ctx = StreamContext(root, state)
    token = _ACTIVE.set(ctx)
    try:
        yield ctx
    finally:
        _ACTIVE.reset(token)


def stream_call(ctx: StreamContext, module: nn.Module, fn: Callable[[Any], tuple[Any, Any]]) -> Any:
    """``fn(state) -> (out, new_state)`` with ``module``'s state in ``ctx``; records the new one, returns ``out``."""
    name = ctx.name(module)
    out, new_state = fn(ctx.get(name))
    ctx.put(name, new_state)
    return out
