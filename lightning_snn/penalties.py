r"""The penalty contract: a module adds a regulariser to the training loss by defining ``penalty()``.

For a network :math:`N` with modules :math:`m`, :class:`~lightning_snn.lit.classifier.SpikingClassifier`
minimises :math:`\mathcal{L} + \sum_{m \in N,\ m \text{ defines penalty}} m.\mathrm{penalty}()`.
A penalty is a scalar tensor computed from the module's own parameters (it carries gradient), e.g.
hSNN's penalties on time constants close to 1 and on their spread (Moro et al. 2024,
``EIS-Hub/hSNN`` ``training.py``). A module that wants no penalty for now returns ``None``.
"""

from __future__ import annotations

import torch
from torch import nn


def network_penalty(network: nn.Module) -> torch.Tensor | None:
    """Sum of ``penalty()`` over the modules of ``network`` that define it (``None`` when none does)."""
    total = None
    for name, module in network.named_modules():
        method = getattr(module, "penalty", None)
        if not callable(method):
            continue
        value = method()
        if value is None:
            continue
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise TypeError(
                f"{type(module).__name__} ({name or 'the network'}).penalty() must return a scalar tensor or None "
                f"(a regulariser added to the loss); got {type(value).__name__}"
                f"{'' if not isinstance(value, torch.Tensor) else f' of shape {tuple(value.shape)}'}."
            )
        total = value.reshape(()) if total is None else total + value.reshape(())
    return total
