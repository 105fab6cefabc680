"""Lightning callbacks."""

from lightning_snn.callbacks.delay_sigma import DelaySigmaSchedule
from lightning_snn.callbacks.non_finite_guard import NonFiniteError, NonFiniteGuard
from lightning_snn.callbacks.rewiring import Rewiring
from lightning_snn.callbacks.rng_state import RNGStateCheckpoint
from lightning_snn.callbacks.temporal_stats import TemporalStatsLogger

__all__ = [
    "DelaySigmaSchedule",
    "NonFiniteError",
    "NonFiniteGuard",
    "RNGStateCheckpoint",
    "Rewiring",
    "TemporalStatsLogger",
]
