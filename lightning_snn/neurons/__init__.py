"""nn.Modules that own neuron parameters; time-major multi-step forward, no state between calls."""

from lightning_snn.neurons.hsnn_lif import HSNNLIF
from lightning_snn.neurons.hsnn_readout import HSNNReadout
from lightning_snn.neurons.lagged_lif import LaggedLeakyReadout, LaggedLIF
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF
from lightning_snn.neurons.spike_sampler import SpikeSampler
from lightning_snn.neurons.time_constant import TimeConstant

__all__ = [
    "HSNNLIF",
    "HSNNReadout",
    "LaggedLIF",
    "LaggedLeakyReadout",
    "LeakyReadout",
    "LearnableLIF",
    "SpikeSampler",
    "TimeConstant",
]
