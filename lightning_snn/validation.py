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


def check_nan(x: torch.Tensor, where: str) -> None:
    """Raise a ``ValueError`` if ``x`` holds a NaN (a host sync: debug mode only)."""
    if torch.isnan(x).any():
        raise ValueError(
            f"{where} received NaN in its input of shape {tuple(x.shape)} "
            f"({int(torch.isnan(x).sum())} of {x.numel()} values)."
        )


def check_time_major(x: torch.Tensor, n_features: int, where: str) -> None:
    """Raise a ``ValueError`` unless ``x`` is a floating-point ``(T, B, n_features)`` tensor with T >= 1.

    Reads only the tensor's metadata (no sync); looks for NaN too in debug mode (:func:`nan_checks`).
    """
    if x.dim() != 3 or x.shape[-1] != n_features or x.shape[0] < 1:
        raise ValueError(
            f"{where} expects time-major input (T, B, {n_features}) with T >= 1; got shape {tuple(x.shape)}. "
            "Batches are (T, B, C): transpose batch-major data with x.transpose(0, 1)."
        )
    if not x.is_floating_point():
        raise ValueError(f"{where} expects a floating-point input, got {x.dtype}; cast event frames with x.float().")
    if nan_checks_enabled():
        check_nan(x, where)


def check_layer_input(x: torch.Tensor, n_features: int, where: str) -> None:
    """A layer's input check: the full check at the edge, nothing inside a network (but NaN in debug mode)."""
    if not _INSIDE_NETWORK.get():
        check_time_major(x, n_features, where)
    elif nan_checks_enabled():
        check_nan(x, where)
