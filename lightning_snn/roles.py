"""Declared parameter roles: which tensors of a module are time constants, delays, thresholds or σ.

A module declares the role of its own parameters and buffers in a class (or instance) attribute
``parameter_roles``, a mapping from the attribute name to one of :data:`ROLES`::

    class MyNeuron(nn.Module):
        parameter_roles = {"tau": "tau", "threshold": "threshold"}

        def __init__(self, n_neurons: int) -> None:
            super().__init__()
            self.tau = nn.Parameter(torch.full((n_neurons,), 10.0))
            self.register_buffer("threshold", torch.tensor(1.0))

The names are the module's own attributes (not dotted paths into submodules); each must be a
parameter or a buffer of that module, or :func:`declared_roles` raises. A parameter that no module
claims is a ``"weight"``. Everything that treats temporal parameters specially asks these functions
instead of matching names: :class:`~lightning_snn.lit.SpikingClassifier` builds its optimiser groups
from :func:`parameter_roles`, :class:`~lightning_snn.callbacks.DelaySigmaSchedule` sets every tensor
declared ``"sigma"``, and :class:`~lightning_snn.callbacks.Rewiring` rewires ``"weight"`` tensors.

Roles:

- ``"weight"``: synaptic weights, biases, affine and norm parameters (the default);
- ``"tau"``: time constants and anything parametrising them (PLIF's ``w``, S4D's Δ and A);
- ``"delay"``: synaptic delay positions;
- ``"threshold"``: firing thresholds;
- ``"sigma"``: the width of a delay kernel (a buffer set by a schedule, or a learned parameter).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

ROLES = ("weight", "tau", "delay", "threshold", "sigma")


def declared_roles(module: nn.Module) -> dict[str, str]:
    """The roles ``module`` declares for its own tensors, checked: ``{attribute name: role}``."""
    roles = getattr(module, "parameter_roles", None) or {}
    if not isinstance(roles, Mapping):
        raise TypeError(
            f"{type(module).__name__}.parameter_roles must be a dict {{attribute name: role}}, "
            f"got {type(roles).__name__}: {roles!r}."
        )
    own = {name for name, _ in module.named_parameters(recurse=False)}
    own |= {name for name, _ in module.named_buffers(recurse=False)}
    for name, role in roles.items():
        if role not in ROLES:
            raise ValueError(
                f"{type(module).__name__}.parameter_roles gives {name!r} the unknown role {role!r}; "
                f"expected one of {ROLES}."
            )
        if name not in own:
            raise ValueError(
                f"{type(module).__name__}.parameter_roles declares {name!r}, which is neither a parameter nor a "
                f"buffer of that module (its own parameters and buffers: {sorted(own)}). Declare the module's "
                "own attribute names, not dotted paths."
            )
    return dict(roles)


def named_tensors_by_role(root: nn.Module, role: str) -> Iterator[tuple[str, nn.Module, str, torch.Tensor]]:
    """``(qualified name, owner, attribute, tensor)`` for every parameter or buffer declared ``role``."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; expected one of {ROLES}.")
    for prefix, module in root.named_modules():
        for attribute, declared in declared_roles(module).items():
            tensor = getattr(module, attribute)
            if declared == role and tensor is not None:
                yield (f"{prefix}.{attribute}" if prefix else attribute), module, attribute, tensor


def parameter_roles(root: nn.Module) -> dict[str, str]:
    """``{qualified parameter name: role}`` for every parameter of ``root`` (undeclared ones: ``"weight"``)."""
    declared = {}
    for prefix, module in root.named_modules():
        for attribute, role in declared_roles(module).items():
            declared[f"{prefix}.{attribute}" if prefix else attribute] = role
    return {name: declared.get(name, "weight") for name, _ in root.named_parameters()}
