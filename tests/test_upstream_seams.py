"""Contract tests for the upstream behaviour we build on beyond a library's plain public use, one per
seam and named after it, so that an upstream release that changes it fails here with a name that says
where (the data-side seams are in ``test_upstream_seams_data.py``):

- SpikingJelly ``ParametricLIFNode`` reads its rate as ``sigmoid(w)`` (we substitute ``w`` with
  ``torch.func.functional_call``);
- snnTorch ``Leaky`` uses the tensors assigned to its ``beta`` / ``threshold`` buffers, gradients included;
- DCLS ``ConstructKernel1d(version="gauss")`` builds the normalised Gaussian kernel our FFT path equals;
- Lightning ``Callback._generate_state_key`` (the documented way to build ``state_key``) keys callback state;
- LightningCLI ``instantiate_trainer`` / ``config_init``, through which the CLI adds its safety callbacks;
- ``nn.Module._load_from_state_dict``, through which old checkpoints are migrated;
- Lightning ``_restricted_classmethod``, which keeps our ``load_from_checkpoint`` a class-only call.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def test_seam_spikingjelly_plif_reads_sigmoid_w():
    from spikingjelly.activation_based import neuron

    node = neuron.ParametricLIFNode(init_tau=2.0, decay_input=False, v_reset=0.0, step_mode="m")
    w = torch.tensor([0.3, -1.0], requires_grad=True)
    x = torch.tensor([[0.6, 0.9], [0.7, 0.2], [0.1, 0.5]]).unsqueeze(1)  # (T=3, B=1, N=2)
    out = torch.func.functional_call(node, {"w": w}, (x,))
    beta, v, expected = 1 - torch.sigmoid(w.detach()), torch.zeros(2), []
    for x_t in x[:, 0]:
        h = beta * v + x_t  # decay_input=False: H = V - (V - V_reset)·k + X with k = sigmoid(w)
        s = (h >= 1.0).float()
        v = h * (1 - s)
        expected.append(s)
    torch.testing.assert_close(out[:, 0], torch.stack(expected))
    out.sum().backward()
    assert w.grad is not None and node.w.grad is None  # the gradient reached the substituted w only


def test_seam_snntorch_leaky_uses_assigned_beta_and_threshold_buffers():
    import snntorch

    leaky = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False)
    beta = torch.tensor(0.8, requires_grad=True)
    leaky.beta, leaky.threshold = beta, torch.tensor(0.5)
    spk, mem = leaky(torch.tensor([0.3]), torch.tensor([0.4]))
    assert mem.item() == 0.0 and spk.item() == 1.0  # 0.8·0.4 + 0.3 = 0.62 >= 0.5: spike, reset to 0
    spk, mem = leaky(torch.tensor([0.1]), torch.tensor([0.2]))
    assert math.isclose(mem.item(), 0.8 * 0.2 + 0.1, rel_tol=1e-6) and spk.item() == 0.0
    mem.sum().backward()  # the membrane is beta·0.2 + 0.1 times (1 - spike), the spike a surrogate of it
    assert beta.grad is not None and beta.grad.item() != 0.0  # the gradient reaches the assigned tensor


def test_seam_dcls_construct_kernel1d_gauss():
    from DCLS.construct.modules import ConstructKernel1d

    from lightning_snn.layers.delay_fft import gaussian_delay_kernel

    weight, delay, sigma, taps = torch.tensor([[1.5, -0.5]]), torch.tensor([[1.0, 3.3]]), torch.tensor(0.4), 6
    positions = (taps - 1 - delay - taps // 2)[None, :, :, None]
    kernel = ConstructKernel1d(1, 2, 1, 1, (taps,), "gauss")(weight[..., None], positions, sigma.expand_as(positions))
    assert kernel.shape == (1, 2, taps)  # (out, in, taps), tap k multiplies x[t - (taps - 1 - k)]
    j = torch.arange(taps, dtype=torch.float32)
    g = torch.exp(-0.5 * ((j - delay[..., None]) / (0.4 + 0.27)) ** 2)
    torch.testing.assert_close(kernel.flip(-1), weight[..., None] * g / (g.sum(-1, keepdim=True) + 1e-7))
    torch.testing.assert_close(kernel.flip(-1), gaussian_delay_kernel(weight, delay, sigma, taps))


def test_seam_lightning_callback_generate_state_key():
    from lightning.pytorch.callbacks import Callback

    from lightning_snn.callbacks import Rewiring

    key = Callback()._generate_state_key(sparsity=0.9, seed=1)
    assert key == "Callback{'sparsity': 0.9, 'seed': 1}"
    assert Rewiring(sparsity=0.5, seed=3).state_key.startswith("Rewiring{'sparsity': 0.5")


def test_seam_lightning_cli_instantiate_trainer_sees_config_init_callbacks(tmp_path):
    from lightning_snn.callbacks import NonFiniteGuard, RNGStateCheckpoint
    from lightning_snn.cli import main

    args = ["--config", "configs/mtsxor.yaml", "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)]
    cli = main(args, run=False)
    kinds = {type(cb) for cb in cli.trainer.callbacks}
    assert {RNGStateCheckpoint, NonFiniteGuard} <= kinds  # added by instantiate_trainer through config_init
    assert any(type(cb).__name__ == "TemporalStatsLogger" for cb in cli.trainer.callbacks)  # the config's own


def test_seam_torch_load_from_state_dict_sees_the_raw_keys():
    class Renamed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.new = nn.Parameter(torch.zeros(2))

        def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
            if f"{prefix}old" in state_dict:
                state_dict[f"{prefix}new"] = state_dict.pop(f"{prefix}old")
            super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    outer = nn.Sequential(Renamed())
    outer.load_state_dict({"0.old": torch.ones(2)})
    assert torch.equal(outer[0].new, torch.ones(2))


def test_seam_lightning_restricted_classmethod_guards_load_from_checkpoint():
    """``SpikingClassifier.load_from_checkpoint`` wraps Lightning's with its private
    ``_restricted_classmethod``, which refuses a call on an instance (it would not load into it)."""
    import pytest
    from lightning.pytorch.utilities.model_helpers import _restricted_classmethod

    from lightning_snn.lit.classifier import SpikingClassifier
    from lightning_snn.models import FeedForwardSNN

    assert isinstance(SpikingClassifier.__dict__["load_from_checkpoint"], _restricted_classmethod)
    with pytest.raises(TypeError, match="load_from_checkpoint"):
        SpikingClassifier(FeedForwardSNN(3, [4], 2)).load_from_checkpoint("model.ckpt")
