"""nn.Modules that own neuron parameters; time-major multi-step forward, no state between calls."""

from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF
from lightning_snn.neurons.spike_sampler import SpikeSampler
from lightning_snn.neurons.time_constant import TimeConstant

__all__ = ["LeakyReadout", "LearnableLIF", "SpikeSampler", "TimeConstant"]
