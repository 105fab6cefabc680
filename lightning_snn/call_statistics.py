r"""``CallStatistics``: per-call statistics (spike rates, ...) gathered through forward hooks.

A module that has a per-call statistic defines ``call_statistics(output) -> dict[str, Tensor]``, a pure
function of the output of one call that returns per-unit means over the call's ``T·B`` rows, e.g.
:meth:`LearnableLIF.call_statistics <lightning_snn.neurons.lif.LearnableLIF.call_statistics>` returns
``{"spike_rate": spikes.mean(dim=(0, 1))}``. Modules keep no per-call state: a ``CallStatistics``
recorder hooks every such module of a model and averages the statistics over the calls made while
it records, each call weighted by its number of rows ``T·B``:

.. math::  \bar s = \frac{\sum_c T_c B_c\, s_c}{\sum_c T_c B_c}

The sums stay on the device (no host sync per call). Use it as a context manager::

    with CallStatistics(network) as recorder:
        for x, _ in loader:
            network(x)
    recorder.means()["spike_rate"]["neurons.0"]  # mean rate of each neuron of that layer

:class:`~lightning_snn.callbacks.TemporalStatsLogger` records the training batches of each epoch with one.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn


def spike_rate(spikes: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"spike_rate": ...}``: the per-unit mean of one call's ``(T, B, ...)`` output over its ``T·B`` rows,
    the call statistic every spiking module shares (``call_statistics = staticmethod(spike_rate)``)."""
    return {"spike_rate": spikes.detach().mean(dim=(0, 1))}


class CallStatistics:
    """Accumulates the ``call_statistics`` of every module of ``root`` over the recorded calls."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.recording = True
        self.sums: dict[tuple[str, str], torch.Tensor] = {}
        self.counts: dict[tuple[str, str], float] = {}
        self._handles: list[Any] = []

    def attach(self) -> CallStatistics:
        """Hook every module that defines ``call_statistics`` (layer names relative to ``root``)."""
        self.detach()
        for name, module in self.root.named_modules():
            if callable(getattr(module, "call_statistics", None)):
                hook = functools.partial(self._record, name or "root")
                self._handles.append(module.register_forward_hook(hook))
        return self

    def detach(self) -> None:
        """Remove the hooks (the accumulated values stay)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.sums, self.counts = {}, {}

    def _record(self, layer: str, module: nn.Module, args: Any, output: Any) -> None:
        if not self.recording:
            return
        out = output[0] if isinstance(output, (tuple, list)) else output
        rows = float(out.shape[0] * out.shape[1]) if out.dim() >= 2 else 1.0
        for key, value in module.call_statistics(out).items():
            value = value.detach().float() * rows
            index = (key, layer)
            self.sums[index] = self.sums[index] + value if index in self.sums else value
            self.counts[index] = self.counts.get(index, 0.0) + rows

    def means(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{statistic: {layer: mean over the recorded calls}}``."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for (key, layer), total in sorted(self.sums.items()):
            out.setdefault(key, {})[layer] = total / self.counts[(key, layer)]
        return out

    def __enter__(self) -> CallStatistics:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()
