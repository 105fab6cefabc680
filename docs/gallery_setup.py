"""Run by sphinx-gallery before each tutorial (``reset_modules`` in ``conf.py``): keep the pages to what the
tutorial prints, without Lightning's start-up banners and third-party deprecation notices."""

from __future__ import annotations

import logging
import warnings


def quiet(gallery_conf, fname, when=None) -> None:
    import lightning.pytorch  # noqa: F401  (it sets its loggers' level when first imported)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
