r"""``to_nir``: a trained network as a NIR graph (learned τ, thresholds and integer delays included).

Every node is named after the module it comes from (its qualified name, e.g. ``"synapses.0.synapse"``,
``"neurons.0"``), plus ``"in"`` and ``"out"``. Neurons follow :mod:`lightning_snn.nir.convention`;
every parameter is a float64 vector of the node's shape (never 0-d: scalar parameters break
snnTorch's type inference and ``nir.write``). The graph describes the network in eval mode (dropout off,
batch norm with its running statistics, folded into the preceding affine or convolution).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lightning_snn.layers.delayed_linear import DelayedLinear
from lightning_snn.models.conv_snn import ConvSNN
from lightning_snn.models.delay_snn import DelaySNN
from lightning_snn.models.feedforward import StackedSNN
from lightning_snn.neurons.lif import LeakyReadout, LearnableLIF
from lightning_snn.nir.convention import (
    check_discretisation,
    check_dt,
    export_tau,
    resistance,
    threshold_to_nir,
)
from lightning_snn.nir.errors import Changes, NIRExportError

INPUT, OUTPUT = "in", "out"
#: Graph metadata keys written by :func:`to_nir` and read by :func:`~lightning_snn.nir.from_nir`.
META_DT, META_DISCRETISATION = "lightning_snn.dt", "lightning_snn.discretisation"


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """``k`` or ``(k, k)`` as a pair (a pooling size, stride or padding)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class GraphBuilder:
    """A feed-forward NIR graph under construction: each added node takes every current tail as input."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        import nir

        self.nir = nir
        self.nodes = {INPUT: nir.Input(input_type=np.array(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.tails = [INPUT]

    def add(self, name: str, node, inputs: list[str] | None = None) -> str:
        if name in self.nodes:
            raise NIRExportError(f"NIR export: two nodes named {name!r}; rename one of the modules.")
        self.nodes[name] = node
        self.edges += [(tail, name) for tail in (self.tails if inputs is None else inputs)]
        if inputs is None:
            self.tails = [name]
        return name

    def graph(self, output_shape: tuple[int, ...], metadata: dict):
        self.add(OUTPUT, self.nir.Output(output_type=np.array(output_shape)))
        return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)


def _fold_norm(norm: nn.Module | None, name: str, n_out: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale, shift)`` in float64 of an eval-mode BatchNorm ``y = scale·x + shift``, or ``None``."""
    if norm is None:
        return None
    if norm.running_mean is None:
        raise NIRExportError(
            f"NIR export: node {name!r}: BatchNorm without running statistics (track_running_stats=False) "
            "normalises by each batch, which NIR cannot express. Fix: train with track_running_stats=True."
        )
    inv = 1.0 / torch.sqrt(norm.running_var.double() + norm.eps)
    gamma = norm.weight.double() if norm.weight is not None else torch.ones(n_out, dtype=torch.float64)
    beta = norm.bias.double() if norm.bias is not None else torch.zeros(n_out, dtype=torch.float64)
    scale = gamma * inv
    return scale.detach(), (beta - norm.running_mean.double() * scale).detach()


def _affine(nir, weight: torch.Tensor, bias: torch.Tensor | None, fold, metadata: dict):
    """A ``Linear`` (no bias) or ``Affine`` node; a folded BatchNorm scales the rows and adds a bias."""
    if fold is None:
        w = _np(weight).astype(np.float64)
        if bias is None:
            return nir.Linear(weight=w, metadata=metadata)
        return nir.Affine(weight=w, bias=_np(bias).astype(np.float64), metadata=metadata)
    scale, shift = fold
    shape = (-1,) + (1,) * (weight.dim() - 1)
    w = weight.double() * scale.reshape(shape)
    b = shift if bias is None else bias.double() * scale + shift
    metadata = {**metadata, "folded_batch_norm": 1}
    return nir.Affine(weight=_np(w), bias=_np(b), metadata=metadata)


