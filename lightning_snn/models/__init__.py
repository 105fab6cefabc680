"""Networks assembled from neurons and synapse layers."""

from lightning_snn.models.conv_snn import ConvSNN
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.models.feedforward import FeedForwardSNN
from lightning_snn.models.network import Network, build_network
from lightning_snn.models.pspikessm import PSpikeSSM, PSpikeSSMBlock
from lightning_snn.models.static_image_snn import StaticImageSNN
from lightning_snn.models.temporal_conv_snn import TemporalConvSNN

__all__ = [
    "ConvSNN",
    "DelaySNN",
    "FeedForwardSNN",
    "Network",
    "PSpikeSSM",
    "PSpikeSSMBlock",
    "StaticImageSNN",
    "TemporalConvSNN",
    "build_network",
]
