"""S4 DPLR kernel: HiPPO-LegS init, Cauchy/Woodbury kernel = direct powers, two-sided conv, recurrence."""

import pytest
import torch

from lightning_snn import state as stream
from lightning_snn.functional.s4_dplr import (
    c_from_c_tilde,
    c_tilde_from_c,
    dense_kernel,
    dplr_dense,
    dplr_kernel,
    hippo_legs_nplr,
    two_sided_fft_conv,
)
from lightning_snn.layers.ssm import S4DPLRLayer


def legs_matrix(n: int) -> torch.Tensor:
    """HiPPO-LegS written out: -sqrt((2i+1)(2k+1)) below the diagonal, -(i+1) on it."""
    a = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for k in range(n):
            a[i, k] = -(((2 * i + 1) * (2 * k + 1)) ** 0.5) if i > k else (-(i + 1) if i == k else 0.0)
    return a


def test_legs_nplr_is_similar_to_the_legs_matrix():
    n = 8
    lam, p, b = hippo_legs_nplr(n, dtype=torch.complex128)
    assert lam.shape == p.shape == b.shape == (n // 2,)
    full_lam, full_p = torch.cat([lam, lam.conj()]), torch.cat([p, p.conj()])
    dplr = torch.diag(full_lam) - full_p[:, None] * full_p.conj()[None, :]
    ours = torch.linalg.eigvals(dplr)  # similar to LegS, whose eigenvalues are -1, -2, ..., -n
    assert torch.allclose(ours.real.sort().values, -torch.arange(n, 0, -1, dtype=torch.float64), atol=1e-6)
    assert ours.imag.abs().max() < 1e-6
    assert torch.allclose(torch.linalg.eigvals(legs_matrix(n)).real.sort().values, ours.real.sort().values, atol=1e-6)
    assert torch.allclose(lam.real, torch.full((n // 2,), -0.5, dtype=torch.float64))  # A + PP^T = -I/2 + skew
    assert torch.all(lam.imag < 0)
    # V is unitary: |P|^2 over both halves of each pair = sum (k + 1/2) = n^2 / 2
    assert abs(2 * (p.abs() ** 2).sum().item() - n * n / 2) < 1e-4
    assert torch.all(b.imag.abs() <= 2.0 + 1e-6)  # B_clip = 2


@pytest.mark.parametrize("steps", [1, 7, 20])
@pytest.mark.parametrize("channels", [1, 2])
def test_cauchy_woodbury_kernel_equals_direct_powers_of_the_discretised_matrices(steps, channels):
    gen = torch.Generator().manual_seed(steps)
    h, n = 3, 8
    lam, p, b = (t.cdouble() for t in hippo_legs_nplr(n))
    lam = lam + 0.1 * torch.randn(n // 2, generator=gen, dtype=torch.cdouble)  # off the init: any DPLR
    p = p + 0.1 * torch.randn(n // 2, generator=gen, dtype=torch.cdouble)
    dt = torch.exp(torch.empty(h, dtype=torch.float64).uniform_(-5, -1, generator=gen))
    c = torch.randn(channels, h, n // 2, generator=gen, dtype=torch.cdouble)
    a_bar, b_bar = dplr_dense(dt, lam, p, b)
    c_tilde = c_tilde_from_c(c, a_bar, steps)
    fast = dplr_kernel(dt, lam, p, b, c_tilde, steps)
    for ch in range(channels):
        direct = dense_kernel(a_bar, b_bar, torch.cat([c[ch], c[ch].conj()], -1), steps)
        assert torch.allclose(fast[ch], direct, atol=1e-10, rtol=1e-8)
    assert torch.allclose(c_from_c_tilde(c_tilde, a_bar, steps), torch.cat([c, c.conj()], -1), atol=1e-10)


def test_dplr_kernel_gradcheck():
    gen = torch.Generator().manual_seed(0)
    lam, p, b = (t.cdouble() for t in hippo_legs_nplr(4))
    dt = torch.tensor([0.05, 0.2], dtype=torch.float64, requires_grad=True)
    c = torch.randn(1, 2, 2, generator=gen, dtype=torch.cdouble, requires_grad=True)
    p = p.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda d, pp, cc: dplr_kernel(d, lam, pp, b, cc, 6), (dt, p, c))


def test_two_sided_conv_is_the_authors_off_by_one_sum():
    gen = torch.Generator().manual_seed(1)
    u, kf, kb = torch.randn(6, 2, 3, generator=gen), torch.randn(3, 6, generator=gen), torch.randn(3, 6, generator=gen)
    y = two_sided_fft_conv(u, kf, kb)
    ref = torch.zeros_like(u)
    for t in range(6):
        for j in range(6):
            if j <= t:
                ref[t] += kf[:, t - j] * u[j]
            if j > t:
                ref[t] += kb[:, j - t - 1] * u[j]
    assert torch.allclose(y, ref, atol=1e-5)


def test_layer_fft_equals_recurrence_streaming_and_step():
    torch.manual_seed(0)
    layer = S4DPLRLayer(3, 8, l_max=16).double()
    u = torch.randn(12, 2, 3, dtype=torch.float64)
    full = layer(u)
    assert torch.allclose(full, layer(u, mode="recurrence"), atol=1e-10)
    y1, s1 = layer.forward_with_state(u[:5])
    y2, _ = layer.forward_with_state(u[5:], s1)
    assert torch.allclose(torch.cat([y1, y2]), full, atol=1e-10)
    y_t, state = layer.step(u[0])
    assert torch.allclose(y_t, full[0], atol=1e-10) and state.shape == (2, 3, 8)
    assert isinstance(s1, stream.SSMState)


def test_layer_errors_and_two_sided_output():
    torch.manual_seed(0)
    layer = S4DPLRLayer(3, 8, l_max=10, two_sided=True)
    u = torch.randn(10, 2, 3)
    k = layer.kernel(10)
    assert torch.allclose(layer(u), two_sided_fft_conv(u, k[0], k[1]) + layer.D * u, atol=1e-6)
    with pytest.raises(ValueError, match="l_max=10"):
        layer(torch.randn(11, 2, 3))
    with pytest.raises(ValueError, match="two_sided=False"):
        layer.forward_with_state(u)
    with pytest.raises(ValueError, match="d_state"):
        S4DPLRLayer(3, 7, l_max=10)