def _synapse(b: GraphBuilder, name: str, module: nn.Module, norm: nn.Module | None, dt: float, changes: Changes):
    nir = b.nir
    if type(module) is nn.Linear:
        b.add(name, _affine(nir, module.weight, module.bias, _fold_norm(norm, name, module.out_features), {}))
        return
    if not isinstance(module, DelayedLinear):
        raise NIRExportError(
            f"NIR export: node {name!r}: synapse {type(module).__name__} has no NIR mapping (known: nn.Linear, "
            "DelayedLinear). Fix: use FeedForwardSNN or DelaySNN synapses, or extend lightning_snn.nir.export."
        )
    if module.training or not module.integer_eval:
        changes.refuse(
            name,
            f"DelayedLinear in training mode (or integer_eval=False) with σ={float(module.sigma):.4g} delivers "
            "through Gaussian delay kernels, while NIR's Delay is a pure shift by one delay per element",
            "call network.eval() first (eval mode rounds the delays to integers, σ → 0, exactly what is exported)",
            "Gaussian kernels replaced by the rounded integer delays (what the layer computes in eval mode)",
        )
    weight, delay = module.to_integer_delays()
    fold = _fold_norm(norm, name, module.out_features)
    values = torch.unique(delay).tolist()
    if fold is not None and 0 not in values:
        values = [0, *values]  # the folded bias must arrive undelayed
    width = len(str(module.max_delay - 1))
    tails, inputs = [], list(b.tails)
    for d in values:
        w_d = torch.where(delay == d, weight, torch.zeros_like(weight))  # as integer_delay_linear builds it
        scale_shift = None if fold is None else (fold[0], fold[1] if d == 0 else torch.zeros_like(fold[1]))
        branch = f"{name}.delay_{d:0{width}d}"
        meta = {"delay_steps": int(d), "max_delay": int(module.max_delay)}
        node = _affine(nir, w_d, None, scale_shift, meta)
        tail = b.add(f"{branch}.weight", node, inputs)
        if d > 0:
            tail = b.add(branch, nir.Delay(delay=np.full(module.out_features, d * dt)), [tail])
        tails.append(tail)
    b.tails = tails


