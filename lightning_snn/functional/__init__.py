"""Pure tensor functions: no nn.Module, no state."""

from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference, lif_step
from lightning_snn.functional.surrogates import Surrogate, heaviside
from lightning_snn.functional.tau import decay_from_raw, raw_from_tau, tau_from_decay

__all__ = [
    "LIFConfig",
    "Surrogate",
    "decay_from_raw",
    "heaviside",
    "leaky_integrate",
    "lif_reference",
    "lif_step",
    "raw_from_tau",
    "tau_from_decay",
]
