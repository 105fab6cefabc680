"""Paper B (PLIF, Fang et al. 2021): each "same" row of docs/fidelity/plif.md, against a transcription of
the authors' code (fangwei123456/Parametric-Leaky-Integrate-and-Fire-Spiking-Neuron, codes/) and of the
SpikingJelly commit it pins (73f94ab, 2020)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from lightning_snn.data.event_frames import per_class_last
from lightning_snn.data.events import EventFrames, accumulate_frames_by_count
from lightning_snn.lit.classifier import SpikingClassifier, readout_logits
from lightning_snn.models.conv_snn import ConvSNN
from lightning_snn.models.static_image_snn import PLIF_PRESETS, StaticImageSNN
from lightning_snn.neurons.lif import LearnableLIF

ROOT = Path(__file__).resolve().parents[1]


class AuthorsATan(torch.autograd.Function):
    """spikingjelly.clock_driven.surrogate.ATan(alpha=2): Heaviside forward, alpha/2 / (1 + (pi/2 alpha x)^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 1.0 / (1 + (math.pi / 2 * 2.0 * x) ** 2)


def authors_neuron_run(x, w=None, tau=None):
    """codes/models.py:15-22 (PLIFNode, k = sigmoid(w)) or LIFNode (k = 1/tau), then BaseNode.spiking with
    v_threshold 1, v_reset 0, detach_reset: one step at a time, state kept across steps."""
    v = torch.zeros_like(x[0])
    out = []
    for dv in x:
        k = w.sigmoid() if w is not None else 1.0 / tau
        v = v + (dv - (v - 0.0)) * k
        spike = AuthorsATan.apply(v - 1.0)
        s = spike.detach()
        v = v * (1 - s) + 0.0 * s
        out.append(spike)
    return torch.stack(out)


@pytest.mark.parametrize("learn_tau,tau0", [(True, 2.0), (True, 16.0), (False, 16.0)])
def test_plif_and_lif_charge_fire_reset_equal_the_authors_neurons(learn_tau, tau0):
    torch.manual_seed(0)
    x = (torch.randn(12, 3, 5) * 1.5 + 0.8).requires_grad_()
    ours = LearnableLIF(5, tau=tau0, learn_tau=learn_tau)
    s_ours = ours(x)
    w = torch.tensor(-math.log(tau0 - 1), requires_grad=True) if learn_tau else None
    x_ref = x.detach().clone().requires_grad_()
    s_ref = authors_neuron_run(x_ref, w=w, tau=None if learn_tau else tau0)
    assert s_ours.sum() > 0 and torch.equal(s_ours, s_ref)
    g = torch.randn_like(s_ref)
    (s_ours * g).sum().backward()
    (s_ref * g).sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)
    if learn_tau:  # our raw parameter is the authors' w (init -ln(tau0 - 1)) for one tau per layer
        raw = ours.tau.raw
        assert torch.allclose(raw.detach().flatten(), w.detach().flatten())
        assert torch.allclose(raw.grad.sum(), w.grad, atol=1e-5)


def authors_static_forward(net: StaticImageSNN, image: torch.Tensor) -> torch.Tensor:
    """StaticNetBase.forward (codes/models.py:79-85): static_conv once, then conv and fc once per step with
    stateful neurons, AvgPool1d(10) vote, summed over T; train.py:324 divides by T. Single-step layers
    reuse our weights; the neurons are the transcription above, run step by step."""
    steps = net.n_steps
    current = net.encoder.norm(net.encoder.conv(image))
    taus = [m.neuron.tau.value.flatten()[0] for m in net.features if hasattr(m, "neuron")]
    taus += [net.lif1.tau.value.flatten()[0], net.lif2.tau.value.flatten()[0]]
    v = {}
    total = 0
    for _ in range(steps):
        x, layer = current, 0
        for m in net.features:
            if hasattr(m, "neuron"):
                x, layer = plif_step(v, layer, x, taus[layer]), layer + 1
            elif hasattr(m, "pool"):
                x = m.pool(x)
            else:
                x = m.norm(m.conv(x))
        x = plif_step(v, layer, net.fc1(x.flatten(1)), taus[layer])
        x = plif_step(v, layer + 1, net.fc2(x), taus[layer + 1])
        total = total + torch.nn.AvgPool1d(10, 10)(x.unsqueeze(1)).squeeze(1)
    return total / steps


