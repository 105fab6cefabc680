"""Input validation at the edge: once per network call, never a host-device sync in a forward pass.

A time-major module checks its input's shape and dtype (:func:`check_time_major`) only when it is the
outermost lightning_snn module of the call: a :class:`~lightning_snn.models.network.Network` checks the
network input once and marks the call, and the layers inside it skip their own checks
(:func:`check_layer_input`). A layer called on its own (outside any network) checks its input itself.

NaN and inf are *not* looked for by default: ``torch.isnan(x).any()`` reads a value back from the
device and stalls a GPU pipeline. Training runs are guarded by
:class:`~lightning_snn.callbacks.NonFiniteGuard` (loss, gradients, parameters). To find the first layer
that receives a non-finite value, turn on the debug checks, which run in every layer::

    with lightning_snn.validation.nan_checks():
        network(x)

or set the environment variable ``LIGHTNING_SNN_CHECK_NAN=1`` for a whole run.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator

import torch

_INSIDE_NETWORK: contextvars.ContextVar[bool] = contextvars.ContextVar("lightning_snn_inside_network", default=False)
_NAN_CHECKS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("lightning_snn_nan_checks", default=None)


def nan_checks_enabled() -> bool:
    """True inside :func:`nan_checks` or when ``LIGHTNING_SNN_CHECK_NAN=1``."""
    enabled = _NAN_CHECKS.get()
    return enabled if enabled is not None else os.environ.get("LIGHTNING_SNN_CHECK_NAN", "0") == "1"


@contextlib.contextmanager
def nan_checks(enabled: bool = True) -> Iterator[None]:
    """Debug mode: every layer raises on a NaN in its input (one host sync per layer call)."""
    token = _NAN_CHECKS.set(enabled)
    try:
        yield
    finally:
        _NAN_CHECKS.reset(token)


@contextlib.contextmanager
def network_call() -> Iterator[bool]:
    """Mark a network's forward pass; yields True when this call is the outermost one (the edge)."""
    if _INSIDE_NETWORK.get():
        yield False
        return
    token = _INSIDE_NETWORK.set(True)
    try:
        yield True
    finally:
        _INSIDE_NETWORK.reset(token)


def check_nan(x: torch.Tensor, where: str, what: str = "input") -> None:
    """Raise a ``ValueError`` if ``x`` holds a NaN or ±inf (a host sync: debug mode only)."""
    if not bool(torch.isfinite(x).all()):
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        kind = "NaN" if n_nan else "inf"
        raise ValueError(
            f"{where} received {kind} in its {what} of shape {tuple(x.shape)} "
            f"({n_nan} NaN and {n_inf} inf of {x.numel()} values)."
        )


def check_tensor(x: object, where: str) -> None:
    """Raise a ``TypeError`` unless ``x`` is a ``torch.Tensor`` (a numpy array, a list...)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{where} expects a torch.Tensor of shape (T, B, C); got {type(x).__module__}.{type(x).__name__}. "
            "Convert it first, e.g. torch.as_tensor(x, dtype=torch.float32)."
        )


def check_time_major(x: torch.Tensor, n_features: int, where: str) -> None:
    """Raise unless ``x`` is a floating-point ``torch.Tensor`` of shape ``(T, B, n_features)``, T, B >= 1.

    Checks, from the tensor's metadata only (no sync): the type (``TypeError`` for a numpy array or
    anything else that is not a tensor), the shape (three dimensions, the last ``n_features``, at
    least one step and one sample: ``ValueError``) and the dtype (floating point: ``ValueError``).
    It does *not* look at values; NaN and inf are looked for only in debug mode (:func:`nan_checks`).
    A floating dtype other than the module's is accepted: see :func:`match_dtype`.
    """
    check_tensor(x, where)
    if x.dim() != 3 or x.shape[-1] != n_features or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"{where} expects time-major input (T, B, {n_features}) with T >= 1 and B >= 1; "
            f"got shape {tuple(x.shape)}. Batches are (T, B, C): transpose batch-major data with x.transpose(0, 1)."
        )
    if not x.is_floating_point():
        raise ValueError(f"{where} expects a floating-point input, got {x.dtype}; cast event frames with x.float().")
    if nan_checks_enabled():
        check_nan(x, where)


def match_dtype(x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``x`` cast to ``dtype`` (the module's parameter dtype) unless autocast is on or it already matches.

    Lets a float16/bfloat16/float64 input reach a float32 ``Linear`` or ``Conv`` outside autocast
    (the output then has the module's dtype). Reads metadata only."""
    if dtype is None or x.dtype == dtype or not x.is_floating_point() or torch.is_autocast_enabled(x.device.type):
        return x
    return x.to(dtype)


def check_int(value: object, name: str, where: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int``: ``TypeError`` unless it is an integer (``bool`` and floats such as 2.0
    are not), ``ValueError`` outside ``[minimum, maximum]`` (``None``: unbounded)."""
    bounds = "".join(
        [f" >= {minimum}" if minimum is not None else "", f" and <= {maximum}" if maximum is not None else ""]
    )
    if isinstance(value, bool) or not (isinstance(value, int) or _is_integer_like(value)):
        raise TypeError(f"{where}: {name} must be an integer{bounds}, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{where}: {name} must be an integer{bounds}, got {value}.")
    return value


def _is_integer_like(value: object) -> bool:
    """numpy integers and 0-dim integer tensors count as integers; floats (even 2.0) do not."""
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_floating_point() and not value.is_complex()
    return type(value).__module__ == "numpy" and "int" in type(value).__name__


def check_finite_number(value: object, name: str, where: str) -> float:
    """``value`` as a finite ``float``: ``TypeError`` unless it is a real number, ``ValueError`` for NaN/±inf."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a finite number, got {value!r} ({type(value).__name__}).") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: {name} must be a finite number, got {number}.")
    return number


def check_layer_input(x: torch.Tensor, n_features: int, where: str) -> None:
    """A layer's input check: the full check at the edge, nothing inside a network (but NaN in debug mode)."""
    if not _INSIDE_NETWORK.get():
        check_time_major(x, n_features, where)
    elif nan_checks_enabled():
        check_nan(x, where)
