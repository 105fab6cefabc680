"""Import a class from a dotted path, the ``class_path`` of LightningCLI configs and network specs."""

from __future__ import annotations

import importlib


def import_class(path: str | type) -> type:
    """The class named by a dotted import path such as ``"lightning_snn.neurons.LearnableLIF"``."""
    if isinstance(path, type):
        return path
    module_name, _, cls_name = str(path).rpartition(".")
    hint = "give a dotted path 'package.module.ClassName' of an importable class"
    try:
        module = importlib.import_module(module_name) if module_name else None
    except ModuleNotFoundError as err:
        raise ValueError(f"Cannot import the class {path!r} ({err}): {hint}.") from err
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"Cannot import the class {path!r}: {hint}.")
    return cls