def plif_step(v: dict, layer: int, dv: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    h = v.get(layer, torch.zeros_like(dv))
    h = h + (dv - h) / tau
    spike = (h >= 1.0).to(dv)
    v[layer] = h * (1 - spike)
    return spike


@pytest.mark.parametrize("train", [False, True])
def test_static_network_equals_the_authors_step_by_step_forward(train):
    torch.manual_seed(0)
    net = StaticImageSNN(
        input_shape=(3, 8, 8), n_steps=4, channels=6, stages=(2, 1), fc_hidden=12, dropout=(0, 0), norm_per_step=True
    )
    for m in net.modules():  # spiking in every layer
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.fill_(2.0)
            m.running_var.fill_(0.05)
    net.fc1.weight.data.normal_(0, 1.2)
    net.fc2.weight.data.normal_(0, 1.7)
    net.train(train)
    image = torch.randn(5, 3, 8, 8) * 2
    ref_net = StaticImageSNN(**net.spec["init_args"])
    ref_net.load_state_dict(net.state_dict())  # the same weights and running statistics before the call
    ours = net(image[None]).mean(0)
    with torch.no_grad():
        ref_net.train(train)
        ref = authors_static_forward(ref_net, image)
    assert 0.1 < ours.mean() < 0.9
    assert torch.allclose(ours, ref, atol=1e-6)
    if train:  # T running-statistics updates per batch, as the authors' per-step calls
        for a, b in zip(net.modules(), ref_net.modules()):
            if isinstance(a, torch.nn.BatchNorm2d):
                assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)


def test_event_network_equals_the_authors_step_by_step_forward():
    """NeuromorphicNet.forward (codes/models.py:228-233): the whole network once per frame, stateful
    neurons, vote summed over T; training mode with per-step batch norm (dropout 0)."""
    torch.manual_seed(1)
    net = ConvSNN(
        input_shape=(2, 8, 8), n_outputs=3, n_conv=2, channels=5, fc_hidden=10, dropout=0.0, norm_per_step=True
    )
    for block in net.blocks:
        block.norm.weight.data.fill_(2.0)
    net.fc1.weight.data.normal_(0, 1.5)
    net.fc2.weight.data.normal_(0, 1.5)
    frames = (torch.rand(5, 4, 2, 8, 8) < 0.4).float()
    ref_net = ConvSNN(**net.spec["init_args"])
    ref_net.load_state_dict(net.state_dict())
    ours = net(frames).mean(0)
    v, total = {}, 0
    with torch.no_grad():
        for frame in frames:
            x = frame
            for i, block in enumerate(ref_net.blocks):
                x = block.pool(plif_step(v, i, block.norm(block.conv(x)), 2.0))
            x = plif_step(v, 10, ref_net.fc1(x.flatten(1)), 2.0)
            x = plif_step(v, 11, ref_net.fc2(x), 2.0)
            total = total + torch.nn.AvgPool1d(10, 10)(x.unsqueeze(1)).squeeze(1)
    assert 0.1 < ours.mean() < 0.9
    assert torch.allclose(ours, total / 5, atol=1e-6)


def test_mse_on_voted_rates_equals_the_authors_loss():
    torch.manual_seed(0)
    net = ConvSNN(input_shape=(2, 8, 8), n_outputs=4, n_conv=2, channels=4, fc_hidden=8, dropout=0.0)
    model = SpikingClassifier(net, readout="mean", loss="mse_rate")
    out = (torch.rand(6, 3, 4) * 10).round() / 10  # voted rates per step
    y = torch.tensor([0, 3, 1])
    counter = out.sum(0)  # out_spikes_counter
    want = F.mse_loss(counter / 6, F.one_hot(y, 4).float())  # codes/train.py:324-325
    assert torch.allclose(model._loss(readout_logits(out, "mean"), y), want)


def authors_frames_by_number(events, height, width, frames_num):
    """spikingjelly 73f94ab datasets/__init__.py integrate_events_to_frames(split_by='number')."""
    frames = np.zeros(shape=[frames_num, 2, height * width])
    j_l = np.zeros(shape=[frames_num], dtype=int)
    j_r = np.zeros(shape=[frames_num], dtype=int)
    di = events["t"].size // frames_num
    for i in range(frames_num):
        j_l[i] = i * di
        j_r[i] = j_l[i] + di if i < frames_num - 1 else events["t"].size
    for i in range(frames_num):
        x, y, p = (events[k][j_l[i] : j_r[i]] for k in ("x", "y", "p"))
        mask = [p == 0]
        mask.append(np.logical_not(mask[0]))
        for j in range(2):
            position = y[mask[j]] * height + x[mask[j]]
            counts = np.bincount(position)
            frames[i][j][np.arange(counts.size)] += counts
    return frames.reshape((frames_num, 2, height, width))


def spikingjelly_frames_by_number(events, frames_num, H, W):
    """spikingjelly 2.0 datasets/utils.py: cal_fixed_frames_number_segment_index('number') and
    integrate_events_segment_to_frame (its package import needs torchvision, so it is transcribed here)."""
    N = events["t"].size
    di = N // frames_num
    j_l = np.arange(frames_num) * di
    j_r = j_l + di
    j_r[-1] = N
    frames = np.zeros([frames_num, 2, H, W])
    for i in range(frames_num):
        x, y = events["x"][j_l[i] : j_r[i]].astype(int), events["y"][j_l[i] : j_r[i]].astype(int)
        p = events["p"][j_l[i] : j_r[i]] != 0
        position = p.astype(int) * H * W + y * W + x
        frames[i] = np.bincount(position, minlength=2 * H * W).reshape(2, H, W)
    return frames


