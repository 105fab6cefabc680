r"""S4 DPLR kernels (diagonal plus low rank, HiPPO-LegS): init, Cauchy/Woodbury kernel, dense reference.

The S4 state matrix is :math:`A = \Lambda - P P^*` (Gu, Goel & Ré, "Efficiently Modeling Long Sequences
with Structured State Spaces", ICLR 2022), the kernel used by P-SpikeSSM (Bal & Sengupta, ICLR 2025;
authors' configs ``configs/model/layer/pSpikeSSM.yaml``: ``mode: nplr``, ``init: legs``, ``rank: 1``,
``n_ssm: 1``). Only one half of each conjugate pair is stored (``N/2`` modes for ``d_state = N``).
Bilinear discretisation with step :math:`\Delta`:

.. math::
    \bar A = (I - \tfrac{\Delta}{2} A)^{-1}(I + \tfrac{\Delta}{2} A), \qquad
    \bar B = (I - \tfrac{\Delta}{2} A)^{-1} \Delta B, \qquad K_l = C \bar A^{\,l} \bar B .

The kernel of length :math:`L` is evaluated through its truncated generating function at the roots of
unity :math:`\omega_k = e^{-2\pi i k / L}` (:func:`dplr_kernel`): with :math:`\tilde C = C(I - \bar A^L)`
and :math:`z_k = \tfrac{2}{\Delta}\tfrac{1 - \omega_k}{1 + \omega_k}`,

.. math::
    \hat K(\omega_k) = \frac{2}{1 + \omega_k}\Big[r_{\tilde C B}(z_k) - \frac{r_{\tilde C P}(z_k)\,
    r_{P^* B}(z_k)}{1 + r_{P^* P}(z_k)}\Big], \qquad r_{uv}(z) = \Delta \sum_n \frac{u_n v_n}{z\Delta - \Delta\Lambda_n}

(a Cauchy sum over both halves of every conjugate pair, then the Woodbury identity for the rank-1 term),
and :math:`K = \mathrm{iFFT}(\hat K)`. As in S4, the learned output vector is :math:`\tilde C` itself
(set once from a random :math:`C` at construction, :func:`c_tilde_from_c`). :func:`dplr_dense` builds the
dense :math:`(\bar A, \bar B)` of the full conjugate-doubled system: the reference that the tests compare
the Cauchy kernel with, and the recurrence used for streaming.
"""

from __future__ import annotations

import math

import torch


def _conj(x: torch.Tensor) -> torch.Tensor:
    """Both halves of every conjugate pair along the last axis: ``[x, conj(x)]``."""
    return torch.cat([x, x.conj()], dim=-1)


