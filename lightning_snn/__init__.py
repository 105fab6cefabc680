"""lightning-snn: Lightning plugin for spiking networks with learned temporal parameters."""
from lightning_snn.callbacks import TemporalStatsLogger
from lightning_snn.data import MTSXORDataModule
from lightning_snn.lit import SpikingClassifier
from lightning_snn.models import FeedForwardSNN
from lightning_snn.neurons import LeakyReadout, LearnableLIF, TimeConstant
from lightning_snn.schedules import TauSchedule, hierarchical_kernels, hierarchical_tau

__version__ = "0.1.0"

__all__ = [
    "FeedForwardSNN",
    "LeakyReadout",
    "LearnableLIF",
    "MTSXORDataModule",
    "SpikingClassifier",
    "TauSchedule",
    "TemporalStatsLogger",
    "TimeConstant",
    "hierarchical_kernels",
    "hierarchical_tau",
]