@pytest.mark.parametrize("n_events,n_frames", [(103, 10), (40, 4), (3, 5)])
def test_frames_by_event_count_equal_spikingjelly(n_events, n_frames):
    rng = np.random.default_rng(n_events)
    dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    events = np.zeros(n_events, dtype=dtype)
    events["t"] = np.sort(rng.integers(0, 10_000, n_events))
    events["x"], events["y"], events["p"] = (
        rng.integers(0, 6, n_events),
        rng.integers(0, 6, n_events),
        rng.integers(0, 2, n_events),
    )
    ours = accumulate_frames_by_count(events, (6, 6, 2), n_frames)
    as_dict = {k: events[k].copy() for k in "xytp"}
    assert np.array_equal(ours, authors_frames_by_number(as_dict, 6, 6, n_frames))
    assert np.array_equal(ours, spikingjelly_frames_by_number(as_dict, n_frames, 6, 6))
    assert np.array_equal(EventFrames((6, 6, 2), n_frames, split_by="number")(events), ours)


def test_cifar10dvs_test_split_is_the_authors_last_files_of_each_class():
    # SpikingJelly CIFAR10DVS(split_ratio=0.9): files int(0.9 * 1000) .. 999 of each class are the test set
    rng = np.random.default_rng(0)
    paths = [f"/d/{c}/cifar10_{c}_{i}.aedat4" for c in ("cat", "dog") for i in range(20)]
    labels = [0] * 20 + [1] * 20
    order = rng.permutation(40)
    test = per_class_last([paths[i] for i in order], [labels[i] for i in order], 0.1)
    names = sorted(Path(paths[order[i]]).stem for i in test)
    assert names == ["cifar10_cat_18", "cifar10_cat_19", "cifar10_dog_18", "cifar10_dog_19"]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / name).read_text())


@pytest.mark.parametrize(
    "config,n_conv,side,classes,steps",
    [("nmnist.yaml", 2, 34, 10, 10), ("cifar10dvs.yaml", 4, 128, 10, 20), ("dvs_gesture.yaml", 5, 128, 11, 20)],
)
def test_event_presets_are_the_authors_runs(config, n_conv, side, classes, steps):
    cfg = load(config)
    net = cfg["model"]["init_args"]["network"]["init_args"]
    data = cfg["data"]["init_args"]
    h = side >> n_conv  # codes/models.py:241, 251, 281
    assert net["n_conv"] == n_conv and net["channels"] == 128 and net["n_outputs"] == classes
    assert net["fc_hidden"] == 128 * h * h // 4  # create_2fc, codes/models.py:54
    assert net["votes"] == 10 and net["dropout"] == 0.5 and net["tau"] == 2.0 and net["norm_per_step"]
    assert data["n_time_bins"] == steps and data["split_by"] == "number" and data["batch_size"] == 16
    assert cfg["model"]["init_args"]["lr"] == 1e-3 and cfg["model"]["init_args"]["loss"] == "mse_rate"
    assert cfg["trainer"]["max_epochs"] == 1024
    if config == "cifar10dvs.yaml":
        assert data["test_split"] == "per_class_last" and data["test_fraction"] == 0.1


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_static_presets_build_the_authors_networks(dataset):
    cfg = load(f"plif_{dataset}.yaml")
    args = cfg["model"]["init_args"]["network"]["init_args"]
    data = cfg["data"]["init_args"]
    assert data["dataset"] == dataset and data["batch_size"] == 16 and data["val_fraction"] == 0.0
    assert data["augment"] == (dataset == "cifar10")  # codes/models.py:173-209 (MNIST's RandomAffine: not ours)
    assert cfg["model"]["init_args"]["loss"] == "mse_rate" and cfg["trainer"]["max_epochs"] == 1024
    preset = PLIF_PRESETS[dataset]
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()} == preset
    net = StaticImageSNN(**{**args, "channels": 4, "fc_hidden": 8})
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    neurons = sum(isinstance(m, LearnableLIF) for m in net.modules())
    # MNISTNet: 2 conv, 4 PLIF, MaxPool after conv 1 and 2; Cifar10Net: 6 conv, 8 PLIF, MaxPool after conv 3 and 6
    assert (convs, neurons) == ((6, 8) if dataset == "cifar10" else (2, 4))
    assert net.fc1.in_features == 4 * (8 * 8 if dataset == "cifar10" else 7 * 7)
    assert preset["dropout"] == ((0.5, 0.0) if dataset == "cifar10" else (0.5, 0.5))
    assert preset["channels"] == (256 if dataset == "cifar10" else 128)
    assert preset["fc_hidden"] == 128 * 4 * 4 and preset["n_steps"] == 8 and preset["votes"] == 10
