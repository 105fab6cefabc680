r"""``from_nir``: a NIR graph as a time-major PyTorch module (``(T, B, *input)`` → ``(T, B, *output)``).

The graph must be a chain from its ``Input`` to its ``Output``, where a link may fan out into branches
``Linear/Affine → Delay`` that are summed into the next node (the form :func:`~lightning_snn.nir.to_nir`
gives a ``DelayedLinear``). Nodes: ``Affine``, ``Linear``, ``Conv2d``, ``Flatten``, ``SumPool2d``,
``AvgPool2d``, ``Threshold``, ``Delay`` (after a linear node, integer multiples of ``dt``), ``LIF`` and
``LI`` (:mod:`lightning_snn.nir.convention`). Anything else (recurrent sub-graphs, ``CubaLIF``, ``IF``,
``Conv1d``) raises :class:`~lightning_snn.nir.errors.NIRImportError` naming the node.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lightning_snn.nir.convention import (
    check_discretisation,
    check_dt,
    decay_from_tau,
    input_gain,
    threshold_from_nir,
)
from lightning_snn.nir.errors import NIRImportError
from lightning_snn.nir.export import META_DISCRETISATION
from lightning_snn.nir.modules import DelayedSum, FixedLI, FixedLIF, Flatten, FrameModule, Heaviside, SumPool2d


class NIRNetwork(nn.Module):
    """The imported chain: ``stages[k]`` computes node ``names[k]``; :meth:`trace` returns every node's output."""

    def __init__(self, names: list[str], stages: list[nn.Module], input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.names, self.input_shape = list(names), tuple(int(s) for s in input_shape)
        self.stages = nn.ModuleList(stages)

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{node name: output (T, B, *shape)}`` for input ``x`` ``(T, B, *input_shape)`` (or flattened)."""
        if x.dim() == 3 and len(self.input_shape) > 1:
            x = x.reshape(*x.shape[:2], *self.input_shape)
        if tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(
                f"NIRNetwork expects time-major input (T, B, {', '.join(map(str, self.input_shape))}); "
                f"got shape {tuple(x.shape)}."
            )
        outputs = {}
        for name, stage in zip(self.names, self.stages):
            x = stage(x)
            outputs[name] = x
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output node's value ``(T, B, *output_shape)``."""
        return list(self.trace(x).values())[-1]


def _arr(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _meta(graph, key: str):
    value = (getattr(graph, "metadata", None) or {}).get(key)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode() if isinstance(value, bytes) else value


class _Importer:
    def __init__(self, graph, dt: float, discretisation: str, dtype: torch.dtype) -> None:
        import nir

        self.nir, self.graph, self.dt, self.disc, self.dtype = nir, graph, dt, discretisation, dtype
        self.succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
        self.pred: dict[str, list[str]] = {k: [] for k in graph.nodes}
        for a, b in graph.edges:
            self.succ[a].append(b)
            self.pred[b].append(a)

    def error(self, name: str, reason: str, fix: str) -> NIRImportError:
        node = self.graph.nodes[name]
        return NIRImportError(f"NIR import: node {name!r} ({type(node).__name__}): {reason}. Fix: {fix}.")

    def tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(_arr(value)), dtype=self.dtype)

    def steps(self, name: str, seconds: np.ndarray) -> int:
        steps = _arr(seconds) / self.dt
        d = np.round(steps)
        if not np.allclose(steps, d, rtol=0, atol=1e-6) or (d < 0).any() or np.unique(d).size != 1:
            raise self.error(
                name,
                f"delays {np.unique(_arr(seconds))[:5].tolist()} s are not one non-negative integer multiple of "
                f"dt = {self.dt} s",
                "import with the dt the graph was exported with (from_nir(graph, dt=...))",
            )
        return int(d.flat[0])

    def beta(self, name: str, tau: np.ndarray) -> torch.Tensor:
        tau = _arr(tau)
        beta = decay_from_tau(tau, self.dt, self.disc)
        if not ((beta > 0) & (beta < 1)).all():
            raise self.error(
                name,
                f"τ in [{tau.min():.4g}, {tau.max():.4g}] s gives a decay outside (0, 1) with dt = {self.dt} s "
                f"({self.disc})",
                "import with the dt the graph was exported with (snnTorch uses 1e-4), or discretisation='exact'",
            )
        return self.tensor(beta)

    def neuron(self, name: str, node) -> nn.Module:
        nir = self.nir
        if isinstance(node, nir.LIF):
            v_leak, v_reset = _arr(node.v_leak), _arr(node.v_reset)
            if not (np.array_equal(v_leak, v_reset) and np.unique(v_reset).size == 1):
                raise self.error(
                    name,
                    f"v_leak {np.unique(v_leak)[:4].tolist()} and v_reset {np.unique(v_reset)[:4].tolist()} must be "
                    "one common value (our LIF leaks to and resets to the same rest potential V_r)",
                    "export with v_leak = v_reset, one value for the layer",
                )
            beta = self.beta(name, node.tau)
            decay_input, gain = input_gain(node.r, beta.double().numpy())
            theta = threshold_from_nir(node.v_threshold, self.dtype)
            return FixedLIF(
                beta,
                theta,
                float(v_reset.flat[0]),
                decay_input,
                node.tau.shape,
                None if gain is None else self.tensor(gain),
            )
        if isinstance(node, nir.LI):
            if not np.all(_arr(node.v_leak) == 0):
                raise self.error(name, "v_leak ≠ 0 is not supported for LI", "export the readout with v_leak = 0")
            beta = self.beta(name, node.tau)
            decay_input, gain = input_gain(node.r, beta.double().numpy())
            return FixedLI(beta, decay_input, node.tau.shape, None if gain is None else self.tensor(gain))
        raise AssertionError(name)

    def linear(self, node) -> nn.Linear:
        weight = self.tensor(node.weight)
        bias = getattr(node, "bias", None)
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=self.dtype)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(self.tensor(bias))
        return layer.requires_grad_(False)

    def module(self, name: str, node) -> nn.Module:
        nir = self.nir
        if isinstance(node, (nir.Affine, nir.Linear)):
            if np.asarray(node.weight).ndim != 2:
                raise self.error(name, "only 2-D weights (out, in) are supported", "flatten the input first")
            return self.linear(node)
        if isinstance(node, (nir.LIF, nir.LI)):
            return self.neuron(name, node)
        if isinstance(node, nir.Conv2d):
            weight = self.tensor(node.weight)
            conv = nn.Conv2d(
                weight.shape[1] * node.groups,
                weight.shape[0],
                tuple(weight.shape[2:]),
                stride=node.stride,
                padding=node.padding if isinstance(node.padding, str) else tuple(np.broadcast_to(node.padding, 2)),
                dilation=node.dilation,
                groups=node.groups,
                dtype=self.dtype,
            )
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(self.tensor(node.bias))
            return FrameModule(conv.requires_grad_(False))
        if isinstance(node, nir.SumPool2d):
            return FrameModule(SumPool2d(node.kernel_size, node.stride, node.padding))
        if isinstance(node, nir.AvgPool2d):
            kernel, stride, padding = (
                tuple(int(v) for v in np.broadcast_to(a, 2)) for a in (node.kernel_size, node.stride, node.padding)
            )
            return FrameModule(nn.AvgPool2d(kernel, stride, padding))
        if isinstance(node, nir.Threshold):
            return Heaviside(self.tensor(node.threshold))
        if isinstance(node, nir.Flatten):
            return Flatten(int(node.start_dim), int(node.end_dim))
        if isinstance(node, nir.NIRGraph):
            raise self.error(
                name, "nested (e.g. recurrent) sub-graphs are not supported", "export a feed-forward network"
            )
        raise self.error(
            name,
            "this node type has no mapping in from_nir (known: Affine, Linear, Conv2d, Flatten, SumPool2d, "
            "AvgPool2d, Threshold, Delay after a linear node, LIF, LI)",
            "convert the node to a supported form before importing",
        )

    def delayed_group(self, current: str):
        """``(target, DelayedSum)`` when ``current`` fans out into ``Linear/Affine [→ Delay]`` branches that
        all end in one node, else ``None``."""
        nir, nodes = self.nir, self.graph.nodes
        branches, targets = [], set()
        for s in self.succ[current]:
            if not isinstance(nodes[s], (nir.Linear, nir.Affine)) or len(self.succ[s]) != 1:
                return None
            nxt, delay = self.succ[s][0], 0
            if isinstance(nodes[nxt], nir.Delay):
                if len(self.succ[nxt]) != 1 or len(self.pred[nxt]) != 1:
                    return None
                delay, nxt = self.steps(nxt, nodes[nxt].delay), self.succ[nxt][0]
            branches.append((s, delay))
            targets.add(nxt)
        has_delay = any(d for _, d in branches)
        if len(targets) != 1 or not (len(branches) > 1 or has_delay):
            return None
        (target,) = targets
        weights = [self.tensor(nodes[s].weight) for s, _ in branches]
        biases = [self.tensor(nodes[s].bias) if isinstance(nodes[s], nir.Affine) else None for s, _ in branches]
        return target, DelayedSum(weights, biases, [d for _, d in branches])

    def run(self) -> NIRNetwork:
        nir, nodes = self.nir, self.graph.nodes
        inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
        if len(inputs) != 1:
            raise NIRImportError(f"NIR import: the graph needs exactly one Input node, found {inputs}.")
        input_shape = tuple(int(v) for v in np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1))
        names, stages, current, seen = [], [], inputs[0], set()
        while not isinstance(nodes[current], nir.Output):
            if current in seen:
                raise self.error(current, "the graph has a cycle", "export a feed-forward network")
            seen.add(current)
            group = self.delayed_group(current)
            if group is not None:
                target, module = group
                names.append(f"{target}.input")
                stages.append(module)
                current = target
            else:
                succ = self.succ[current]
                if len(succ) != 1:
                    raise self.error(
                        current,
                        f"it feeds {len(succ)} nodes {succ}; from_nir runs chains (with delayed fan-outs only)",
                        "export a feed-forward chain",
                    )
                current = succ[0]
                if len(self.pred[current]) != 1:
                    raise self.error(
                        current,
                        f"it sums {len(self.pred[current])} inputs outside a delayed fan-out",
                        "export a feed-forward chain",
                    )
            if isinstance(nodes[current], nir.Output):
                break
            if isinstance(nodes[current], nir.Delay):
                raise self.error(
                    current, "a Delay must follow a Linear/Affine node", "put the Delay after a weight node"
                )
            names.append(current)
            stages.append(self.module(current, nodes[current]))
        return NIRNetwork(names, stages, input_shape)


