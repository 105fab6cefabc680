"""Networks assembled from neurons and synapse layers."""
from lightning_snn.models.feedforward import FeedForwardSNN
from lightning_snn.models.network import Network, build_network

__all__ = ["FeedForwardSNN", "Network", "build_network"]
