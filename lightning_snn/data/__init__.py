"""LightningDataModules; every batch is time-major ``(T, B, ...)``."""
from lightning_snn.data.collate import time_major_collate
from lightning_snn.data.mtsxor import MTSXORDataModule, generate_mtsxor

__all__ = ["MTSXORDataModule", "generate_mtsxor", "time_major_collate"]
