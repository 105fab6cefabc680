r"""``SpikeSampler``: the stochastic spiking neuron of P-SpikeSSM (Bal & Sengupta, ICLR 2025).

Per channel :math:`h`, a learnable affine map then a Bernoulli draw:

.. math::
    y = a_h x + b_h, \qquad s \sim \mathrm{Bernoulli}(\mathrm{clamp}(y, 0, 1)), \quad
    \text{implemented as } s = \mathbb{1}[y > U],\ U \sim \mathcal U[0, 1),

optionally with a normalisation between the affine map and the draw, :math:`y = \mathrm{Norm}(a_h x + b_h)`
(``norm="batch"`` or ``"layer"``: the authors' pre-norm block, ``backbones/block.py:165-175``), and
with the stochastic surrogate gradient :math:`\partial s/\partial y = \mathbb{1}[0 < y < 1]`
(swappable, see :mod:`lightning_snn.functional.sampling`). The clamp of the preceding ``ClampFuse`` lives
here.

Randomness: the draws of :math:`U` come from a ``torch.Generator`` owned by the module (one per device
type, seeded from ``seed``). Its state is part of the module's ``state_dict`` (``_extra_state``), hence of
every Lightning checkpoint, so a resumed run draws the same spikes as an uninterrupted one. ``seed=None``
takes a seed from the global torch RNG at construction (reproducible under ``seed_everything`` and
different for every sampler of a network).

In eval mode, ``eval_mode`` picks ``"threshold"`` (spike iff clamp(y) > 0.5, deterministic),
``"expectation"`` (emit clamp(y, 0, 1), deterministic) or ``"sample"`` (keep sampling, from a
fixed-seed generator on every call that never advances the checkpointed training generator).
A caller can pass the uniforms ``U`` itself (``forward(x, uniform=U)``, drawn with :meth:`SpikeSampler.draw_uniform`
of this or another sampler): the authors' bidirectional block reuses one draw for several samplers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn import validation
from lightning_snn.call_statistics import spike_rate
from lightning_snn.functional.sampling import (
    SurrogateGrad,
    bernoulli_spikes,
    check_probabilities,
    deterministic_spikes,
    resolve_sampling_surrogate,
)

EVAL_MODES = ("threshold", "expectation", "sample")
NORMS = ("none", "batch", "layer")


#: Mixed into the seed of the evaluation-time generator (``eval_mode="sample"``).
EVAL_SEED_SALT = 0x5EED_E7A1


class SpikeSampler(nn.Module):
    """Affine + Bernoulli spike sampler over ``(T, B, C)`` (see the module docstring)."""

    def __init__(
        self,
        n_channels: int,
        scale: float = 1.0,
        bias: float = 0.0,
        learn_affine: bool = True,
        surrogate: str | SurrogateGrad = "clamp",
        eval_mode: str = "threshold",
        seed: int | None = None,
        norm: str = "none",
    ) -> None:
        super().__init__()
        n_channels = validation.check_int(n_channels, "n_channels", "SpikeSampler")
        scale = validation.check_finite_number(scale, "scale", "SpikeSampler")
        bias = validation.check_finite_number(bias, "bias", "SpikeSampler")
        if seed is not None:  # torch.Generator.manual_seed takes [0, 2**64 - 1] (negative ones wrap)
            seed = validation.check_int(seed, "seed", "SpikeSampler", minimum=0, maximum=2**64 - 1)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"SpikeSampler: unknown eval_mode {eval_mode!r}; expected one of {EVAL_MODES}.")
        if norm not in NORMS:
            raise ValueError(f"SpikeSampler: unknown norm {norm!r}; expected one of {NORMS}.")
        self.norm_kind = norm
        if norm == "batch":
            self.norm = nn.BatchNorm1d(n_channels)
        elif norm == "layer":
            self.norm = nn.LayerNorm(n_channels)
        self.surrogate = resolve_sampling_surrogate(surrogate)
        self.n_channels, self.eval_mode = n_channels, eval_mode
        a, b = torch.full((n_channels,), float(scale)), torch.full((n_channels,), float(bias))
        if learn_affine:
            self.scale, self.bias = nn.Parameter(a), nn.Parameter(b)
        else:
            self.register_buffer("scale", a)
            self.register_buffer("bias", b)
        self.seed = int(torch.randint(0, 2**62, ()).item()) if seed is None else seed
        self._generators: dict[str, torch.Generator] = {}
        self._pending: dict[str, torch.Tensor] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        """The module's generator for ``device``'s type, created (and restored if pending) on first use."""
        kind = torch.device(device).type
        if kind not in self._generators:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            if kind in self._pending:
                gen.set_state(self._pending.pop(kind))
            self._generators[kind] = gen
        elif self._generators[kind].device != torch.device(device):  # e.g. moved from cuda:0 to cuda:1
            moved = torch.Generator(device=device)
            moved.set_state(self._generators[kind].get_state())
            self._generators[kind] = moved
        return self._generators[kind]

    def _sampling_generator(self, device: torch.device) -> torch.Generator:
        """Training draws advance the checkpointed generator. Evaluation in ``"sample"`` mode draws from
        a fresh generator with a fixed seed on every call, so validation (Lightning's sanity check
        included) never shifts the training noise and a resumed run equals an uninterrupted one."""
        if self.training:
            return self.generator(device)
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed ^ EVAL_SEED_SALT)
        return gen

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Unclamped spike probabilities ``y = a·x + b`` (then ``Norm(y)`` with ``norm``)."""
        y = self.scale * x + self.bias
        if self.norm_kind == "batch":  # statistics over time and batch, as S4's BatchNorm on (B, L, H)
            return self.norm(y.flatten(0, -2)).view_as(y)
        if self.norm_kind == "layer":
            return self.norm(y)
        return y

    def draw_uniform(self, like: torch.Tensor) -> torch.Tensor:
        """Uniforms ``U`` shaped like ``like`` from this sampler's generator (the one :meth:`forward` uses)."""
        gen = self._sampling_generator(like.device)
        return torch.rand(like.shape, generator=gen, device=like.device, dtype=like.dtype)

    def forward(self, x: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """``(T, B, C)`` → spikes ``(T, B, C)`` (or probabilities in ``"expectation"`` eval mode).

        ``uniform``: the draws ``U`` to use instead of this sampler's own (ignored by deterministic eval)."""
        if uniform is not None:
            validation.check_layer_input(x, self.n_channels, type(self).__name__)
            y = self.probabilities(x)
            if self.training or self.eval_mode == "sample":
                return bernoulli_spikes(y, uniform.to(y.dtype), self.surrogate)
            return deterministic_spikes(y, self.eval_mode)
        ctx = stream.active()
        if ctx is not None:  # inside Network.forward_with_state
            return stream.stream_call(ctx, self, lambda state: self.forward_with_state(x, state))
        return self._forward(x, None)[0]

    def forward_with_state(
        self, x: torch.Tensor, state: stream.SamplerState | None = None
    ) -> tuple[torch.Tensor, stream.SamplerState | None]:
        """``(spikes, state)``. Deterministic eval modes have no state (``None``). When drawing, the state is
        the generator's position after this chunk; given back, the next chunk continues the same stream
        of uniforms (``None``: the module's own generator, as a plain call). Whether the chunks' draws
        equal one pass's depends on the generator filling ``(T, B, C)`` in memory order (see
        ``docs/streaming.md``)."""
        return self._forward(x, state)

    def _forward(self, x: torch.Tensor, state: stream.SamplerState | None):
        validation.check_layer_input(x, self.n_channels, type(self).__name__)
        y = self.probabilities(x)
        if validation.nan_checks_enabled():  # a host sync: debug mode only
            check_probabilities(y, type(self).__name__)
        if self.training or self.eval_mode == "sample":
            gen = self._sampling_generator(y.device)
            if state is not None:
                gen.set_state(state.generator)
            uniform = torch.rand(y.shape, generator=gen, device=y.device, dtype=y.dtype)
            return bernoulli_spikes(y, uniform, self.surrogate), stream.SamplerState(gen.get_state())
        return deterministic_spikes(y, self.eval_mode), None

    call_statistics = staticmethod(spike_rate)

    def get_extra_state(self) -> dict[str, Any]:
        if "cpu" not in self._generators and "cpu" not in self._pending:
            self.generator(torch.device("cpu"))
        states = {kind: gen.get_state() for kind, gen in self._generators.items()}
        states.update({kind: s.clone() for kind, s in self._pending.items()})
        return {"seed": self.seed, "generator_states": states}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "generator_states" not in state:
            raise ValueError(
                "SpikeSampler: the checkpoint's extra state is not a sampler state "
                f"(got {type(state).__name__}); was it saved by another module version?"
            )
        self.seed = int(state["seed"])
        self._generators, self._pending = {}, {k: v.clone().cpu() for k, v in state["generator_states"].items()}

    def extra_repr(self) -> str:
        norm = "" if self.norm_kind == "none" else f", norm={self.norm_kind!r}"
        return f"n_channels={self.n_channels}, eval_mode={self.eval_mode!r}, seed={self.seed}{norm}"
