r"""``SequenceDropout``: dropout with one mask per sequence, shared by every time step.

For a time-major input :math:`x` ``(T, B, ...)`` in training,

.. math::
    y[t] = x[t] \odot m / (1 - p), \qquad m \sim \mathrm{Bernoulli}(1 - p)^{B \times \dots}
    \ \text{drawn once per call},

so a dropped neuron stays silent for the whole sequence, as SpikingJelly's multi-step
``layer.Dropout`` does. The PLIF networks (Fang et al. 2021) and both delay papers (Hammouamri et al.
2024, ``Thvnvtos/SNN-delays`` ``snn_delays.py``; Mészáros et al. 2024) drop the *spikes* of each hidden
layer this way. In evaluation it is the identity.

**Streaming / truncated BPTT.** Inside :meth:`~lightning_snn.models.network.Network.forward_with_state`
the mask is part of the state: the first chunk draws it and later chunks of the same sequence reuse it,
so a chunked run drops the same neurons as the whole sequence would.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_snn import state as stream


class SequenceDropout(nn.Module):
    """Dropout with one mask per sample for all time steps of a ``(T, B, ...)`` input (see the module
    docstring)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"SequenceDropout: p (dropout probability) must be a number in [0, 1), got {p!r}.")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        ctx = stream.active()
        if ctx is not None:
            return stream.stream_call(ctx, self, lambda mask: self._drop(x, mask))
        return self._drop(x, None)[0]

    def _drop(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if mask is None or mask.shape[1:] != x.shape[1:]:
            mask = torch.empty_like(x[:1]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask, mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
