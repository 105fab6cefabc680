r"""Export to and import from NIR, the Neuromorphic Intermediate Representation (``pip install nir``).

- :func:`to_nir` (:mod:`~lightning_snn.nir.export`): FeedForwardSNN, DelaySNN (eval mode, integer delays)
  and ConvSNN as a ``nir.NIRGraph``; write it with ``nir.write(path, graph)``.
- :func:`from_nir` (:mod:`~lightning_snn.nir.import_graph`): a ``nir.NIRGraph`` (ours, or snnTorch's) as a
  time-major module.
- :func:`export_checkpoint` (:mod:`~lightning_snn.nir.command`): a SpikingClassifier checkpoint to a
  ``.nir`` file (``python -m lightning_snn export --ckpt_path ... --output model.nir``).

The mapping and why the round trip is exact: :mod:`lightning_snn.nir.convention` and ``docs/nir.md``.
"""

from lightning_snn.nir.command import export_checkpoint
from lightning_snn.nir.errors import NIRExportError, NIRImportError, NIRLossyWarning
from lightning_snn.nir.export import to_nir
from lightning_snn.nir.import_graph import NIRNetwork, from_nir

__all__ = [
    "NIRExportError",
    "NIRImportError",
    "NIRLossyWarning",
    "NIRNetwork",
    "export_checkpoint",
    "from_nir",
    "to_nir",
]
