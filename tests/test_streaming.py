"""Streaming: kernels with an initial state, module and network ``forward_with_state``, chunked = one pass."""

import pytest
import torch

from lightning_snn import DelaySNN, FeedForwardSNN, TemporalConvSNN
from lightning_snn import state as stream
from lightning_snn.functional import lif_numba
from lightning_snn.functional.lif import LIFConfig, leaky_integrate, lif_reference
from lightning_snn.functional.lif_scan import leaky_integrate_fused, lif_fused, lif_fused_state
from lightning_snn.functional.surrogates import Surrogate
from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.layers.ssm import S4DLayer
from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models.conv_snn import ConvSNN
from lightning_snn.models.pspikessm import PSpikeSSM
from lightning_snn.neurons.spike_sampler import SpikeSampler

CFGS = [
    LIFConfig("hard", 0.0, True, True, Surrogate("atan")),
    LIFConfig("hard", -0.3, False, False, Surrogate("fast_sigmoid")),
    LIFConfig("soft", 0.0, True, False, Surrogate("atan")),
]


def _path(path, monkeypatch):
    if path == "numba" and not lif_numba.available():
        pytest.skip("numba is not installed")
    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "1" if path == "numba" else "0")


def _weights(t: torch.Tensor) -> torch.Tensor:
    return torch.linspace(-1, 1, t.numel(), dtype=t.dtype).view_as(t)


@pytest.mark.parametrize("path", ["torch", "numba"])
@pytest.mark.parametrize("cfg", CFGS, ids=str)
def test_lif_kernel_initial_state_matches_reference(path, cfg, monkeypatch):
    """Spikes, final membrane and every gradient (x, β, θ, v0, and the one entering through v_end) of the
    fused LIF from an initial membrane equal the plain-autograd reference from the same membrane."""
    _path(path, monkeypatch)
    x = (torch.rand(20, 3, 5, dtype=torch.float64) * 2.5).requires_grad_()
    beta = (torch.rand(5, dtype=torch.float64) * 0.5 + 0.4).requires_grad_()
    thr = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    v0 = (torch.rand(3, 5, dtype=torch.float64) * 1.2 - 0.2).requires_grad_()
    s, v = lif_fused_state(x, beta, thr, cfg, v0)
    s_ref, v_ref = lif_reference(x, beta, thr, cfg, return_membrane=True, v0=v0)
    rest = cfg.v_reset if cfg.reset == "hard" else 0.0
    assert torch.equal(s, s_ref) and 0.05 < s.mean() < 0.95
    assert torch.allclose(v, v_ref[-1] - rest, atol=1e-12)
    inputs = (x, beta, thr, v0)
    g = torch.autograd.grad((s * _weights(s)).sum() + (v * _weights(v)).sum(), inputs)
    g_ref = torch.autograd.grad((s_ref * _weights(s)).sum() + ((v_ref[-1] - rest) * _weights(v)).sum(), inputs)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert g[3].abs().sum() > 0  # dL/dv0 is not trivially zero


@pytest.mark.parametrize("path", ["torch", "numba"])
def test_lif_kernel_chunks_equal_one_pass(path, monkeypatch):
    """Two chunks chained through the state give the spikes and the gradients of one pass, float64 and float32."""
    _path(path, monkeypatch)
    cfg = CFGS[0]
    for dtype in (torch.float64, torch.float32):
        x = (torch.rand(40, 4, 6, dtype=dtype) * 2.5).requires_grad_()
        beta = torch.tensor(0.8, dtype=dtype, requires_grad=True)
        thr = torch.tensor(1.0, dtype=dtype)
        full = lif_fused(x, beta, thr, cfg)
        a, state = lif_fused_state(x[:13], beta, thr, cfg)
        b, _ = lif_fused_state(x[13:], beta, thr, cfg, state)
        chunked = torch.cat([a, b])
        assert torch.equal(full, chunked)
        if dtype == torch.float64:
            w = _weights(full)
            g_full = torch.autograd.grad((full * w).sum(), (x, beta))
            g_chunk = torch.autograd.grad((chunked * w).sum(), (x, beta))
            assert all(torch.allclose(p, q, rtol=1e-10, atol=1e-12) for p, q in zip(g_full, g_chunk))


def test_stateless_call_is_unchanged():
    """No state given: the same spikes as before the state existed (``v0=None`` is the rest state)."""
    cfg = CFGS[0]
    x = torch.rand(30, 2, 4) * 2.5
    s, v = lif_fused_state(x, torch.tensor(0.7), torch.tensor(1.0), cfg)
    assert torch.equal(s, lif_fused(x, torch.tensor(0.7), torch.tensor(1.0), cfg))
    assert torch.equal(s, lif_reference(x, torch.tensor(0.7), torch.tensor(1.0), cfg))


