"""Errors and warnings of the NIR export and import: each names the node, the value, the expected form and
the fix."""

from __future__ import annotations

import warnings


class NIRExportError(ValueError):
    """A network (or one of its nodes) that NIR cannot express exactly; the message names the node."""


class NIRImportError(ValueError):
    """A NIR graph (or one of its nodes) that :func:`lightning_snn.nir.from_nir` cannot run exactly."""


class NIRLossyWarning(UserWarning):
    """``to_nir(..., lossy=True)`` changed the network to export it; the message lists every change."""


class Changes:
    """The approximations a ``lossy=True`` export makes, or the refusals of a strict one.

    ``refuse(node, reason, fix)`` raises :class:`NIRExportError` unless ``lossy``; then the change
    (``approximation``) is recorded and :meth:`warn` lists them all once, at the end of the export.
    """

    def __init__(self, lossy: bool) -> None:
        self.lossy = lossy
        self.items: list[str] = []

    def refuse(self, node: str, reason: str, fix: str, approximation: str | None) -> None:
        if not self.lossy or approximation is None:
            lossy_hint = " or pass lossy=True to export an approximation" if approximation else ""
            raise NIRExportError(f"NIR export: node {node!r}: {reason}. Fix: {fix}{lossy_hint}.")
        self.items.append(f"{node!r}: {approximation}")

    def warn(self) -> None:
        if self.items:
            listed = "\n  - ".join(self.items)
            warnings.warn(
                f"to_nir(lossy=True) exported an approximation; {len(self.items)} change(s):\n  - {listed}",
                NIRLossyWarning,
                stacklevel=3,
            )
