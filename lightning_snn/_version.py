"""The package version, defined here only: ``pyproject.toml`` reads it (setuptools ``dynamic``, by static
analysis, so the build needs no torch) and ``lightning_snn.__version__`` re-exports it."""

__version__ = "0.1.0"
