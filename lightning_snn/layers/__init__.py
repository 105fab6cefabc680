"""Synapse layers: delays (DCLS), temporal convolution, SSM, SpikeMixer / ClampFuse."""

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.integer_delay import IntegerDelayLinear
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer
from lightning_snn.layers.ssm import S4DLayer, S4DPLRLayer
from lightning_snn.layers.temporal_conv import CausalConv1d

__all__ = ["CausalConv1d", "ClampFuse", "DelayedLinear", "IntegerDelayLinear", "S4DLayer", "S4DPLRLayer", "SpikeMixer"]
