"""Lightning callbacks."""
from lightning_snn.callbacks.temporal_stats import TemporalStatsLogger

__all__ = ["TemporalStatsLogger"]