@pytest.mark.parametrize("decay_input", [False, True])
def test_leaky_integrator_initial_state_gradcheck(decay_input):
    x = torch.rand(6, 2, 3, dtype=torch.float64, requires_grad=True)
    beta = torch.rand(3, dtype=torch.float64).requires_grad_()
    v0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: leaky_integrate_fused(a, b, decay_input, c), (x, beta, v0))
    assert torch.allclose(leaky_integrate_fused(x, beta, decay_input, v0), leaky_integrate(x, beta, decay_input, v0))


def _module_chunks(module, x, size):
    state, outs = None, []
    for chunk in x.split(size):
        out, state = module.forward_with_state(chunk, state)
        outs.append(out)
    return torch.cat(outs), state


@pytest.mark.parametrize(
    "make",
    [
        lambda: DelayedLinear(4, 3, max_delay=6).eval(),  # integer delays
        lambda: DelayedLinear(4, 3, max_delay=6).train(),  # Gaussian kernel (FFT)
        lambda: CausalConv1d(4, 3, kernel_size=3, dilation=2),
        lambda: S4DLayer(4, d_state=4),
    ],
    ids=["delay-integer", "delay-gaussian", "conv", "s4d"],
)
def test_synapse_modules_stream_exactly(make):
    """Each stateful synapse: chunks of 1, 7 and 100 give one pass's output (float64, 1e-10) and, kept in the
    graph, its gradients; the state has the documented shape."""
    torch.set_default_dtype(torch.float64)
    try:
        module = make()
    finally:
        torch.set_default_dtype(torch.float32)
    x = torch.rand(120, 2, 4, dtype=torch.float64, requires_grad=True)
    full = module(x)
    w = _weights(full)
    inputs = [x, *module.parameters()]
    g_full = torch.autograd.grad((full * w).sum(), inputs, allow_unused=True)  # integer delays: no position grad
    for size in (1, 7, 100):
        out, state = _module_chunks(module, x, size)
        assert torch.allclose(out, full, rtol=1e-10, atol=1e-10)
        g = torch.autograd.grad((out * w).sum(), inputs, allow_unused=True)
        for a, b in zip(g, g_full):
            assert (a is None) == (b is None)
            assert a is None or torch.allclose(a, b, rtol=1e-8, atol=1e-10)
    expected = {
        stream.DelayState: (5, 2, 4),
        stream.ConvState: (4, 2, 4),
        stream.SSMState: (2, 4, 2),
    }[type(state)]
    assert tuple(state[0].shape) == expected


def test_sampler_state_continues_the_generator():
    """Training-mode sampler: the state is the generator's position; chunks continue one stream of draws."""
    sampler = SpikeSampler(3, seed=5).train()
    x = torch.rand(50, 2, 3)
    full, _ = sampler.forward_with_state(x, stream.SamplerState(torch.Generator().manual_seed(9).get_state()))
    state, outs = stream.SamplerState(torch.Generator().manual_seed(9).get_state()), []
    for chunk in x.split(7):
        out, state = sampler.forward_with_state(chunk, state)
        outs.append(out)
    assert torch.equal(torch.cat(outs), full)
    assert sampler.eval().forward_with_state(x)[1] is None  # deterministic eval mode: no state


def _networks():
    """(name, factory, input features); built in float64 by the caller."""
    return [
        ("feedforward", lambda: FeedForwardSNN(6, [16, 12], 3, neuron={"learn_tau": True}), (6,)),
        ("feedforward-spikes", lambda: FeedForwardSNN(6, [12], 3, readout="spikes", tau=3.0), (6,)),
        ("delay", lambda: DelaySNN(6, [16], 3, max_delay=5), (6,)),
        ("tconv", lambda: TemporalConvSNN(6, [16, 12], 3), (6,)),
        ("pspikessm", lambda: PSpikeSSM(6, 3, d_model=8, d_state=4, n_layers=2, pool="none", seed=0), (6,)),
        ("pspikessm-mean", lambda: PSpikeSSM(6, 3, d_model=8, d_state=4, n_layers=1, pool="mean", seed=0), (6,)),
        (
            "conv",
            lambda: ConvSNN((2, 8, 8), 3, n_conv=1, channels=4, fc_hidden=16, votes=2, dropout=0.0),
            (2, 8, 8),
        ),
    ]


def _build(make, dtype):
    torch.manual_seed(0)
    return make().to(dtype).eval()


def _network_chunks(net, x, size):
    state, outs = None, []
    for chunk in x.split(size):
        out, state = net.forward_with_state(chunk, state)
        outs.append(out)
    return outs, state


def _spike_recorder(net):
    """Forward hooks collecting the output of every spiking module (LIF, sampler) per call."""
    spikes: dict[str, list[torch.Tensor]] = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, name=name: spikes.setdefault(name, []).append(out))
        for name, m in net.named_modules()
        if hasattr(m, "call_statistics")
    ]
    return spikes, handles


