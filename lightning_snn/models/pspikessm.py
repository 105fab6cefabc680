r"""``PSpikeSSM``: probabilistic spiking state-space model (Bal & Sengupta, ICLR 2025, arXiv 2406.02923).

A Linear encoder, ``n_layers`` × :class:`~lightning_snn.models.pspikessm_block.PSpikeSSMBlock`, an
optional final norm, pooling over time and a Linear head: ``(T, B, n_inputs)`` → logits ``(B, n_outputs)``
(``pool="mean"`` or ``"last"``) or per-step outputs ``(T, B, n_outputs)`` (``pool="none"``):

.. math::
    h^{(0)} = W_e x + c_e, \quad h^{(i+1)} = \mathrm{Block}_i(h^{(i)}), \quad
    \text{logits} = W_o\, \mathrm{pool}_t\big(\mathrm{N_{final}}(h^{(n)})\big) + c_o,

with :math:`\mathrm{N_{final}}` the norm when ``prenorm=True`` (the authors' ``SequenceModel``,
``backbones/model.py:102-108``) and the identity otherwise. Every layer exchanges only binary spikes.

The defaults (S4D-Lin kernel, post-norm residual block with LayerNorm, no GELU after the SSM, threshold
inference) are this package's v0.1 model, *not* the authors' setting. The authors' (ps)MNIST model is
``kernel="dplr"`` (S4, HiPPO-LegS), ``two_sided=True``, ``prenorm=True``, ``residual=False``,
``norm="batch"``, ``ssm_activation=True``, ``tie_dropout=True``, ``dropout=0.1`` and samplers with
``eval_mode="sample"``: ``configs/pspikessm_smnist.yaml`` / ``pspikessm_psmnist.yaml``
(``docs/fidelity/pspikessm.md`` lists every ingredient).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.call_statistics import CallStatistics
from lightning_snn.models.network import Network
from lightning_snn.models.pspikessm_block import PSpikeSSMBlock
from lightning_snn.neurons.spike_sampler import NORMS as SAMPLER_NORMS

POOLS = ("mean", "last", "none")


class PSpikeSSM(Network):
    """Encoder → ``n_layers`` × block (→ final norm) → pooling → Linear head.

    The block options (``kernel``, ``l_max``, ``two_sided``, ``prenorm``, ``residual``, ``ssm_activation``,
    ``tie_dropout``, ``bidirectional``) are those of
    :class:`~lightning_snn.models.pspikessm_block.PSpikeSSMBlock`; ``init`` is ``"lin"`` / ``"inv"`` for
    S4D (default ``"lin"``) and ``"legs"`` for DPLR (the default there); ``sampler`` holds the keyword
    arguments of every :class:`~lightning_snn.neurons.spike_sampler.SpikeSampler` (e.g. ``eval_mode``).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        d_model: int = 400,
        d_state: int = 64,
        n_layers: int = 2,
        init: str | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dropout: float = 0.0,
        norm: str = "layer",
        pool: str = "mean",
        seed: int | None = None,
        sampler: dict[str, Any] | None = None,
        kernel: str = "s4d",
        l_max: int | None = None,
        two_sided: bool = False,
        prenorm: bool = False,
        residual: bool = True,
        ssm_activation: bool = False,
        tie_dropout: bool = False,
        bidirectional: bool = False,
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
        if norm not in SAMPLER_NORMS:
            raise ValueError(f"PSpikeSSM: unknown norm {norm!r}; expected one of {SAMPLER_NORMS}.")
        options = dict(
            kernel=kernel,
            l_max=l_max,
            two_sided=two_sided,
            prenorm=prenorm,
            residual=residual,
            ssm_activation=ssm_activation,
            tie_dropout=tie_dropout,
            bidirectional=bidirectional,
        )
        self.blocks = nn.ModuleList(
            PSpikeSSMBlock(
                d_model, d_state, init, dt_min, dt_max, dropout, norm, self._seeds(seed, i), sampler, **options
            )
            for i in range(n_layers)
        )
        if prenorm and norm != "none":
            self.final_norm = nn.BatchNorm1d(d_model) if norm == "batch" else nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    @staticmethod
    def _seeds(seed: int | None, layer: int) -> tuple[int | None, int | None]:
        return (None, None) if seed is None else (seed + 2 * layer, seed + 2 * layer + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_inputs)`` → logits ``(B, n_outputs)`` or, with ``pool="none"``, ``(T, B, n_outputs)``."""
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h)
        final_norm = getattr(self, "final_norm", None)
        if isinstance(final_norm, nn.BatchNorm1d):  # statistics over time and batch
            h = final_norm(h.flatten(0, 1)).view_as(h)
        elif final_norm is not None:
            h = final_norm(h)
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
