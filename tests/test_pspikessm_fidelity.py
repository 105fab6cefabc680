"""P-SpikeSSM against transcriptions of the authors' code (NeuroCompLab-psu/PSpikeSSMs), same parameters and noise.

Each ``authors_*`` function below is a few lines of plain PyTorch copied from their forward passes
(layout ``(B, L, H)`` as theirs); ``docs/fidelity/pspikessm.md`` cites the lines.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_snn.data.sequential_digits import bitreversal_permutation
from lightning_snn.functional.sampling import bernoulli_spikes
from lightning_snn.lit.classifier import SpikingClassifier
from lightning_snn.models.pspikessm import PSpikeSSM
from lightning_snn.models.pspikessm_block import PSpikeSSMBlock, SSMActivation


class Replace(torch.autograd.Function):  # block.py:42-49
    @staticmethod
    def forward(ctx, z1, z1_r):
        return z1_r

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def stoch_spike_gen(y, u):  # block.py:142-150
    spikes = torch.where(y > u, torch.ones_like(y), torch.zeros_like(y))
    return Replace.apply(torch.clamp(y, 0, 1), spikes)


def authors_norm(norm, y):  # src/models/nn/normalization.py: BatchNorm1d over (B, H, L), LayerNorm over H
    if isinstance(norm, torch.nn.BatchNorm1d):
        return norm(y.transpose(1, 2)).transpose(1, 2)
    return norm(y)


def authors_block(blk: PSpikeSSMBlock, x, u1, u2, prenorm, residual, bidirectional):
    """``SequenceResidualBlock.forward`` (block.py:158-224), x ``(B, L, H)``; ``layer`` = S4Block (GELU after)."""
    t = lambda a: a.transpose(0, 1)  # noqa: E731  our layers are (T, B, H)
    layer = lambda m, y: F.gelu(t(m(t(y))))  # noqa: E731  s4block.py:291-296 (dropout 0 here)
    inp, out = blk.input_sampler, blk.output_sampler
    y = inp.scale * x + inp.bias
    if prenorm:
        y = authors_norm(inp.norm, y)
    y = stoch_spike_gen(y, u1)
    y_for = layer(blk.ssm, y)
    y_for = y_for * out.scale + out.bias
    if bidirectional:
        rin = blk.reverse_input_sampler
        y = stoch_spike_gen(rin.scale * x + rin.bias, u2)
        y_rev = layer(blk.reverse_ssm, y)
        y = torch.cat([stoch_spike_gen(y_for, u1), stoch_spike_gen(y_rev, u1)], dim=-1)
    else:
        y = stoch_spike_gen(y_for, u2)
    y = F.gelu(blk.mixer.linear(y))  # spikeMixer
    if residual:
        y = x + y
    if not prenorm:
        y = authors_norm(blk.fuse.norm, y)
    return y


@pytest.mark.parametrize(
    "prenorm, residual, norm, bidirectional",
    [
        (True, False, "batch", False),
        (False, True, "layer", True),
        (False, True, "batch", True),
        (True, True, "batch", False),
    ],
)
def test_block_equals_the_authors_forward_and_gradients(prenorm, residual, norm, bidirectional):
    torch.manual_seed(0)
    blk = PSpikeSSMBlock(
        6,
        4,
        kernel="dplr",
        init="legs",
        l_max=10,
        two_sided=True,
        prenorm=prenorm,
        residual=residual,
        norm=norm,
        ssm_activation=True,
        bidirectional=bidirectional,
        seeds=(1, 2),
    )
    with torch.no_grad():  # off the init: affines and norm parameters that matter
        for p in blk.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(3, 10, 6, requires_grad=True)  # (B, L, H)
    u1, u2 = torch.rand(3, 10, 6), torch.rand(3, 10, 6)
    theirs = authors_block(blk, x, u1, u2, prenorm, residual, bidirectional)
    grads_theirs = torch.autograd.grad(theirs.square().sum(), [x, *blk.parameters()], allow_unused=True)
    ours = blk(x.transpose(0, 1), uniforms=(u1.transpose(0, 1), u2.transpose(0, 1))).transpose(0, 1)
    grads_ours = torch.autograd.grad(ours.square().sum(), [x, *blk.parameters()], allow_unused=True)
    assert torch.allclose(ours, theirs, atol=1e-5)
    for a, b in zip(grads_ours, grads_theirs):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-4)


def test_block_samples_at_evaluation_with_eval_mode_sample():
    """The authors sample at test time too (block.py:172 has no ``training`` check)."""
    torch.manual_seed(0)
    blk = PSpikeSSMBlock(
        6, 4, kernel="dplr", init="legs", l_max=10, ssm_activation=True, sampler={"eval_mode": "sample"}, seeds=(1, 2)
    )
    blk.eval()
    x, u1, u2 = torch.randn(3, 10, 6), torch.rand(3, 10, 6), torch.rand(3, 10, 6)
    theirs = authors_block(blk, x, u1, u2, False, True, False)
    ours = blk(x.transpose(0, 1), uniforms=(u1.transpose(0, 1), u2.transpose(0, 1))).transpose(0, 1)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_after_the_ssm_dropout_gelu_tied_dropout_with_the_same_rng():
    """fftconv.py:78,142 (nn.Dropout), s4block.py:296 (GELU), 237-238,308 (DropoutNd, tied over L)."""
    v = torch.randn(5, 3, 4)  # (T, B, H)
    ours_mod = SSMActivation(0.3).train()
    torch.manual_seed(7)
    ours = ours_mod(v)
    torch.manual_seed(7)
    y = F.gelu(F.dropout(v.transpose(0, 1), 0.3, training=True))  # theirs on (B, L, H)
    mask = torch.rand(3, 4, 1) < 1.0 - 0.3  # DropoutNd: (B, H, 1) after 'b ... d -> b d ...'
    theirs = (y.transpose(1, 2) * mask * (1.0 / (1 - 0.3))).transpose(1, 2)
    assert torch.allclose(ours, theirs.transpose(0, 1), atol=1e-6)
    assert torch.equal(ours_mod.eval()(v), F.gelu(v))


def test_surrogate_is_the_gradient_of_the_clamp():
    y = (torch.rand(200) * 3 - 1).requires_grad_(True)
    u = torch.rand(200)
    (g_theirs,) = torch.autograd.grad(stoch_spike_gen(y, u).sum(), y)
    (g_ours,) = torch.autograd.grad(bernoulli_spikes(y, u).sum(), y)
    assert torch.equal(bernoulli_spikes(y, u), stoch_spike_gen(y, u)) and torch.equal(g_ours, g_theirs)


def test_final_norm_then_mean_pool_then_linear():
    """backbones/model.py:102-108,132 (final norm when prenorm), decoder ``pool`` (mean over L) + Linear."""
    torch.manual_seed(0)
    net = PSpikeSSM(
        1, 3, d_model=6, d_state=4, kernel="dplr", init="legs", l_max=8, prenorm=True, residual=False, norm="batch"
    )
    net.eval()
    x = torch.randn(8, 2, 1)
    h = net.encoder(x)
    for blk in net.blocks:
        h = blk(h)
    h = net.final_norm(h.permute(1, 2, 0)).permute(2, 0, 1)
    assert torch.allclose(net(x), net.head(h.mean(0)), atol=1e-6)


def authors_bitreversal(n):  # src/utils/permutations.py:8-20
    m = int(math.ceil(math.log(n) / math.log(2)))
    perm = np.arange(1 << m).reshape(1 << m, 1)
    for _ in range(m):
        n1 = perm.shape[0] // 2
        perm = np.hstack((perm[:n1], perm[n1:]))
    perm = perm.squeeze(0)
    return np.extract(perm < n, perm)


@pytest.mark.parametrize("n", [64, 784])
def test_bitreversal_permutation(n):
    assert bitreversal_permutation(n).tolist() == authors_bitreversal(n).tolist()


def test_s4_parameters_train_with_the_tau_group():
    """layer.lr {A: 0.001, B: 0.001}, wd 0 (kernel.py:111-121); P with A; C, D and the rest are weights."""
    net = PSpikeSSM(1, 10, d_model=6, d_state=4, kernel="dplr", init="legs", l_max=8, n_layers=1)
    module = SpikingClassifier(net, lr=5e-4, tau_lr=1e-3, weight_decay=0.01)
    groups = {g["name"]: g for g in module.parameter_groups()}
    tau = {id(p) for p in groups["tau"]["params"]}
    ts = net.blocks[0].ssm.timescales
    assert {id(p) for p in ts.parameters()} == tau
    assert groups["tau"]["weight_decay"] == 0 and groups["tau"]["lr"] == 1e-3
    assert id(net.blocks[0].ssm.C) not in tau


@pytest.mark.parametrize("config", ["configs/pspikessm_smnist.yaml", "configs/pspikessm_psmnist.yaml"])
def test_mnist_presets_hold_the_authors_settings(config):
    """configs/experiment/lra/pSpikeSSM-mnist.yaml and the defaults it pulls in (see the preset's comments)."""
    import yaml

    cfg = yaml.safe_load(open(config))
    model, net = cfg["model"]["init_args"], cfg["model"]["init_args"]["network"]["init_args"]
    assert (model["lr"], model["weight_decay"], model["tau_lr"], model["optimizer"]) == (5e-4, 0.01, 1e-3, "adamw")
    assert model["scheduler"] == "plateau" and model["scheduler_kwargs"]["factor"] == 0.2
    assert model["scheduler_kwargs"]["patience"] == 20 and model["scheduler_kwargs"]["mode"] == "max"
    assert (cfg["trainer"]["max_epochs"], cfg["seed_everything"], "gradient_clip_val" in cfg["trainer"]) == (
        200,
        64,
        False,
    )
    assert (net["d_model"], net["n_layers"], net["d_state"], net["l_max"], net["dropout"]) == (400, 2, 64, 784, 0.1)
    assert (net["kernel"], net["init"], net["two_sided"], net["bidirectional"]) == ("dplr", "legs", True, False)
    assert (net["prenorm"], net["residual"], net["norm"], net["ssm_activation"], net["tie_dropout"]) == (
        True,
        False,
        "batch",
        True,
        True,
    )
    assert net["sampler"] == {"eval_mode": "sample"}
    data = cfg["data"]["init_args"]
    assert (data["batch_size"], data["n_val"], data["seed"], data["permute"]) == (64, 6000, 42, "psmnist" in config)
    assert data.get("permutation", "bitreversal") == "bitreversal"


def test_mnist_preset_fast_dev_run(tmp_path, capsys):
    """The preset runs end to end on a tiny IDX MNIST (d_model cut to 16 to keep the test fast)."""
    from data_files import write_mnist

    from lightning_snn.cli import main

    write_mnist(tmp_path, n_train=6, n_test=2)
    args = ["fit", "--config", "configs/pspikessm_psmnist.yaml", "--trainer.fast_dev_run", "true"]
    args += ["--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    args += ["--data.init_args.data_dir", str(tmp_path), "--data.init_args.n_val", "2"]
    args += ["--data.init_args.batch_size", "2", "--trainer.accelerator", "cpu"]
    args += ["--model.init_args.network.init_args.d_model", "16"]
    cli = main(args)
    assert "test accuracy:" in capsys.readouterr().out
    blk = cli.model.network.blocks[0]
    assert blk.ssm.l_max == 784 and blk.ssm.two_sided and blk.input_sampler.eval_mode == "sample"
    assert cli.datamodule.permutation(784).tolist() == authors_bitreversal(784).tolist()
