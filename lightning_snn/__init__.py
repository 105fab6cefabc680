"""lightning-snn: Lightning plugin for spiking networks with learned temporal parameters."""

from lightning_snn._version import __version__ as __version__
from lightning_snn.callbacks import (
    DelaySigmaSchedule,
    NonFiniteError,
    NonFiniteGuard,
    Rewiring,
    RNGStateCheckpoint,
    TemporalStatsLogger,
)
from lightning_snn.data import (
    CIFAR10DVSDataModule,
    DelayTaskDataModule,
    DVSGestureDataModule,
    MTSXORDataModule,
    NMNISTDataModule,
    SequentialDigitsDataModule,
    SequentialMNISTDataModule,
    SHDDataModule,
    SSCDataModule,
)
from lightning_snn.layers import ClampFuse, DelayedLinear, IntegerDelayLinear, S4DLayer, S4DPLRLayer, SpikeMixer
from lightning_snn.lit import SpikingClassifier
from lightning_snn.models import ConvSNN, DelaySNN, FeedForwardSNN, PSpikeSSM, PSpikeSSMBlock, TemporalConvSNN
from lightning_snn.neurons import LeakyReadout, LearnableLIF, SpikeSampler, TimeConstant
from lightning_snn.schedules import TauSchedule, hierarchical_kernels, hierarchical_tau

__all__ = [
    "CIFAR10DVSDataModule",
    "ClampFuse",
    "ConvSNN",
    "DVSGestureDataModule",
    "DelaySNN",
    "DelaySigmaSchedule",
    "DelayTaskDataModule",
    "DelayedLinear",
    "FeedForwardSNN",
    "IntegerDelayLinear",
    "LeakyReadout",
    "LearnableLIF",
    "MTSXORDataModule",
    "NMNISTDataModule",
    "NonFiniteError",
    "NonFiniteGuard",
    "PSpikeSSM",
    "PSpikeSSMBlock",
    "RNGStateCheckpoint",
    "Rewiring",
    "S4DLayer",
    "S4DPLRLayer",
    "SHDDataModule",
    "SSCDataModule",
    "SequentialDigitsDataModule",
    "SequentialMNISTDataModule",
    "SpikeMixer",
    "SpikeSampler",
    "SpikingClassifier",
    "TauSchedule",
    "TemporalConvSNN",
    "TemporalStatsLogger",
    "TimeConstant",
    "hierarchical_kernels",
    "hierarchical_tau",
]
