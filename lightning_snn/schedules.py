r"""Hierarchical initialisation schedules across layers (Moro et al. 2024, paper A).

τ per hidden layer :math:`l = 0..L-1`, with :math:`x_l = \mathrm{linspace}(-1, 1, L)`:

- ``constant``:  :math:`\tau_l = \bar\tau`
- ``linear``:    :math:`\tau_l = \bar\tau + \frac{\Delta\tau}{2} x_l`  (the authors' ``linspace``)
- ``geometric``: :math:`\tau_l = \sqrt{\tau_0 \tau_{L-1}}\,(\tau_{L-1}/\tau_0)^{x_l/2}` with the same end
  values :math:`\bar\tau \mp \Delta\tau/2` as ``linear``
- ``tanh``:      :math:`\tau_l = \bar\tau + \Delta\tau\,(r_l - \tfrac12)`,
  :math:`r_l = \frac{h_l - \min h}{\max h - \min h}`, :math:`h_l = \tanh(2 s (u_l - c))`,
  :math:`u_l = \mathrm{linspace}(0, 1, L)`: the authors' rescaled tanh (``EIS-Hub/hSNN``
  ``utils_initialization.py:88-93``, with ``tanh_coef`` :math:`= 1/(2s)`, ``tanh_center`` :math:`= c`). With
  :math:`c = 1/2` it is :math:`\bar\tau + \frac{\Delta\tau}{2}\frac{\tanh(s x_l)}{\tanh s}`. Our default
  :math:`s = 2`; the authors' default ``tanh_coef = 0.5`` is :math:`s = 1` (the two differ from 4 layers on;
  for 2 or 3 layers any symmetric tanh equals ``linear``)

A positive Δτ makes τ grow with depth. Per-neuron jitter multiplies each τ by ``1 + U(-j, j)``
(``jitter_kind="uniform"``) or adds ``N(0, (j τ)^2)`` (``"normal"``), from a seeded generator.

Kernel-size and dilation schedules for temporal-convolution SNNs (paper A, claim 3) follow the same
profiles and are rounded to integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

KINDS = ("constant", "linear", "geometric", "tanh")
JITTER_KINDS = ("uniform", "normal")


def _profile(
    n_layers: int, low: float, high: float, kind: str, steepness: float = 2.0, center: float = 0.5
) -> list[float]:
    if kind not in KINDS:
        raise ValueError(f"Unknown schedule kind {kind!r}; expected one of {KINDS}.")
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}.")
    if kind == "constant" or n_layers == 1:
        return [(low + high) / 2] * n_layers
    x = torch.linspace(-1.0, 1.0, n_layers, dtype=torch.float64)
    mid, half = (low + high) / 2, (high - low) / 2
    if kind == "linear":
        values = mid + half * x
    elif kind == "tanh":
        h = torch.tanh(2 * steepness * ((x + 1) / 2 - center))
        values = low + (high - low) * (h - h.min()) / (h.max() - h.min())
    else:
        if low <= 0 or high <= 0:
            raise ValueError(f"A geometric schedule needs positive ends, got {low} and {high}.")
        values = math.sqrt(low * high) * (high / low) ** (x / 2)
    return values.tolist()


def hierarchical_tau(
    n_layers: int,
    mean: float,
    delta: float = 0.0,
    kind: str = "linear",
    jitter: float = 0.0,
    jitter_kind: str = "uniform",
    widths: Sequence[int] | None = None,
    seed: int = 0,
    tau_min: float = 0.0,
    steepness: float = 2.0,
    center: float = 0.5,
) -> list[torch.Tensor]:
    """Initial τ per layer: scalars, or ``(width,)`` vectors when ``widths`` is given.

    ``steepness`` and ``center`` shape the ``tanh`` kind only (see the module docstring).

    >>> [round(t.item(), 3) for t in hierarchical_tau(3, mean=30.0, delta=20.0)]
    [20.0, 30.0, 40.0]
    """
    low, high = mean - delta / 2, mean + delta / 2
    if min(low, high) <= tau_min:
        raise ValueError(
            f"Schedule ends mean -/+ delta/2 = ({low}, {high}) must be > tau_min={tau_min}; "
            "reduce |delta| or raise mean."
        )
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}.")
    if jitter_kind not in JITTER_KINDS:
        raise ValueError(f"Unknown jitter_kind {jitter_kind!r}; expected one of {JITTER_KINDS}.")
    if kind == "tanh" and not (math.isfinite(steepness) and steepness > 0 and math.isfinite(center)):
        raise ValueError(
            f"A tanh schedule needs steepness > 0 and a finite center; got steepness={steepness}, center={center} "
            "(the authors' tanh_coef is 1/(2*steepness): their default 0.5 is steepness 1; tanh_center default 0.5)."
        )
    if widths is not None and len(widths) != n_layers:
        raise ValueError(f"widths has {len(widths)} entries for n_layers={n_layers}; give one width per layer.")
    taus = [
        torch.tensor(t, dtype=torch.get_default_dtype()) for t in _profile(n_layers, low, high, kind, steepness, center)
    ]
    if widths is None:
        return taus
    gen = torch.Generator().manual_seed(seed)
    out = []
    for tau, width in zip(taus, widths):
        base = tau.expand(width)
        if jitter_kind == "uniform":
            noise = (torch.rand(width, generator=gen) * 2 - 1) * jitter
            vec = base * (1 + noise)
        else:
            vec = base + torch.randn(width, generator=gen) * jitter * base
        out.append(vec.clamp_min(tau_min + 1e-3 * abs(float(tau))))
    return out


@dataclass(frozen=True)
class TauSchedule:
    """A τ schedule as a config value: ``hierarchical_tau(n_layers, mean, delta, kind, jitter, ...)``."""

    mean: float
    delta: float = 0.0
    kind: str = "linear"
    jitter: float = 0.0
    jitter_kind: str = "uniform"
    per_neuron: bool = False
    seed: int = 0
    steepness: float = 2.0
    center: float = 0.5

    def resolve(self, widths: Sequence[int], tau_min: float = 0.0) -> list[torch.Tensor]:
        return hierarchical_tau(
            len(widths),
            self.mean,
            self.delta,
            self.kind,
            self.jitter,
            self.jitter_kind,
            widths if (self.per_neuron or self.jitter > 0) else None,
            self.seed,
            tau_min,
            self.steepness,
            self.center,
        )


def hierarchical_kernels(
    n_layers: int,
    kernel_size: tuple[int, int] | int = (3, 9),
    dilation: tuple[int, int] | int = (1, 4),
    kind: str = "linear",
) -> list[tuple[int, int]]:
    """``(kernel_size, dilation)`` per temporal-conv layer, growing from the first to the last value.

    ``kind="constant"`` is the homogeneous baseline: every layer gets the rounded mid value.

    >>> hierarchical_kernels(3, (3, 7), (1, 4))
    [(3, 1), (5, 2), (7, 4)]
    """

    def ends(v, name: str) -> tuple[int, int]:
        if isinstance(v, int):
            return v, v
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a (first layer, last layer) pair, got {v!r}.")
        return tuple(v)

    k_lo, k_hi = ends(kernel_size, "kernel_size")
    d_lo, d_hi = ends(dilation, "dilation")
    if min(k_lo, k_hi) < 1 or min(d_lo, d_hi) < 1:
        raise ValueError(f"kernel sizes and dilations must be >= 1, got {kernel_size} and {dilation}.")
    ks = _profile(n_layers, k_lo, k_hi, kind)
    ds = _profile(n_layers, d_lo, d_hi, kind)
    return [(int(round(k)), int(round(d))) for k, d in zip(ks, ds)]
