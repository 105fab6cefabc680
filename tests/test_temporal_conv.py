"""CausalConv1d and TemporalConvSNN (paper A, claim 3)."""

import pytest
import torch

from lightning_snn.cli import main
from lightning_snn.layers.temporal_conv import CausalConv1d
from lightning_snn.models.network import build_network
from lightning_snn.models.temporal_conv_snn import TemporalConvSNN


def test_causal_conv_equals_explicit_dilated_sum():
    torch.manual_seed(0)
    conv = CausalConv1d(3, 2, kernel_size=3, dilation=4)
    x = torch.randn(20, 2, 3)
    w, b = conv.conv.weight.detach(), conv.conv.bias.detach()
    expected = b.expand(20, 2, 2).clone()
    for t in range(20):
        for j in range(3):  # tap j of Conv1d (cross-correlation) sees x[t - (k-1-j)·δ]
            s = t - (2 - j) * 4
            if s >= 0:
                expected[t] += x[s] @ w[:, :, j].t()
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)


def test_causal_conv_gradient_support_is_the_dilated_past():
    conv = CausalConv1d(1, 1, kernel_size=4, dilation=3)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)
    x = torch.zeros(30, 1, 1, requires_grad=True)
    conv(x)[20].sum().backward()
    assert torch.nonzero(x.grad.flatten()).flatten().tolist() == [11, 14, 17, 20]
    assert conv.receptive_field == 10


def test_kernels_follow_hierarchical_schedule_and_constant_baseline():
    net = TemporalConvSNN(4, [8, 8, 8], 2, kernel_size=(3, 7), dilation=(1, 4), kernel_kind="linear")
    assert net.kernels == [(3, 1), (5, 2), (7, 4)]
    assert [(b.synapse.kernel_size, b.synapse.dilation) for b in net.synapses] == net.kernels
    assert net.receptive_field == 1 + 2 * 1 + 4 * 2 + 6 * 4
    flat = TemporalConvSNN(4, [8, 8, 8], 2, kernel_size=(3, 7), dilation=(1, 4), kernel_kind="constant")
    assert flat.kernels == [(5, 2)] * 3  # mid values: (3+7)/2 and round((1+4)/2)
    single = TemporalConvSNN(4, [8, 8], 2, kernel_size=5, dilation=2)
    assert single.kernels == [(5, 2), (5, 2)]


def test_network_is_causal_end_to_end_and_rebuilds_from_spec():
    torch.manual_seed(1)
    net = TemporalConvSNN(4, [8, 8], 3, kernel_size=(2, 4), dilation=(1, 3), batch_norm=True).eval()
    x = (torch.rand(25, 2, 4) < 0.4).float()
    x2 = x.clone()
    x2[15:] = 1.0
    y, y2 = net(x), net(x2)
    assert y.shape == (25, 2, 3)
    assert torch.equal(y[:15], y2[:15])
    clone = build_network(net.spec)
    clone.load_state_dict(net.state_dict())
    assert torch.equal(clone.eval()(x), y)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: CausalConv1d(2, 2, kernel_size=0), "kernel_size and dilation must be >= 1"),
        (lambda: TemporalConvSNN(4, [8], 2, dilation=(0, 2)), "dilations must be >= 1"),
        (lambda: TemporalConvSNN(4, [], 2), "at least one hidden layer"),
        (lambda: TemporalConvSNN(4, [8], 2, kernel_kind="cubic"), "Unknown schedule kind"),
        (lambda: CausalConv1d(2, 2, 3)(torch.zeros(4, 3)), r"time-major input \(T, B, 2\)"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mtsxor_tcn_config_fast_dev_run(tmp_path, capsys):
    cli = main(
        [
            "fit",
            "--config",
            "configs/mtsxor_tcn.yaml",
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--data.init_args.n_train",
            "64",
            "--data.init_args.n_val",
            "32",
            "--data.init_args.n_test",
            "32",
            "--data.init_args.batch_size",
            "32",
        ]
    )
    assert "test accuracy:" in capsys.readouterr().out
    assert cli.model.network.kernels == [(3, 1), (5, 2), (7, 4)]
