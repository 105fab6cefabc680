r"""The convention that maps our discrete LIF onto NIR's continuous-time neurons, and back, exactly.

NIR (1.0) describes neurons in continuous time, without a ``dt``:

.. math::
    \tau \dot v = (v_{leak} - v) + R\,I, \qquad z = [v > v_{thr}], \qquad v \leftarrow v_{reset} \text{ when } z = 1.

Our LIF (:mod:`lightning_snn.functional.lif`, hard reset) is the discrete update

.. math::
    H[t] = V_r + \beta\,(V[t-1] - V_r) + c\,X[t], \quad S[t] = [H[t] \ge \theta], \quad
    V[t] = H[t]\,(1 - S[t]) + V_r\,S[t], \qquad c = 1 - \beta \text{ if decay\_input else } 1.

With a step ``dt`` (seconds) and the input held over the step, NIR's equation discretises to
:math:`v[t] = v_{leak} + \beta(v[t-1] - v_{leak}) + (1-\beta) R\,I[t]` with

- ``"euler"`` (forward Euler; snnTorch's and PLIF's convention, the default): :math:`\beta = 1 - dt/\tau`,
  i.e. :math:`\tau = dt / (1 - \beta)`;
- ``"exact"`` (exact exponential, zero-order hold): :math:`\beta = e^{-dt/\tau}`, i.e. :math:`\tau = -dt/\ln\beta`.

Both give the input gain :math:`(1 - \beta) R`, so :math:`R = 1` for ``decay_input=True`` and
:math:`R = 1/(1-\beta) = \tau/dt` (Euler) for ``decay_input=False``, whichever discretisation; and
:math:`v_{leak} = v_{reset} = V_r`. Only τ depends on the choice, and the importer must use the
exporter's (the graph records it in its metadata, ``lightning_snn.discretisation``).

**Bit-exact round trip.** Parameters are written in float64. τ is nudged, one float64 ulp at a time,
until :func:`decay_from_tau` (what the importer computes) gives back exactly the network's β in its own
dtype. NIR fires on :math:`v > v_{thr}`, we fire on :math:`H \ge \theta`: for a membrane ``H`` of the
network's float dtype, :math:`H \ge \theta \iff H > \mathrm{nextafter}(\theta, -\infty)`, so the graph
holds :math:`v_{thr} = \mathrm{nextafter}(\theta, -\infty)` and the importer takes the smallest float
above :math:`v_{thr}`. A consumer that fires on :math:`v > v_{thr}` in the same dtype (snnTorch) therefore
fires on exactly the same steps.
"""

from __future__ import annotations

import numpy as np
import torch

DISCRETISATIONS = ("euler", "exact")
#: Relative tolerance for recognising ``R·(1-β) = 1`` (``decay_input=False``) in a graph written in float32.
GAIN_RTOL = 1e-5


def check_discretisation(discretisation: str) -> str:
    if discretisation not in DISCRETISATIONS:
        raise ValueError(f"discretisation must be one of {DISCRETISATIONS}, got {discretisation!r}.")
    return discretisation


def check_dt(dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or not dt > 0:
        raise ValueError(f"dt must be a finite number of seconds > 0 (e.g. 1e-4, snnTorch's), got {dt!r}.")
    return float(dt)


def tau_from_decay(beta: np.ndarray, dt: float, discretisation: str) -> np.ndarray:
    r"""τ in seconds (float64) for a per-step decay β: :math:`dt/(1-\beta)` (Euler) or :math:`-dt/\ln\beta`."""
    beta = np.asarray(beta, dtype=np.float64)
    if discretisation == "euler":
        return dt / (1.0 - beta)
    return -dt / np.log(beta)


def decay_from_tau(tau: np.ndarray, dt: float, discretisation: str) -> np.ndarray:
    r"""The per-step decay (float64) for τ in seconds: :math:`1 - dt/\tau` (Euler) or :math:`e^{-dt/\tau}`."""
    tau = np.asarray(tau, dtype=np.float64)
    if discretisation == "euler":
        return 1.0 - dt / tau
    return np.exp(-dt / tau)


def numpy_dtype(dtype: torch.dtype) -> type:
    return {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}.get(dtype, np.float32)


def export_tau(beta: torch.Tensor, dt: float, discretisation: str) -> np.ndarray:
    """τ (float64 seconds) whose :func:`decay_from_tau`, rounded to β's dtype, is exactly β (nudged ≤ 64 ulps)."""
    target = beta.detach().cpu().numpy()
    kind = target.dtype.type
    tau = tau_from_decay(target, dt, discretisation)
    for _ in range(64):
        got = decay_from_tau(tau, dt, discretisation).astype(kind)
        wrong = got != target
        if not wrong.any():
            break
        # β grows with τ in both forms: a β too small needs a larger τ
        tau = np.where(wrong, np.nextafter(tau, np.where(got < target, np.inf, -np.inf)), tau)
    return tau


def threshold_to_nir(theta: torch.Tensor) -> np.ndarray:
    """NIR's ``v_threshold`` (float64) for our θ: the largest float of θ's dtype below θ (``≥ θ`` ⟺ ``> v_thr``)."""
    t = theta.detach().cpu().numpy()
    return np.nextafter(t, np.array(-np.inf, dtype=t.dtype)).astype(np.float64)


def threshold_from_nir(v_threshold: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Our θ for NIR's ``v_threshold``: the smallest float of ``dtype`` strictly above it (``> v_thr`` ⟺ ``≥ θ``)."""
    v = np.asarray(v_threshold, dtype=np.float64)
    kind = numpy_dtype(dtype)
    theta = v.astype(kind)
    theta = np.where(theta.astype(np.float64) <= v, np.nextafter(theta, np.array(np.inf, dtype=kind)), theta)
    return torch.as_tensor(np.ascontiguousarray(theta), dtype=dtype)


def resistance(beta: np.ndarray, decay_input: bool) -> np.ndarray:
    r"""NIR's R for our input gain c: 1 (``decay_input``, c = 1-β) or :math:`1/(1-\beta)` (c = 1)."""
    beta = np.asarray(beta, dtype=np.float64)
    return np.ones_like(beta) if decay_input else 1.0 / (1.0 - beta)


def input_gain(r: np.ndarray, beta: np.ndarray) -> tuple[bool, np.ndarray | None]:
    """``(decay_input, extra_gain)`` that reproduce NIR's input gain ``(1-β)·R``.

    ``R == 1`` → ``decay_input=True``; ``R·(1-β) ≈ 1`` (within :data:`GAIN_RTOL`) → ``decay_input=False``;
    otherwise ``decay_input=False`` with the per-neuron gain ``(1-β)·R`` applied to the input first."""
    r = np.asarray(r, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if np.all(r == 1.0):
        return True, None
    gain = r * (1.0 - beta)
    if np.allclose(gain, 1.0, rtol=GAIN_RTOL, atol=0.0):
        return False, None
    return False, gain