def _vector(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.detach().reshape(-1).expand(n).clone()


def _neuron(b: GraphBuilder, name: str, module: nn.Module, shape: tuple[int, ...], dt: float, disc: str, changes):
    nir, n = b.nir, int(np.prod(shape))
    if isinstance(module, LearnableLIF) and type(module).forward is LearnableLIF.forward:
        cfg = module.cfg
        rest = cfg.v_reset
        if cfg.reset != "hard":
            changes.refuse(
                name,
                "subtractive (soft) reset has no NIR form: NIR 1.0 neurons set v = v_reset after a spike",
                "train with reset='hard' (LearnableLIF(reset='hard'), the default)",
                "soft reset (V = H - θS) exported as a hard reset to 0 (V = H(1 - S))",
            )
            rest = 0.0
        beta, theta = _vector(module.tau.decay(), n), _vector(module.threshold, n)
        node = nir.LIF(
            tau=export_tau(beta, dt, disc).reshape(shape),
            r=resistance(_np(beta), cfg.decay_input).reshape(shape),
            v_leak=np.full(shape, rest, dtype=np.float64),
            v_threshold=threshold_to_nir(theta).reshape(shape),
            v_reset=np.full(shape, rest, dtype=np.float64),
        )
    elif isinstance(module, LeakyReadout) and type(module).forward is LeakyReadout.forward:
        beta = _vector(module.tau.decay(), n)
        node = nir.LI(
            tau=export_tau(beta, dt, disc).reshape(shape),
            r=resistance(_np(beta), module.decay_input).reshape(shape),
            v_leak=np.zeros(shape, dtype=np.float64),
        )
    else:
        why = (
            "a stochastic neuron (Bernoulli spikes) has no deterministic NIR equivalent"
            if type(module).__name__ == "SpikeSampler"
            else "NIR export maps only LearnableLIF (to LIF) and LeakyReadout (to LI)"
        )
        raise NIRExportError(
            f"NIR export: node {name!r}: neuron {type(module).__name__} is not supported: {why}. "
            "Fix: build the network with the default neuron (LearnableLIF, hard reset) or extend "
            "lightning_snn.nir.export with a mapping for this neuron."
        )
    b.add(name, node)


def _export_stacked(net: StackedSNN, dt: float, disc: str, changes: Changes) -> GraphBuilder:
    b = GraphBuilder((net.n_inputs,))
    for layer, (block, neuron) in enumerate(zip(net.synapses, net.neurons)):
        _synapse(b, f"synapses.{layer}.synapse", block.synapse, block.norm, dt, changes)
        _neuron(b, f"neurons.{layer}", neuron, (neuron.n_neurons,), dt, disc, changes)
    _synapse(b, "output_synapse", net.output_synapse, None, dt, changes)
    _neuron(b, "output", net.output, (net.n_outputs,), dt, disc, changes)
    return b


def _export_conv(net: ConvSNN, dt: float, disc: str, changes: Changes) -> GraphBuilder:
    nir = __import__("nir")
    c, h, w = net.input_shape
    b = GraphBuilder((c, h, w))
    for i, block in enumerate(net.blocks):
        conv, pool, name = block.conv, block.pool, f"blocks.{i}"
        fold = _fold_norm(block.norm, f"{name}.norm", conv.out_channels)
        affine = _affine(nir, conv.weight, conv.bias, fold, {})
        bias = getattr(affine, "bias", np.zeros(conv.out_channels))
        node = nir.Conv2d(
            input_shape=(h, w),
            weight=affine.weight,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=bias,
            metadata=affine.metadata,
        )
        b.add(f"{name}.conv", node)
        c = conv.out_channels
        _neuron(b, f"{name}.neuron", block.neuron, (c, h, w), dt, disc, changes)
        kernel, stride = (
            _pair(pool.kernel_size),
            _pair(pool.stride or pool.kernel_size),
        )
        if tuple(_pair(pool.padding)) != (0, 0) or pool.ceil_mode or pool.dilation not in (1, (1, 1)):
            raise NIRExportError(
                f"NIR export: node {name + '.pool'!r}: MaxPool2d with padding, dilation or ceil_mode has no exact "
                "SumPool2d form. Fix: use MaxPool2d(k) without padding."
            )
        # max over a window of 0/1 spikes = [sum > 0]: SumPool2d then Threshold (exact for spikes)
        b.add(
            f"{name}.pool",
            nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.zeros(2, int)),
        )
        h, w = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
        b.add(f"{name}.pool.any", nir.Threshold(threshold=np.full((c, h, w), 0.5)))
    b.add("flatten", nir.Flatten(input_type={"input": np.array([c, h, w])}, start_dim=0, end_dim=-1))
    b.add("fc1", _affine(nir, net.fc1.weight, net.fc1.bias, None, {}))
    _neuron(b, "lif1", net.lif1, (net.fc1.out_features,), dt, disc, changes)
    b.add("fc2", _affine(nir, net.fc2.weight, net.fc2.bias, None, {}))
    _neuron(b, "lif2", net.lif2, (net.fc2.out_features,), dt, disc, changes)
    vote = np.zeros((net.n_outputs, net.n_outputs * net.votes))
    for k in range(net.n_outputs):
        vote[k, k * net.votes : (k + 1) * net.votes] = 1.0 / net.votes
    b.add("vote", nir.Linear(weight=vote, metadata={"votes": int(net.votes)}))
    return b


def _stacked_forward(network: StackedSNN) -> bool:
    """Whether ``network`` computes :meth:`StackedSNN.forward` (synapse → neuron per layer, then the readout),
    which is what the exported graph expresses. A ``DelaySNN`` does unless it right-pads its layers' inputs
    (``pad_right``), which lengthens the output: that is refused with the fix."""
    if type(network).forward is StackedSNN.forward:
        return True
    if type(network).forward is DelaySNN.forward:
        if network.pad_right:
            raise NIRExportError(
                f"NIR export: DelaySNN(pad_right={network.pad_right}) appends {network.pad_right} zero steps to the "
                "input of every delayed layer, which a NIR graph (one step in, one step out) cannot express. Fix: "
                "export the same weights from DelaySNN(..., pad_right=0) (load this state_dict into it) and feed "
                "the padding steps as zero input on the target."
            )
        return True
    return False


