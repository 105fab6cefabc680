"""LightningModules."""

from lightning_snn.lit.classifier import SpikingClassifier

__all__ = ["SpikingClassifier"]