def hippo_legs_nplr(
    d_state: int, b_clip: float = 2.0, dtype: torch.dtype = torch.complex64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(Lambda, P, B)``, complex ``(N/2,)`` each: the normal-plus-low-rank form of HiPPO-LegS.

    LegS: :math:`A_{nk} = -\sqrt{(2n+1)(2k+1)}` for :math:`n > k`, :math:`-(n+1)` on the diagonal,
    :math:`B_n = \sqrt{2n+1}`, :math:`P_n = \sqrt{n + 1/2}`. :math:`A + PP^\top` is :math:`-\tfrac12 I` plus a
    skew-symmetric matrix, diagonalised by ``eigh`` in double precision: :math:`A + PP^\top = V \Lambda V^*`.
    Returns the eigenvalues with negative imaginary part, :math:`V^* P` and :math:`V^* B` (imaginary part
    clipped to ``±b_clip``), in the order of the authors' ``src/models/hippo/hippo.py`` ``nplr``.
    """
    if not isinstance(d_state, int) or d_state < 2 or d_state % 2:
        raise ValueError(f"d_state={d_state!r} is invalid: the DPLR kernel needs an even integer >= 2 (e.g. 64).")
    q = torch.arange(d_state, dtype=torch.float64)
    row, col = q[:, None], q[None, :]
    r = torch.sqrt(2 * q + 1)
    a = -torch.where(row > col, r[:, None] * r[None, :], torch.zeros(())) - torch.diag(q + 1)
    b = r.clone()
    p = torch.sqrt(q + 0.5)
    ap = a + p[:, None] * p[None, :]
    w_re = torch.diagonal(ap).mean()
    w_im, v = torch.linalg.eigh(ap * -1j)
    w = w_re + 1j * w_im
    idx = torch.argsort(w.imag)
    v, w = v[:, idx][:, : d_state // 2], w[idx][: d_state // 2]
    v_inv = v.conj().T
    b = v_inv @ b.to(v.dtype)
    p = v_inv @ p.to(v.dtype)
    b = b.real + 1j * b.imag.clamp(-b_clip, b_clip)
    return w.to(dtype), p.to(dtype), b.to(dtype)


def dt_from_inverse_softplus(inv_dt: torch.Tensor) -> torch.Tensor:
    r""":math:`\Delta = \mathrm{softplus}(w)` (S4's ``dt_transform: softplus``; unbounded above)."""
    return torch.nn.functional.softplus(inv_dt)


def inverse_softplus(dt: torch.Tensor) -> torch.Tensor:
    r""":math:`w = \log(e^{\Delta} - 1)`, the inverse of :func:`dt_from_inverse_softplus`."""
    return torch.log(torch.expm1(dt))


def dplr_dense(
    dt: torch.Tensor, lam: torch.Tensor, p: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Dense bilinear ``(A_bar (H, N, N), B_bar (H, N))`` of the conjugate-doubled system (complex).

    ``dt`` ``(H,)``; ``lam``, ``p``, ``b`` complex ``(N/2,)`` or ``(H, N/2)``.
    """
    lam, p, b = (torch.broadcast_to(t, (dt.shape[0], t.shape[-1])) for t in (lam, p, b))
    lam, p, b = _conj(lam), _conj(p), _conj(b)
    a = torch.diag_embed(lam) - p[..., :, None] * p.conj()[..., None, :]  # (H, N, N)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    half = (dt[:, None, None] / 2).to(a.dtype)
    back = eye - half * a
    a_bar = torch.linalg.solve(back, eye + half * a)
    b_bar = torch.linalg.solve(back, (dt[:, None].to(a.dtype) * b)[..., None])[..., 0]
    return a_bar, b_bar


def c_tilde_from_c(c: torch.Tensor, a_bar: torch.Tensor, length: int) -> torch.Tensor:
    r""":math:`\tilde C = C (I - \bar A^L)` for ``c`` complex ``(..., H, N/2)`` (one half of each pair)."""
    power = torch.linalg.matrix_power(a_bar, length)  # (H, N, N)
    full = _conj(c)
    return (full - torch.einsum("...hm,hmn->...hn", full, power))[..., : c.shape[-1]]


def c_from_c_tilde(c_tilde: torch.Tensor, a_bar: torch.Tensor, length: int) -> torch.Tensor:
    r""":math:`C = \tilde C (I - \bar A^L)^{-1}`, full conjugate-doubled ``(..., H, N)``."""
    eye = torch.eye(a_bar.shape[-1], dtype=a_bar.dtype, device=a_bar.device)
    m = eye - torch.linalg.matrix_power(a_bar, length)  # (H, N, N); solve x m = c  <=>  m^T x^T = c^T
    full = _conj(c_tilde)
    return torch.linalg.solve(m.transpose(-1, -2), full.unsqueeze(-1)).squeeze(-1)


def dplr_kernel(
    dt: torch.Tensor, lam: torch.Tensor, p: torch.Tensor, b: torch.Tensor, c_tilde: torch.Tensor, length: int
) -> torch.Tensor:
    r"""Real kernel ``(channels, H, length)`` from :math:`\tilde C` ``(channels, H, N/2)`` (module docstring).

    ``dt`` ``(H,)``; ``lam``, ``p``, ``b`` complex ``(N/2,)`` (shared by all channels, ``n_ssm = 1``) or
    ``(H, N/2)``. A plain PyTorch transcription of ``SSMKernelDPLR.forward`` (rank 1, ``cauchy_naive``).
    """
    if length < 1:
        raise ValueError(f"Kernel length must be >= 1, got length={length}.")
    cdtype = c_tilde.dtype
    omega = torch.exp(-2j * math.pi * torch.arange(length // 2 + 1, dtype=torch.float64) / length)
    omega = omega.to(device=c_tilde.device, dtype=cdtype)
    z = 2 * (1 - omega) / (1 + omega)  # (L/2+1,)
    dt_c = dt.to(cdtype)[:, None]  # (H, 1)
    lam, p, b = (torch.broadcast_to(t, c_tilde.shape[1:]) for t in (lam, p, b))  # (H, N/2)
    dt_lam = _conj(lam * dt_c)  # (H, N)
    bp = torch.stack([b, p], 0)  # (2, H, N/2): [B, P]
    cq = torch.cat([c_tilde, p.conj()[None]], 0)  # (channels + 1, H, N/2): [C~, P*]
    v = _conj(bp[:, None] * cq[None] * dt_c)  # (2, channels + 1, H, N)
    cauchy = 1 / (z - dt_lam[..., None])  # (H, N, L/2+1)
    r = torch.einsum("abhn,hnl->abhl", v, cauchy)  # Cauchy sums (2, channels + 1, H, L/2+1)
    k_f = r[0, :-1] - r[0, -1:] * r[1, :-1] / (1 + r[1, -1:])  # Woodbury, rank 1
    k_f = k_f * 2 / (1 + omega)
    return torch.fft.irfft(k_f, n=length)  # (channels, H, L)


def dense_kernel(a_bar: torch.Tensor, b_bar: torch.Tensor, c_full: torch.Tensor, length: int) -> torch.Tensor:
    r"""Direct :math:`K_l = \mathrm{Re}(C \bar A^{\,l} \bar B)`, ``(..., H, length)`` (the tests' reference)."""
    x, out = b_bar, []
    for _ in range(length):
        out.append((c_full * x).sum(-1).real)
        x = torch.einsum("hmn,hn->hm", a_bar, x)
    return torch.stack(out, -1)


def two_sided_fft_conv(u: torch.Tensor, k_fwd: torch.Tensor, k_bwd: torch.Tensor) -> torch.Tensor:
    r"""S4's bidirectional convolution over ``u`` ``(T, B, H)`` with kernels ``(H, T)``:

    .. math:: y_t = \sum_{l \ge 0} K^{\rightarrow}_l u_{t-l} + \sum_{m \ge 0} K^{\leftarrow}_m u_{t+1+m}

    (the authors' ``fftconv.py`` pads ``k_fwd`` right and the flipped ``k_bwd`` left to ``2T``; the backward
    part starts at ``t + 1``, the "off-by-one" their code keeps on purpose).
    """
    steps = u.shape[0]
    k = torch.nn.functional.pad(k_fwd, (0, steps)) + torch.nn.functional.pad(k_bwd.flip(-1), (steps, 0))
    x = u.permute(1, 2, 0)  # (B, H, T)
    y = torch.fft.irfft(torch.fft.rfft(x, n=2 * steps) * torch.fft.rfft(k, n=2 * steps), n=2 * steps)
    return y[..., :steps].permute(2, 0, 1)
