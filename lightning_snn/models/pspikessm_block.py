r"""``PSpikeSSMBlock``: one P-SpikeSSM block, with the variants of the authors' code as options.

Bal & Sengupta, ICLR 2025 (arXiv 2406.02923); authors' ``NeuroCompLab-psu/PSpikeSSMs``
``src/models/sequence/backbones/block.py`` (``SequenceResidualBlock.forward``). For the block input
:math:`h` ``(T, B, H)`` and uniforms :math:`U_1, U_2`:

.. math::
    s = \mathbb{1}[\mathrm{N_{pre}}(a_1 h + b_1) > U_1], \quad v = \phi(\mathrm{SSM}(s)), \quad
    q = \mathbb{1}[a_2 v + b_2 > U_2], \quad z = \mathrm{GELU}(W q + c), \quad
    o = \mathrm{N_{post}}(h + \mathrm{drop}(z)) \ \text{or}\ \mathrm{N_{post}}(z),

where :math:`\mathrm{N_{pre}}` is the norm when ``prenorm=True`` (else identity), :math:`\mathrm{N_{post}}` the
norm when ``prenorm=False``, the residual :math:`h +` is there when ``residual=True``, and :math:`\phi` is
the authors' S4 block after the kernel when ``ssm_activation=True``: untied dropout, GELU, dropout tied
over time (``fftconv.py:142``, ``s4block.py:296-308``); else :math:`\phi` is the identity. The SSM is
:class:`~lightning_snn.layers.ssm.S4DLayer` (``kernel="s4d"``) or
:class:`~lightning_snn.layers.ssm.S4DPLRLayer` (``kernel="dplr"``, the authors'; ``two_sided`` is S4's
layer-level ``bidirectional``).

``bidirectional=True`` is the authors' block-level option, wired as their code does (``block.py:184-207``):
a second SSM (its own :math:`\phi`) reads the *same, un-flipped* input through its own affine
:math:`(a_3, b_3)` without the pre-norm, sampled with :math:`U_2`; its output has no affine; both SSM outputs
are sampled with :math:`U_1` (the forward branch's input noise), concatenated and mixed by
``Linear(2H → H)`` + GELU: :math:`z = \mathrm{GELU}(W[\mathbb{1}[a_2 v + b_2 > U_1], \mathbb{1}[v' > U_1]] + c)`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_snn import state as stream
from lightning_snn.layers.spike_mixer import ClampFuse, SpikeMixer, TiedDropout
from lightning_snn.layers.ssm import S4DLayer, S4DPLRLayer
from lightning_snn.neurons.spike_sampler import SpikeSampler

KERNELS = ("s4d", "dplr")


class SSMActivation(nn.Module):
    r""":math:`\phi(v) = \mathrm{TiedDrop}(\mathrm{GELU}(\mathrm{Drop}(v)))`: the authors' S4 block after the kernel."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.activation = nn.GELU()
        self.tied_dropout = TiedDropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.tied_dropout(self.activation(self.dropout(v)))


def build_ssm(
    kernel: str,
    d_model: int,
    d_state: int,
    init: str | None,
    dt_min: float,
    dt_max: float,
    l_max: int | None,
    two_sided: bool,
) -> nn.Module:
    """The block's SSM: S4D (``init`` ``"lin"``/``"inv"``) or S4 DPLR (``init`` ``"legs"``, needs ``l_max``)."""
    if kernel not in KERNELS:
        raise ValueError(f"PSpikeSSM: unknown kernel {kernel!r}; expected one of {KERNELS}.")
    if kernel == "s4d":
        if two_sided:
            raise ValueError("PSpikeSSM: two_sided=True needs kernel='dplr' (the S4D layer here is causal only).")
        return S4DLayer(d_model, d_state, init=init or "lin", dt_min=dt_min, dt_max=dt_max)
    if init not in (None, "legs"):
        raise ValueError(
            f"PSpikeSSM: kernel='dplr' is initialised from HiPPO-LegS; got init={init!r}. Use init='legs'."
        )
    if l_max is None:
        raise ValueError(
            "PSpikeSSM: kernel='dplr' needs l_max, the sequence length its learned C~ is tied to "
            "(e.g. l_max=784 for sequential MNIST, 64 for 8x8 digits)."
        )
    return S4DPLRLayer(d_model, d_state, l_max=l_max, dt_min=dt_min, dt_max=dt_max, two_sided=two_sided)


class PSpikeSSMBlock(nn.Module):
    """sampler → SSM (→ φ) → sampler → SpikeMixer → ClampFuse (see the module docstring)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dropout: float = 0.0,
        norm: str = "layer",
        seeds: tuple[int | None, int | None] = (None, None),
        sampler: dict[str, Any] | None = None,
        kernel: str = "s4d",
        l_max: int | None = None,
        two_sided: bool = False,
        prenorm: bool = False,
        residual: bool = True,
        ssm_activation: bool = False,
        tie_dropout: bool = False,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        sampler = dict(sampler or {})
        self.prenorm, self.residual, self.bidirectional = prenorm, residual, bidirectional
        ssm_args = (kernel, d_model, d_state, init, dt_min, dt_max, l_max, two_sided)
        self.input_sampler = SpikeSampler(d_model, seed=seeds[0], norm=norm if prenorm else "none", **sampler)
        self.ssm = build_ssm(*ssm_args)
        if ssm_activation:
            self.ssm_activation = SSMActivation(dropout)
        self.output_sampler = SpikeSampler(d_model, seed=seeds[1], **sampler)
        if bidirectional:
            self.reverse_input_sampler = SpikeSampler(d_model, seed=seeds[0], **sampler)
            self.reverse_ssm = build_ssm(*ssm_args)
            if ssm_activation:
                self.reverse_ssm_activation = SSMActivation(dropout)
            self.reverse_output_sampler = SpikeSampler(d_model, seed=seeds[1], learn_affine=False, **sampler)
        # the authors drop only on the residual branch (block.py:215); without a residual there is none
        self.mixer = SpikeMixer(d_model, bidirectional, dropout if residual else 0.0, tie_dropout=tie_dropout)
        self.fuse = ClampFuse(d_model, norm="none" if prenorm else norm, residual=residual)

    def _post(self, name: str, v: torch.Tensor) -> torch.Tensor:
        activation = getattr(self, name, None)
        return v if activation is None else activation(v)

    def forward(self, h: torch.Tensor, uniforms: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``(T, B, H)`` → ``(T, B, H)``. ``uniforms``: the draws ``(U_1, U_2)`` (default: the samplers' own)."""
        if not self.bidirectional:
            u1, u2 = (None, None) if uniforms is None else uniforms
            v = self._post("ssm_activation", self.ssm(self.input_sampler(h, uniform=u1)))
            return self.fuse(self.mixer(self.output_sampler(v, uniform=u2)), h)
        if stream.active() is not None:
            raise ValueError("PSpikeSSMBlock(bidirectional=True) has no streaming form; use bidirectional=False.")
        if uniforms is None:
            uniforms = (self.input_sampler.draw_uniform(h), self.output_sampler.draw_uniform(h))
        u1, u2 = uniforms
        v = self._post("ssm_activation", self.ssm(self.input_sampler(h, uniform=u1)))
        v_rev = self._post("reverse_ssm_activation", self.reverse_ssm(self.reverse_input_sampler(h, uniform=u2)))
        q = torch.cat([self.output_sampler(v, uniform=u1), self.reverse_output_sampler(v_rev, uniform=u1)], dim=-1)
        return self.fuse(self.mixer(q), h)
