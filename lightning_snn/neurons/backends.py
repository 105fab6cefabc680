"""LIF backends: the same dynamics (see :mod:`lightning_snn.functional.lif`) computed by different engines.

Each backend is a function ``(x, decay, threshold, cfg) -> spikes`` over time-major ``(T, B, N)`` input.
The upstream neurons are built fresh on every call and given explicit zero initial state, so no hidden
state survives between calls and a new batch size or sequence length never breaks a run.
"""

from __future__ import annotations

import torch

from lightning_snn.functional.lif import LIFConfig
from lightning_snn.functional.lif_scan import lif_fused


def native_lif(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """The package's own fused LIF (one autograd node, hand-written BPTT; equal to ``lif_reference``): Triton kernels
    on CUDA, compiled Numba loops on CPU, the PyTorch loop otherwise (:mod:`lightning_snn.functional.lif_scan`)."""
    return lif_fused(x, decay, threshold, cfg)


def check_snntorch_support(cfg: LIFConfig, learn_threshold: bool) -> None:
    if cfg.detach_reset:
        raise ValueError(
            "backend='snntorch' back-propagates through the reset (snntorch.Leaky with reset_delay=False "
            "keeps the spike's surrogate gradient in the reset). Use detach_reset=False with it, or "
            "backend='native' / 'spikingjelly' for detach_reset=True."
        )
    if cfg.reset == "hard" and cfg.v_reset != 0.0:
        raise ValueError(f"backend='snntorch' resets to zero only; got v_reset={cfg.v_reset}. Use backend='native'.")


def snntorch_lif(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """``snntorch.Leaky`` stepped over time with β = decay (``reset_delay=False``: reset in the same step).

    snnTorch integrates ``βV + X``; ``decay_input`` is applied by scaling the input by ``1 - β`` first.
    One documented difference: with the soft reset, when the membrane after a reset is still above
    threshold (H ≥ 2θ), snnTorch subtracts θ once more at the next step; the other backends do not.
    """
    import snntorch

    check_snntorch_support(cfg, learn_threshold=False)
    leaky = snntorch.Leaky(
        beta=0.5,
        threshold=1.0,
        spike_grad=cfg.surrogate,
        reset_mechanism="subtract" if cfg.reset == "soft" else "zero",
        reset_delay=False,
    )
    # registered buffers accept any tensor, one that carries grad included (test_seam_snntorch_leaky_...)
    leaky.beta = decay
    leaky.threshold = threshold
    drive = (1.0 - decay) * x if cfg.decay_input else x
    mem = torch.zeros_like(x[0])
    spikes = []
    for x_t in drive.unbind(0):
        spk, mem = leaky(x_t, mem)
        spikes.append(spk)
    return torch.stack(spikes)


def spikingjelly_lif(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """SpikingJelly 2.0 ``ParametricLIFNode`` (multi-step) called with its ``w`` replaced by ``logit(1 - β)``.

    ``k = sigmoid(w) = 1 - β`` is PLIF's reciprocal time constant; a per-neuron β broadcasts over N.
    The replacement goes through PyTorch's public ``torch.func.functional_call``, so gradients reach
    our τ; the node's use of ``w`` is pinned by ``test_seam_spikingjelly_plif_reads_sigmoid_w``
    (tests/test_upstream_seams.py). A fixed scalar β uses ``LIFNode(tau=1/(1-β))``.
    """
    from spikingjelly.activation_based import neuron

    if threshold.dim() > 0 or threshold.requires_grad:
        raise ValueError("backend='spikingjelly' needs a fixed scalar threshold; use backend='native'.")
    kwargs = dict(
        decay_input=cfg.decay_input,
        v_threshold=float(threshold),
        v_reset=cfg.v_reset if cfg.reset == "hard" else None,
        surrogate_function=cfg.surrogate,
        detach_reset=cfg.detach_reset,
        step_mode="m",
    )
    if decay.dim() == 0 and not decay.requires_grad:
        node = neuron.LIFNode(tau=float(1.0 / (1.0 - decay)), **kwargs)
    else:
        node = neuron.ParametricLIFNode(init_tau=2.0, **kwargs)
        return torch.func.functional_call(node, {"w": torch.logit(1.0 - decay)}, (x,))
    return node(x)


BACKENDS = {"native": native_lif, "snntorch": snntorch_lif, "spikingjelly": spikingjelly_lif}
