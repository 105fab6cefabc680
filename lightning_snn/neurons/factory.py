"""``NeuronFactory``: how a network builds its neuron layers from one neuron spec.

The neuron contract: a neuron is an ``nn.Module`` built as ``cls(n_neurons, **init_args)`` that maps a
time-major input current ``(T, B, N)`` to an output ``(T, B, N)`` (spikes, usually), starts every call
from rest, and declares the roles of its temporal parameters (:mod:`lightning_snn.roles`). A network
that is given initial time constants passes ``tau=`` per layer as well.

A neuron spec is any of

- ``None``: :class:`~lightning_snn.neurons.lif.LearnableLIF` with its defaults;
- a class, or its dotted import path (``"my_package.MyNeuron"``);
- ``{"class_path": <class or dotted path>, "init_args": {...}}`` (the LightningCLI form);
- a plain dict of :class:`~lightning_snn.neurons.lif.LearnableLIF` arguments (``{"decay_input": False}``).

The neuron's arguments are written once, in the spec; a network only adds ``tau`` per layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from lightning_snn.class_path import import_class

NeuronSpec = type | str | dict | None


@dataclass(frozen=True)
class NeuronFactory:
    """Builds ``cls(n_neurons, **init_args, **overrides)``; see the module docstring."""

    cls: type[nn.Module]
    init_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: NeuronSpec) -> NeuronFactory:
        """Read a neuron spec (see the module docstring)."""
        from lightning_snn.neurons.lif import LearnableLIF

        if spec is None:
            return cls(LearnableLIF)
        if isinstance(spec, (type, str)):
            return cls(import_class(spec))
        if isinstance(spec, NeuronFactory):
            return spec
        if not isinstance(spec, dict):
            raise TypeError(
                f"A neuron spec must be None, a class, a dotted class path or a dict; got {type(spec).__name__}: "
                f"{spec!r}."
            )
        if "class_path" not in spec:
            return cls(LearnableLIF, dict(spec))
        unknown = set(spec) - {"class_path", "init_args"}
        if unknown:
            raise ValueError(
                f"A neuron spec with 'class_path' takes only 'init_args' beside it; got also {sorted(unknown)}. "
                "Move those keys into init_args."
            )
        return cls(import_class(spec["class_path"]), dict(spec.get("init_args") or {}))

    @property
    def accepts_tau(self) -> bool:
        """Whether the neuron class takes ``tau=`` (an initial time constant)."""
        parameters = inspect.signature(self.cls).parameters
        return "tau" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())

    def __call__(self, n_neurons: int, **overrides: Any) -> nn.Module:
        """A neuron layer of ``n_neurons``; ``overrides`` (e.g. ``tau=``) replace entries of ``init_args``."""
        args = {**self.init_args, **overrides}
        if "n_neurons" in args:
            raise ValueError(
                f"The neuron spec of {self.cls.__name__} sets n_neurons={args['n_neurons']!r}; the network sets the "
                "layer width itself. Remove n_neurons from the neuron's init_args."
            )
        try:
            inspect.signature(self.cls).bind(n_neurons, **args)
        except TypeError as err:
            raise TypeError(
                f"Cannot build the neuron {self.cls.__module__}.{self.cls.__qualname__}(n_neurons, **{args}): {err}. "
                "A neuron class takes the layer width first, then its init_args (see lightning_snn.neurons.factory)."
            ) from err
        return self.cls(n_neurons, **args)


def move_into_neuron_spec(init_args: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Migrate a version 0.1 network spec: the neuron arguments ``keys`` that the network took itself move
    into its ``neuron`` spec (a plain dict of LearnableLIF arguments then); the spec's own entries win."""
    moved = {k: init_args.pop(k) for k in keys if k in init_args}
    if moved:
        init_args["neuron"] = {**moved, **(init_args.get("neuron") or {})}
    return init_args
