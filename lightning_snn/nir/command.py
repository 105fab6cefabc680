"""``python -m lightning_snn export --ckpt_path model.ckpt --output model.nir``: a trained
SpikingClassifier's network written as a NIR file (see :func:`~lightning_snn.nir.to_nir`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning_snn.nir.errors import NIRExportError


def export_checkpoint(
    ckpt_path: str | Path, output: str | Path, dt: float = 1e-4, discretisation: str = "euler", lossy: bool = False
) -> Path:
    r"""Load ``SpikingClassifier`` from ``ckpt_path``, put it in eval mode, write ``to_nir(network, dt)`` to
    ``output`` (LIF: :math:`\tau = dt/(1-\beta)` for ``"euler"``, see :mod:`lightning_snn.nir.convention`).

    Raises :class:`~lightning_snn.nir.errors.NIRExportError` (naming the node) for a network NIR cannot express."""
    import nir

    from lightning_snn.lit.classifier import SpikingClassifier
    from lightning_snn.nir.export import to_nir

    ckpt_path, output = Path(ckpt_path), Path(output)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"export: checkpoint {str(ckpt_path)!r} does not exist; pass --ckpt_path <file.ckpt>.")
    network = SpikingClassifier.load_from_checkpoint(ckpt_path, map_location="cpu").network.eval()
    graph = to_nir(network, dt, discretisation=discretisation, lossy=lossy)
    output.parent.mkdir(parents=True, exist_ok=True)
    nir.write(output, graph)
    return output


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_snn export",
        description="Write a SpikingClassifier checkpoint's network as a NIR graph (HDF5 .nir file).",
    )
    parser.add_argument("--ckpt_path", required=True, help="a SpikingClassifier checkpoint (.ckpt)")
    parser.add_argument("--output", required=True, help="the .nir file to write")
    parser.add_argument("--dt", type=float, default=1e-4, help="seconds per time step (default 1e-4, snnTorch's)")
    parser.add_argument("--discretisation", choices=("euler", "exact"), default="euler")
    parser.add_argument(
        "--lossy", action="store_true", help="export an approximation (with a warning) when exact is impossible"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``export`` sub-command; returns the exit status (2 for an unsupported network)."""
    args = build_parser().parse_args(argv)
    try:
        path = export_checkpoint(args.ckpt_path, args.output, args.dt, args.discretisation, args.lossy)
    except (NIRExportError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
