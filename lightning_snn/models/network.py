"""``Network``: the base class of every lightning_snn model.

A subclass records the arguments of its constructor as plain Python values (``network.spec``), so a
:class:`~lightning_snn.lit.SpikingClassifier` checkpoint can rebuild the network with
``load_from_checkpoint`` whether it was built from a script or from a LightningCLI config. A subclass
whose constructor changed may define ``migrate_init_args(init_args) -> init_args`` (a classmethod) to
turn the arguments recorded by an older version into today's; :func:`build_network` applies it.

Every call of a network validates its input once (:meth:`Network.check_input`, shape and dtype, no
host sync) and marks the call, so the layers inside skip their own checks
(:mod:`lightning_snn.validation`).

:meth:`Network.forward_with_state` runs the same forward while carrying the state of every temporal
layer from one chunk of a sequence to the next (:mod:`lightning_snn.state`, ``docs/streaming.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.class_path import import_class


def to_plain(value: Any) -> Any:
    """Dataclasses, tensors and tuples as plain dicts/lists, so the spec pickles without our classes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, type):  # a class (e.g. a neuron class) is recorded by its import path
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


class Network(nn.Module):
    """Base for networks: ``(T, B, C)`` in, ``(T, B, K)`` (or ``(B, K)`` logits) out."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__

        @functools.wraps(init)
        def recording_init(self, *args: Any, **kw: Any) -> None:
            if "spec" not in self.__dict__:  # the most-derived constructor records
                bound = inspect.signature(init).bind(self, *args, **kw)
                bound.apply_defaults()
                init_args = {k: to_plain(v) for k, v in bound.arguments.items() if k != "self"}
                self.__dict__["spec"] = {
                    "class_path": f"{type(self).__module__}.{type(self).__qualname__}",
                    "init_args": init_args,
                }
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def check_input(self, x: torch.Tensor) -> None:
        """Validate the network input (once per call): a ``(T, B, n_inputs)`` floating-point tensor."""
        validation.check_time_major(x, self.n_inputs, type(self).__name__)

    def input_dtype(self) -> torch.dtype | None:
        """The dtype the network computes in (its first floating parameter's), or ``None``."""
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return None

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Check the input at the edge, and cast a floating input of another dtype (float16, bfloat16,
        float64) to the network's dtype outside autocast (:func:`~lightning_snn.validation.match_dtype`)."""
        with validation.network_call() as outermost:
            if outermost:
                self.check_input(x)
                x = validation.match_dtype(x, self.input_dtype())
            return super().__call__(x, *args, **kwargs)

    def forward_with_state(self, x: torch.Tensor, state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """``(output, new_state)`` for one chunk ``x`` ``(T, B, ...)``, starting from ``state`` (the dict
        ``{qualified module name: state}`` returned for the previous chunk; ``None``: from rest, which
        gives what the plain call gives). Feeding a sequence chunk by chunk and passing each new state
        on gives the output of one pass over the whole sequence, for the modules that stream exactly
        (``docs/streaming.md``); gradients flow through the state unless it is detached
        (:func:`lightning_snn.state.detach_state`, truncated BPTT)."""
        with stream.streaming(self, state) as ctx:
            out = self(x)
        return out, ctx.state_out


def build_network(spec: dict) -> nn.Module:
    """Instantiate ``{"class_path": "pkg.mod.Class", "init_args": {...}}``."""
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(
            f"A network spec must be a dict with 'class_path' and 'init_args', got {type(spec).__name__}: {spec!r}."
        )
    cls = import_class(spec["class_path"])
    init_args = dict(spec.get("init_args", {}))
    migrate = getattr(cls, "migrate_init_args", None)
    return cls(**(migrate(init_args) if migrate is not None else init_args))