def from_nir(
    graph, dt: float = 1e-4, *, discretisation: str | None = None, dtype: torch.dtype | None = None
) -> NIRNetwork:
    r"""A time-major module computing ``graph`` in steps of ``dt`` seconds.

    NIR's :math:`\tau\dot v = (v_{leak} - v) + RI`, :math:`z = [v > v_{thr}]` becomes our LIF
    :math:`H = V_r + \beta(V - V_r) + cX`, :math:`S = [H \ge \theta]` with :math:`\beta = 1 - dt/\tau`
    (``"euler"``, snnTorch's convention) or :math:`e^{-dt/\tau}` (``"exact"``), :math:`V_r = v_{leak} =
    v_{reset}`, :math:`c = 1-\beta` when :math:`R = 1`, :math:`c = 1` when :math:`R(1-\beta) = 1`, else an input
    gain :math:`R(1-\beta)`, and θ the smallest float of ``dtype`` above :math:`v_{thr}`.
    ``discretisation=None`` takes the one the graph records (``to_nir`` writes it), else ``"euler"``.
    A ``Delay`` of :math:`d\cdot dt` seconds delays by ``d`` steps. The result's :meth:`NIRNetwork.trace`
    gives every node's output by name.
    """
    dt = check_dt(dt)
    if discretisation is None:
        discretisation = _meta(graph, META_DISCRETISATION) or "euler"
    check_discretisation(discretisation)
    return _Importer(graph, dt, discretisation, dtype or torch.get_default_dtype()).run()
