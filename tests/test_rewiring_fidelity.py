"""Paper D's rewiring recipe (``mbalazs98/spatiotemporal``) against a transcription of the authors' code.

The callback is driven by hand around a plain PyTorch Adam loop (the hooks Lightning calls, in its order:
backward, ``on_before_optimizer_step``, ``optimizer.step``, ``on_train_batch_end``), on fixed inputs.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_snn.callbacks.rewiring import Rewiring
from lightning_snn.functional import rewiring as F

AUTHORS = dict(
    sign="dale",
    excitatory_fraction=0.5,
    rigl_score="signed",
    regrow_magnitude=1e-12,
    reset_moments=False,
    mask_inactive_grad=False,
)


def attach(callback: Rewiring, root: nn.Module, mask: torch.Tensor, sign: torch.Tensor, theta: torch.Tensor):
    """Set up the callback on ``root`` (one Linear, ``root[0]``) with the given mask, signs and magnitudes."""
    callback.setup(None, root, "fit")
    callback.on_fit_start(None, root)
    layer = callback._layers["0"]
    layer.mask, layer.sign = mask.clone(), sign.clone()
    with torch.no_grad():
        root[0].weight.copy_(sign * theta * mask)
    return layer


def our_step(callback, root, optimizer, loss_fn):
    optimizer.zero_grad()
    loss_fn(root[0].weight).backward()
    callback.on_before_optimizer_step(None, None, optimizer)
    optimizer.step()
    callback.on_train_batch_end(SimpleNamespace(optimizers=[optimizer]), None, None, None, 0)


def authors_step(theta, sign, optimizer, loss_fn, l1, n_active):
    """ST model.py:127-155 and snn_delays.py:128-159 for one Dcls1d weight (the magnitude ``theta``)."""
    mask = theta.data > 0
    optimizer.zero_grad()
    loss = loss_fn(theta * sign)
    loss = loss + l1 * torch.norm(theta, 1)
    loss.backward()
    grad = theta.grad
    optimizer.step()
    with torch.no_grad():
        theta *= mask
        is_con = theta > 0
        nb_reconnect = n_active - torch.sum(is_con)
        grad[is_con] = float("inf")
        chosen = torch.sort(grad.view(-1), descending=False)[1][: int(nb_reconnect)]
        if nb_reconnect > 0:
            theta[torch.unravel_index(chosen, grad.shape)] = 1e-12


def fixed_problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 8, generator=gen), torch.randn(16, 4, generator=gen)
    theta = 0.05 + torch.rand(4, 8, generator=gen)  # every magnitude far above the few steps' shrinkage
    mask = F.random_mask(torch.Size([4, 8]), 16, gen)
    sign = F.dale_signs(torch.Size([4, 8]), 0.5, gen)
    return (lambda w: ((x @ w.T - y) ** 2).mean()), theta, mask, sign


def test_l1_through_adam_and_dense_moments_equal_the_authors_loop():
    """λ·sign(W) added before the step = the loss term λ‖θ‖₁ through Adam; inactive synapses' Adam moments
    see the dense gradient and the weights are zeroed after the step, as in the authors' loop."""
    loss_fn, theta0, mask, sign = fixed_problem()
    root = nn.Sequential(nn.Linear(8, 4, bias=False))
    callback = Rewiring(sparsity=0.5, l1_loss=0.01, **AUTHORS)
    attach(callback, root, mask, sign, theta0)
    ours = torch.optim.Adam(root.parameters(), lr=1e-3)
    theta = nn.Parameter(theta0 * mask)
    theirs = torch.optim.Adam([theta], lr=1e-3)
    for _ in range(5):
        our_step(callback, root, ours, loss_fn)
        authors_step(theta, sign, theirs, loss_fn, 0.01, 16)
    torch.testing.assert_close(root[0].weight.detach(), sign * theta.detach(), rtol=1e-6, atol=1e-8)
    state_ours, state_theirs = ours.state[root[0].weight], theirs.state[theta]
    torch.testing.assert_close(state_ours["exp_avg"], sign * state_theirs["exp_avg"], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(state_ours["exp_avg_sq"], state_theirs["exp_avg_sq"], rtol=1e-5, atol=1e-12)
    assert (state_ours["exp_avg_sq"][~mask] > 0).all()  # the dense gradient reached the inactive moments


def test_signed_score_regrows_where_the_authors_do():
    """The ``n`` inactive synapses with the most negative ∂L/∂θ, negative or not (snn_delays.py:141-149)."""
    gen = torch.Generator().manual_seed(1)
    grad_w, sign = torch.randn(6, 10, generator=gen), F.dale_signs(torch.Size([6, 10]), 0.5, gen)
    mask = F.random_mask(torch.Size([6, 10]), 20, gen)
    grad_theta = sign * grad_w
    for n in (3, 25, 40):  # 40 = every inactive synapse, including positive gradients
        ours = F.regrow_positions(F.signed_rigl_scores(grad_w, sign), mask, n)
        authors = grad_theta.clone()
        authors[mask] = float("inf")
        chosen = torch.sort(authors.view(-1))[1][:n]
        expected = torch.zeros_like(mask)
        expected.view(-1)[chosen] = True
        assert torch.equal(ours, expected)


def test_just_removed_synapses_are_regrown_last_with_signed_scores():
    scores = torch.tensor([[-5.0, -1.0, 3.0, 2.0]])
    mask = torch.tensor([[False, False, True, False]])
    removed = torch.tensor([[False, False, False, True]])
    assert F.regrow_positions(scores, mask, 2, removed).tolist() == [[True, True, False, False]]
    assert F.regrow_positions(scores, mask, 3, removed).tolist() == [[True, True, False, True]]


def test_l1_driven_rewiring_cuts_at_the_expected_rate():
    """With no task gradient, Adam turns λ·sign(W) into a step of lr per step: a synapse of magnitude θ0 is
    cut at step ⌈θ0/lr⌉, and every regrown one (1e-12) at the next step, so after k steps exactly
    #{θ0 ≤ k·lr} synapses have been cut (and regrown) per step."""
    lr, k_max = 1e-3, 6
    theta0 = ((torch.arange(32, dtype=torch.float32) % 8) + 0.5).reshape(4, 8) * lr  # 0.5, 1.5, ... 7.5 × lr
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[:2] = True  # 16 active: magnitudes 0.5 ... 7.5 lr, two of each
    sign = F.dale_signs(torch.Size([4, 8]), 0.5, torch.Generator().manual_seed(0))
    root = nn.Sequential(nn.Linear(8, 4, bias=False))
    callback = Rewiring(sparsity=0.5, l1_loss=0.01, **AUTHORS)
    layer = attach(callback, root, mask, sign, theta0)
    optimizer = torch.optim.Adam(root.parameters(), lr=lr)
    cut_per_step = []
    for _ in range(k_max):
        before = layer.rewired_total
        our_step(callback, root, optimizer, lambda w: 0.0 * w.sum())
        cut_per_step.append(layer.rewired_total - before)
        assert int(layer.mask.sum()) == 16  # the count stays exact
    theta_active = theta0[mask]
    assert cut_per_step == [int((theta_active <= k * lr).sum()) for k in range(1, k_max + 1)]
    assert cut_per_step == [2, 4, 6, 8, 10, 12]


def test_moment_reset_is_optional():
    loss_fn, theta0, mask, sign = fixed_problem(2)
    states = {}
    for reset in (True, False):
        root = nn.Sequential(nn.Linear(8, 4, bias=False))
        callback = Rewiring(sparsity=0.5, l1_loss=0.5, **{**AUTHORS, "reset_moments": reset})
        layer = attach(callback, root, mask, sign, theta0 * 0.002)  # large L1: cuts in the first steps
        optimizer = torch.optim.Adam(root.parameters(), lr=1e-3)
        for _ in range(3):
            our_step(callback, root, optimizer, loss_fn)
        assert layer.rewired_total > 0
        states[reset] = optimizer.state[root[0].weight]["exp_avg_sq"]
    assert (states[True] == 0).any() and not (states[False] == 0).any()


def test_dale_signs_are_one_per_presynaptic_neuron_half_excitatory():
    sign = F.dale_signs(torch.Size([5, 40]), 0.5, torch.Generator().manual_seed(3))
    assert (sign == sign[:1]).all() and int((sign[0] > 0).sum()) == 20


@pytest.mark.parametrize("bad", [-0.1, float("nan"), True, "0.01"])
def test_bad_l1_loss_is_rejected_with_the_argument_named(bad):
    with pytest.raises(ValueError, match="l1_loss"):
        Rewiring(l1_loss=bad)


@pytest.mark.parametrize("bad", [-0.01, float("inf"), float("nan"), True, "0.01"])
def test_l1_loss_must_be_a_finite_number_at_least_zero(bad):
    with pytest.raises(ValueError, match=r"l1_loss must be a finite number >= 0.*0\.01"):
        Rewiring(sparsity=0.5, l1_loss=bad)
