"""NIR interop with snnTorch 1.0: ours → NIR → ``snntorch.import_from_nir`` and snnTorch → NIR → ours, same spikes."""

from __future__ import annotations

import pytest
import torch

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")

from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

from lightning_snn import FeedForwardSNN  # noqa: E402
from lightning_snn.nir import from_nir, to_nir  # noqa: E402

DT = 1e-4  # snnTorch's hard-coded step


def run_snntorch(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Step an ``init_hidden`` snnTorch module over time-major ``x``; its output spikes ``(T, B, N)``."""
    snn_utils.reset(module)
    out = []
    for x_t in x.unbind(0):
        y = module(x_t)
        y = y[0] if isinstance(y, tuple) else y
        out.append(y[0] if isinstance(y, tuple) else y)
    return torch.stack(out)


def test_ours_to_snntorch_import_gives_identical_spikes(tmp_path):
    """snnTorch's importer supports our FeedForwardSNN with a spiking readout, ``decay_input=False`` (it needs
    R = τ/dt), one threshold per layer (it refuses per-neuron thresholds) and reset to 0; per-neuron τ is fine."""
    torch.manual_seed(0)
    spec = {"per_neuron": True, "decay_input": False, "threshold": 0.6}
    net = FeedForwardSNN(12, [40, 24], 6, tau=[3.0, 6.0], neuron=spec, readout="spikes", readout_tau=3.0).eval()
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "raw") and module.raw.dim() == 1:
                module.raw.add_(torch.randn_like(module.raw) * 0.5)
        for layer in [*(block.synapse for block in net.synapses), net.output_synapse]:
            layer.weight.mul_(2.0)
    x = (torch.rand(150, 4, 12) < 0.4).float()
    with torch.no_grad():
        ours = net(x)
    path = tmp_path / "ff.nir"
    nir.write(path, to_nir(net, DT))
    theirs_module = import_from_nir(nir.read(path)).float()  # the file holds float64; run in the net's float32
    with torch.no_grad():
        theirs = run_snntorch(theirs_module, x)
    assert 0.01 < ours.mean() < 0.9
    assert torch.equal(ours, theirs)


def test_snntorch_export_to_our_import_gives_identical_spikes(tmp_path):
    """Linear → Leaky → Linear → Leaky, per-neuron β and threshold, reset to zero (``reset_delay=False``)."""
    torch.manual_seed(1)
    sizes = (10, 32, 5)

    def leaky(n: int, output: bool = False) -> snn.Leaky:
        return snn.Leaky(
            beta=torch.rand(n) * 0.6 + 0.3,
            threshold=torch.rand(n) * 0.5 + 0.5,
            init_hidden=True,
            output=output,
            reset_mechanism="zero",
            reset_delay=False,
        )

    net = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1]), leaky(sizes[1]), torch.nn.Linear(sizes[1], sizes[2]), leaky(sizes[2])
    )
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    x = (torch.rand(150, 4, sizes[0]) < 0.4).float()
    with torch.no_grad():
        theirs = run_snntorch(net, x)
    path = tmp_path / "snntorch.nir"
    nir.write(path, export_to_nir(net, torch.zeros(sizes[0])))
    ours_net = from_nir(nir.read(path), DT)
    with torch.no_grad():
        ours = ours_net.trace(x)
    assert 0.01 < theirs.mean() < 0.9
    assert set(ours) == {"0", "1", "2", "3"}  # nodes keep snnTorch's names
    assert torch.equal(ours["3"], theirs)
