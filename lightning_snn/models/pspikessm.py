r"""``PSpikeSSM``: probabilistic spiking state-space model (Bal & Sengupta, ICLR 2025, arXiv 2406.02923).

One block (:class:`PSpikeSSMBlock`), for the block input :math:`h` ``(T, B, H)``:

.. math::
    s = \mathrm{Sampler}_1(h), \quad v = K * s + D s\ \text{(S4D, FFT)}, \quad
    q = \mathrm{Sampler}_2(v), \quad o = \mathrm{Norm}(\mathrm{GELU}(W q) + h),

where each sampler is :math:`\mathrm{Bernoulli}(\mathrm{clamp}(a x + b, 0, 1))` with its own affine
(the second sampler's affine is the SSM's output affine). Every layer exchanges only binary spikes
(the SSM reads spikes; the mixer reads spikes). The network is a Linear encoder, ``n_layers`` blocks,
pooling over time and a Linear head: ``(T, B, n_inputs)`` → logits ``(B, n_outputs)`` (``pool="mean"``
or ``"last"``) or per-step outputs ``(T, B, n_outputs)`` (``pool="none"``).
The (ps)MNIST size of the paper is the default: 2 layers, d_model 400, d_state 64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.call_statistics import CallStatistics
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.models.network import Network
from lightning_snn.neurons.spike_sampler import SpikeSampler

POOLS = ("mean", "last", "none")


class PSpikeSSMBlock(nn.Module):
    """sampler → S4D → sampler → SpikeMixer → ClampFuse (see the module docstring)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dropout: float = 0.0,
        norm: str = "layer",
        seeds: tuple[int | None, int | None] = (None, None),
        sampler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        sampler = dict(sampler or {})
        self.input_sampler = SpikeSampler(d_model, seed=seeds[0], **sampler)
        self.ssm = S4DLayer(d_model, d_state, init=init, dt_min=dt_min, dt_max=dt_max)
        self.output_sampler = SpikeSampler(d_model, seed=seeds[1], **sampler)
        self.mixer = SpikeMixer(d_model, dropout=dropout)
        self.fuse = ClampFuse(d_model, norm=norm)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q = self.output_sampler(self.ssm(self.input_sampler(h)))
        return self.fuse(self.mixer(q), h)


class PSpikeSSM(Network):
    """Encoder → ``n_layers`` × :class:`PSpikeSSMBlock` → pooling → Linear head."""

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        d_model: int = 400,
        d_state: int = 64,
        n_layers: int = 2,
        init: str = "lin",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dropout: float = 0.0,
        norm: str = "layer",
        pool: str = "mean",
        seed: int | None = None,
        sampler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_inputs", n_inputs),
            ("n_outputs", n_outputs),
            ("d_model", d_model),
            ("n_layers", n_layers),
        ):
            validation.check_int(value, name, "PSpikeSSM", minimum=None)
        if n_inputs < 1 or n_outputs < 1 or d_model < 1 or n_layers < 1:
            raise ValueError(
                "PSpikeSSM needs n_inputs, n_outputs, d_model and n_layers >= 1; got "
                f"n_inputs={n_inputs}, n_outputs={n_outputs}, d_model={d_model}, n_layers={n_layers}."
            )
        if pool not in POOLS:
            raise ValueError(f"PSpikeSSM: unknown pool {pool!r}; expected one of {POOLS}.")
        self.n_inputs, self.n_outputs, self.pool = n_inputs, n_outputs, pool
        self.encoder = nn.Linear(n_inputs, d_model)
        self.blocks = nn.ModuleList(
            PSpikeSSMBlock(d_model, d_state, init, dt_min, dt_max, dropout, norm, self._seeds(seed, i), sampler)
            for i in range(n_layers)
        )
        self.head = nn.Linear(d_model, n_outputs)

    @staticmethod
    def _seeds(seed: int | None, layer: int) -> tuple[int | None, int | None]:
        return (None, None) if seed is None else (seed + 2 * layer, seed + 2 * layer + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_inputs)`` → logits ``(B, n_outputs)`` or, with ``pool="none"``, ``(T, B, n_outputs)``."""
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h)
        ctx = stream.active()
        if ctx is not None and self.pool == "mean":  # streaming: the mean over every step so far
            h = stream.stream_call(ctx, self, lambda state: self._running_mean(h, state))
        elif self.pool == "mean":
            h = h.mean(0)
        elif self.pool == "last":
            h = h[-1]
        return self.head(h)

    @staticmethod
    def _running_mean(h: torch.Tensor, state: stream.PoolState | None) -> tuple[torch.Tensor, stream.PoolState]:
        total = h.sum(0) if state is None else state.total + h.sum(0)
        steps = h.shape[0] + (0 if state is None else state.steps)
        return total / steps, stream.PoolState(total, steps)

    def spike_rates(self, x: torch.Tensor) -> dict[str, float]:
        """Mean spike rate of every sampler on the input ``x`` ``(T, B, n_inputs)``, by qualified name."""
        with torch.no_grad(), CallStatistics(self) as recorder:
            self(x)
        return {name: rate.mean().item() for name, rate in recorder.means().get("spike_rate", {}).items()}