def _unsupported(network: nn.Module) -> NIRExportError:
    reasons = {
        "S4DLayer": "an S4D (diagonal state-space) block has no NIR primitive (complex-valued linear recurrence)",
        "S4DPLRLayer": "an S4 DPLR state-space block has no NIR primitive (complex-valued linear recurrence)",
        "SpikeSampler": "a stochastic neuron (Bernoulli spikes) has no deterministic NIR equivalent",
        "CausalConv1d": "a causal temporal convolution over time steps has no NIR primitive with our dt",
    }
    for name, module in network.named_modules():
        if type(module).__name__ in reasons:
            return NIRExportError(
                f"NIR export: node {name!r} ({type(module).__name__}) in {type(network).__name__}: "
                f"{reasons[type(module).__name__]}. Fix: export a FeedForwardSNN, DelaySNN or ConvSNN."
            )
    return NIRExportError(
        f"NIR export: network {type(network).__name__} is not supported (known: FeedForwardSNN, DelaySNN, "
        "ConvSNN and StackedSNN subclasses with nn.Linear/DelayedLinear synapses). Fix: export one of those."
    )


def to_nir(network: nn.Module, dt: float = 1e-4, *, discretisation: str = "euler", lossy: bool = False):
    r"""The NIR graph of ``network`` (FeedForwardSNN, DelaySNN in eval mode, ConvSNN), step ``dt`` seconds.

    Each LIF layer, :math:`H = V_r + \beta(V - V_r) + cX`, :math:`S = [H \ge \theta]`, hard reset to
    :math:`V_r`, becomes NIR's :math:`\tau\dot v = (v_{leak} - v) + RI` with, per neuron,
    :math:`\tau = dt/(1-\beta)` (``discretisation="euler"``) or :math:`-dt/\ln\beta` (``"exact"``),
    :math:`R = 1` if ``decay_input`` else :math:`1/(1-\beta)`, :math:`v_{leak} = v_{reset} = V_r` and
    :math:`v_{thr} = \mathrm{nextafter}(\theta, -\infty)` (see :mod:`lightning_snn.nir.convention`). A
    ``DelayedLinear`` with integer delays :math:`d_{oi}` becomes one ``Linear`` per distinct delay value
    :math:`d` (the weights with that delay), each followed by a ``Delay`` of :math:`d\cdot dt` seconds,
    all summed into the next node: :math:`y_o[t] = \sum_d \sum_{i: d_{oi} = d} w_{oi} x_i[t - d]`.

    What NIR cannot express raises :class:`~lightning_snn.nir.errors.NIRExportError` naming the node;
    ``lossy=True`` exports an approximation instead (soft reset → hard reset, Gaussian training-mode
    delays → rounded delays) with one :class:`~lightning_snn.nir.errors.NIRLossyWarning` listing each change.
    """
    import nir  # noqa: F401  (a clear ImportError when the optional dependency is missing)

    dt, disc, changes = check_dt(dt), check_discretisation(discretisation), Changes(lossy)
    if not isinstance(network, nn.Module):
        raise TypeError(f"to_nir expects a torch.nn.Module network, got {type(network).__name__}.")
    with torch.no_grad():
        if isinstance(network, ConvSNN) and type(network).forward is ConvSNN.forward:
            builder, out = _export_conv(network, dt, disc, changes), (network.n_outputs,)
        elif isinstance(network, StackedSNN) and _stacked_forward(network):
            if not all(type(block.synapse) in (nn.Linear, DelayedLinear) for block in network.synapses):
                raise _unsupported(network)
            builder, out = _export_stacked(network, dt, disc, changes), (network.n_outputs,)
        else:
            raise _unsupported(network)
    changes.warn()
    metadata = {META_DT: dt, META_DISCRETISATION: disc, "lightning_snn.network": type(network).__name__}
    return builder.graph(out, metadata)