@pytest.mark.parametrize("name, make, features", _networks(), ids=[n for n, *_ in _networks()])
def test_network_chunks_equal_one_pass(name, make, features):
    """T = 400 in chunks of 1, 7 and 100: float64 equal to the plain call to 1e-10; float32 spikes of every
    spiking layer identical to one ``forward_with_state`` pass over the whole input."""
    for dtype in (torch.float64, torch.float32):
        net = _build(make, dtype)
        x = (torch.rand(400, 3, *features) < 0.3).to(dtype) * 2.0
        full = net(x)
        spikes, handles = _spike_recorder(net)
        one_pass, _ = net.forward_with_state(x)
        reference = {k: torch.cat(v) for k, v in spikes.items()}
        assert reference, "no spiking layer recorded"
        for size in (1, 7, 100):
            spikes.clear()
            outs, state = _network_chunks(net, x, size)
            out = outs[-1] if name == "pspikessm-mean" else torch.cat(outs)
            if dtype == torch.float64:
                assert torch.allclose(out, full, rtol=1e-10, atol=1e-10), (name, size)
            else:
                for key, ref in reference.items():
                    assert torch.equal(torch.cat(spikes[key]), ref), (name, size, key)
                assert torch.allclose(out, one_pass if name != "pspikessm-mean" else full, atol=1e-5)
        for h in handles:
            h.remove()
        assert isinstance(state, dict) and state


@pytest.mark.parametrize("name, make, features", _networks(), ids=[n for n, *_ in _networks()])
def test_network_chunked_gradients_equal_one_pass(name, make, features):
    """Chunks chained through the state, kept in the graph: every parameter gradient of one pass (float64).
    Feed-forward, delay (Gaussian kernel) and temporal-conv networks in training mode; PSpikeSSM and
    ConvSNN in eval mode (their samplers draw and their BatchNorm normalises per call in training)."""
    net = _build(make, torch.float64)
    if name in ("feedforward", "feedforward-spikes", "delay", "tconv"):
        net.train()
    x = (torch.rand(120, 2, *features) < 0.3).double() * 2.0
    params = [p for p in net.parameters() if p.requires_grad]
    full = net(x)
    w = _weights(full)
    g_full = torch.autograd.grad((full * w).sum(), params, allow_unused=True)
    outs, _ = _network_chunks(net, x, 17)
    out = outs[-1] if name == "pspikessm-mean" else torch.cat(outs)
    g = torch.autograd.grad((out * w).sum(), params, allow_unused=True)
    for a, b in zip(g, g_full):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10), name


def test_detached_state_cuts_the_gradient():
    """``detach_state`` keeps the values and drops the graph: no gradient reaches an earlier chunk."""
    net = FeedForwardSNN(4, [8], 2, neuron={"learn_tau": True})
    x = torch.rand(20, 2, 4, requires_grad=True)
    _, state = net.forward_with_state(x[:10])
    cut = stream.detach_state(state)
    assert all(not t.requires_grad for s in cut.values() for t in s if isinstance(t, torch.Tensor))
    out, _ = net.forward_with_state(x[10:], cut)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad[:10].abs().sum() == 0 and grad[10:].abs().sum() > 0


def test_state_names_and_bad_state():
    net = DelaySNN(4, [8], 2, max_delay=3).eval()
    _, state = net.forward_with_state(torch.rand(5, 2, 4))
    assert sorted(state) == ["neurons.0", "output", "output_synapse", "synapses.0.synapse"]
    assert isinstance(state["neurons.0"], stream.LIFState)
    with pytest.raises(ValueError, match="streaming state"):
        net.forward_with_state(torch.rand(5, 3, 4), state)  # another batch size
    with pytest.raises(TypeError, match="dict"):
        net.forward_with_state(torch.rand(5, 2, 4), [1, 2])


def test_upstream_backends_refuse_a_state():
    from lightning_snn.neurons.lif import LearnableLIF

    lif = LearnableLIF(3, backend="snntorch", detach_reset=False)
    with pytest.raises(ValueError, match="backend='native'"):
        lif.forward_with_state(torch.rand(4, 2, 3))


@pytest.mark.parametrize("name, make, features", _networks(), ids=[n for n, *_ in _networks()])
def test_streaming_forward_and_backward_read_no_value_back(name, make, features, monkeypatch):
    """The contract of ``tests/test_contracts.py`` for streaming: two chunks chained through the state (kept
    in the graph), forward and backward on the PyTorch paths (what CUDA runs), never read a tensor value
    into Python (training mode; delays: the Gaussian path)."""
    from test_contracts import host_reads_forbidden

    monkeypatch.setenv("LIGHTNING_SNN_NUMBA", "0")
    torch.manual_seed(0)
    net = make().train()
    x = (torch.rand(12, 2, *features) < 0.3).float()
    _, state = net.forward_with_state(x[:6])  # warm-up (lazy generator creation)
    with host_reads_forbidden():
        out1, state = net.forward_with_state(x[:6])
        out2, _ = net.forward_with_state(x[6:], state)
        (out1.float().sum() + out2.float().sum()).backward()
