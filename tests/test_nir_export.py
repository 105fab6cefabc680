"""NIR export/import (lightning_snn.nir): ours → .nir file → ours gives identical spikes, refusals name the node."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from lightning_snn import DelaySNN, FeedForwardSNN  # noqa: E402
from lightning_snn.models.conv_snn import ConvSNN  # noqa: E402
from lightning_snn.nir import NIRExportError, NIRImportError, NIRLossyWarning, from_nir, to_nir  # noqa: E402
from lightning_snn.nir.command import main as export_main  # noqa: E402

DT = 1e-4


def recorded(net: nn.Module) -> dict[str, torch.Tensor]:
    """Every module's output by qualified name, filled by the next forward pass."""
    out: dict[str, torch.Tensor] = {}
    for name, module in net.named_modules():
        module.register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o))
    return out


def round_trip(net: nn.Module, x: torch.Tensor, tmp_path, **kwargs) -> tuple[dict, dict, nn.Module]:
    """Run ``net``, export it, write and read the file, import it, run it: (ours, imported, graph)."""
    net.eval()
    ours = recorded(net)
    with torch.no_grad():
        ours[""] = net(x)
    path = tmp_path / "model.nir"
    nir.write(path, to_nir(net, DT, **kwargs))
    graph = nir.read(path)
    imported = from_nir(graph, DT, dtype=x.dtype)
    with torch.no_grad():
        theirs = imported.trace(x)
    return ours, theirs, graph


def assert_spikes_equal(ours: dict, theirs: dict, names: list[str]) -> None:
    for name in names:
        a, b = ours[name], theirs[name]
        assert torch.equal(a.reshape(b.shape), b), f"{name}: {(a.reshape(b.shape) != b).sum()} spikes differ"
        assert 0.002 < b.mean() < 0.9, f"{name}: spike rate {b.mean():.3f}, the test would prove nothing"


def perturb_taus(net: nn.Module, scale: float = 0.6) -> None:
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "raw") and module.raw.dim() == 1:
                module.raw.add_(torch.randn_like(module.raw) * scale)


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("discretisation", ["euler", "exact"])
def test_feedforward_round_trip_is_bit_exact(tmp_path, decay_input, discretisation):
    torch.manual_seed(0)
    spec = {"per_neuron": True, "learn_threshold": True, "decay_input": decay_input}
    net = FeedForwardSNN(20, [48, 32], 5, tau=[3.0, 8.0], neuron=spec, learn_readout_tau=True, readout_tau=4.0)
    perturb_taus(net)
    with torch.no_grad():
        net.neurons[0].threshold.fill_(0.3 if decay_input else 1.3)
        net.neurons[1].threshold.fill_(0.2 if decay_input else 1.1)
        for layer in net.synapses:
            layer.synapse.weight.mul_(3.0)
    x = (torch.rand(150, 4, 20) < 0.4).float()
    ours, theirs, graph = round_trip(net, x, tmp_path, discretisation=discretisation)
    assert_spikes_equal(ours, theirs, ["neurons.0", "neurons.1"])
    assert torch.equal(ours["output"], theirs["output"])  # the readout membrane, bit for bit
    lif = graph.nodes["neurons.0"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (48,) and lif.v_threshold.shape == (48,)
    assert len(set(lif.tau.tolist())) > 1  # per-neuron τ, in seconds
    assert isinstance(graph.nodes["output"], nir.LI) and graph.nodes["output"].tau.shape == (5,)


def test_tau_is_seconds_and_threshold_strict():
    net = FeedForwardSNN(3, [4], 2, tau=2.0, neuron={"threshold": 0.5, "decay_input": False})
    graph = to_nir(net.eval(), dt=1e-3)
    lif = graph.nodes["neurons.0"]
    assert lif.tau.tolist() == [2e-3] * 4  # τ = dt/(1-β), β = 0.5
    assert lif.r.tolist() == [2.0] * 4  # R = τ/dt for decay_input=False
    assert (lif.v_threshold < 0.5).all() and (
        lif.v_threshold.astype("float32") == torch.tensor(0.5).nextafter(torch.tensor(0.0)).item()
    ).all()


def test_delay_snn_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    net = DelaySNN(16, [40], 4, max_delay=9, tau=4.0, neuron={"per_neuron": True, "threshold": 0.3})
    perturb_taus(net, 0.3)
    with torch.no_grad():
        net.synapses[0].synapse.weight.mul_(3.0)
    x = (torch.rand(120, 3, 16) < 0.4).float()
    ours, theirs, graph = round_trip(net, x, tmp_path)
    assert_spikes_equal(ours, theirs, ["neurons.0"])
    assert torch.equal(ours["output"], theirs["output"])
    weight, delay = net.synapses[0].synapse.to_integer_delays()
    delays = {int(n.delay[0] / DT + 0.5) for k, n in graph.nodes.items() if isinstance(n, nir.Delay)}
    assert delays == set(torch.unique(delay).tolist()) - {0}  # one Delay node per distinct nonzero delay
    for node in graph.nodes.values():
        if isinstance(node, nir.Delay):
            assert node.delay.shape == (40,) or node.delay.shape == (4,)


def test_conv_snn_round_trip(tmp_path):
    torch.manual_seed(2)
    net = ConvSNN((2, 8, 8), 3, n_conv=2, channels=6, fc_hidden=32, votes=4, tau=2.0, neuron={"per_neuron": True})
    perturb_taus(net, 0.3)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(1.0, 3.0)
                module.bias.uniform_(0.0, 0.3)
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                module.weight.mul_(4.0)
    net = net.double()  # BN is folded into the conv: equal in exact arithmetic, compared in float64
    x = (torch.rand(100, 3, 2, 8, 8) < 0.4).double()
    ours, theirs, graph = round_trip(net, x, tmp_path)
    assert_spikes_equal(ours, theirs, ["blocks.0.neuron", "blocks.1.neuron", "lif1", "lif2"])
    pooled = theirs["blocks.0.pool.any"]
    assert torch.equal(ours["blocks.0.pool"].reshape(pooled.shape), pooled)  # max-pool = [sum-pool > 0.5]
    torch.testing.assert_close(ours[""], theirs["vote"])
    assert graph.nodes["blocks.0.neuron"].tau.shape == (6, 8, 8)
    assert graph.nodes["blocks.0.conv"].metadata["folded_batch_norm"] == 1


def test_soft_reset_is_refused_naming_the_node_and_lossy_warns():
    net = FeedForwardSNN(4, [5], 2, neuron={"reset": "soft"}).eval()
    with pytest.raises(NIRExportError, match=r"node 'neurons\.0'.*soft.*reset='hard'.*lossy=True"):
        to_nir(net)
    with pytest.warns(NIRLossyWarning, match=r"'neurons\.0': soft reset"):
        graph = to_nir(net, lossy=True)
    assert graph.nodes["neurons.0"].v_reset.tolist() == [0.0] * 5


def test_training_mode_gaussian_delays_are_refused():
    net = DelaySNN(4, [5], 2, max_delay=4).train()
    with pytest.raises(NIRExportError, match=r"node 'synapses\.0\.synapse'.*σ=2.*network\.eval\(\)"):
        to_nir(net)
    with pytest.warns(NIRLossyWarning) as record:
        to_nir(net, lossy=True)
    message = str(record[0].message)
    assert "'synapses.0.synapse'" in message and "'output_synapse'" in message


def test_unsupported_neuron_and_network_are_refused():
    class Custom(nn.Module):
        def __init__(self, n_neurons: int, tau: float = 2.0) -> None:
            super().__init__()
            self.n_neurons = n_neurons

        def forward(self, x):
            return (x > 0).float()

    net = FeedForwardSNN(4, [5], 2, neuron=Custom).eval()
    with pytest.raises(NIRExportError, match=r"node 'neurons\.0'.*Custom.*LearnableLIF"):
        to_nir(net, lossy=True)  # no approximation exists: refused even when lossy
    from lightning_snn.models.pspikessm import PSpikeSSM

    with pytest.raises(NIRExportError, match=r"node '.*'.*(S4D|SpikeSampler)"):
        to_nir(PSpikeSSM(4, 2, d_model=8, d_state=4, n_layers=1).eval())


def test_import_refuses_what_it_cannot_run():
    graph = to_nir(FeedForwardSNN(3, [4], 2).eval())
    graph.nodes["neurons.0"].v_leak = graph.nodes["neurons.0"].v_leak + 0.5
    with pytest.raises(NIRImportError, match=r"node 'neurons\.0' \(LIF\).*v_leak"):
        from_nir(graph)
    graph = to_nir(DelaySNN(3, [4], 2, max_delay=5).eval(), dt=1e-3)
    with pytest.raises(NIRImportError, match=r"not one non-negative integer multiple of dt"):
        from_nir(graph, dt=3e-4)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import lightning as L

    from lightning_snn import SpikingClassifier

    path = tmp_path_factory.mktemp("ckpt") / "delay.ckpt"
    trainer = L.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(SpikingClassifier(DelaySNN(6, [8], 3, max_delay=5)))
    trainer.save_checkpoint(path)
    return path


def test_export_command_writes_a_graph(checkpoint, tmp_path):
    out = tmp_path / "model.nir"
    assert export_main(["--ckpt_path", str(checkpoint), "--output", str(out)]) == 0
    graph = nir.read(out)
    assert isinstance(graph.nodes["neurons.0"], nir.LIF)
    done = subprocess.run(
        [sys.executable, "-m", "lightning_snn", "export", "--ckpt_path", str(checkpoint), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout


def test_export_command_reports_unsupported_network(tmp_path, capsys, monkeypatch):
    from lightning_snn.lit.classifier import SpikingClassifier

    class Loaded:
        network = FeedForwardSNN(3, [4], 2, neuron={"reset": "soft"})

    monkeypatch.setattr(SpikingClassifier, "load_from_checkpoint", classmethod(lambda cls, *a, **k: Loaded()))
    fake = tmp_path / "x.ckpt"
    fake.write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert export_main(["--ckpt_path", str(fake), "--output", str(tmp_path / "m.nir")]) == 2
    assert "node 'neurons.0'" in capsys.readouterr().err


def test_right_padded_delay_snn_is_refused_with_the_fix():
    """DelaySNN(pad_right=k) (DCLS's right padding) lengthens the output; the graph cannot say so."""
    net = DelaySNN(4, [6], 2, max_delay=5, pad_right=2).eval()
    with pytest.raises(NIRExportError, match=r"pad_right=2\).*pad_right=0"):
        to_nir(net)
    plain = DelaySNN(4, [6], 2, max_delay=5).eval()
    plain.load_state_dict(net.state_dict())
    assert "neurons.0" in to_nir(plain).nodes
