import lightning as L
import pytest
import torch

from lightning_snn import DelaySNN, FeedForwardSNN, MTSXORDataModule, SpikingClassifier
from lightning_snn.lit.classifier import readout_logits
from lightning_snn.roles import parameter_roles


def test_readouts_on_a_hand_made_output():
    out = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[2.0, 5.0]]])  # (T=3, B=1, K=2)
    assert torch.allclose(readout_logits(out, "mean"), torch.tensor([[2.0, 7 / 3]]))
    assert readout_logits(out, "sum").tolist() == [[6.0, 7.0]]
    assert readout_logits(out, "max").tolist() == [[3.0, 5.0]]
    assert readout_logits(out, "last").tolist() == [[2.0, 5.0]]
    assert readout_logits(out, "per_step") is out


def test_readouts_mask_padding():
    out = torch.tensor([[[1.0], [1.0]], [[3.0], [9.0]], [[100.0], [2.0]]])  # sample 0 has length 2
    lengths = torch.tensor([2, 3])
    assert readout_logits(out, "mean", lengths).flatten().tolist() == [2.0, 4.0]
    assert readout_logits(out, "last", lengths).flatten().tolist() == [3.0, 2.0]
    assert readout_logits(out, "max", lengths).flatten().tolist() == [3.0, 9.0]


def test_parameter_groups_have_their_own_learning_rates():
    net = FeedForwardSNN(4, [8, 8], 2, tau=3.0, learn_readout_tau=True)
    m = SpikingClassifier(net, lr=1e-3, tau_lr=5e-2)
    groups = {g["name"]: g for g in m.parameter_groups()}
    assert groups["tau"]["lr"] == 5e-2 and groups["weight"]["lr"] == 1e-3
    assert len(groups["tau"]["params"]) == 3  # two hidden layers + readout
    roles = parameter_roles(SpikingClassifier(DelaySNN(4, [8], 2, neuron={"learn_threshold": True})))
    assert roles["network.neurons.0.tau.raw"] == "tau"
    assert roles["network.synapses.0.synapse.delay_position"] == "delay"
    assert roles["network.synapses.0.synapse.weight"] == "weight"
    assert roles["network.neurons.0.threshold"] == "threshold"
    m = SpikingClassifier(FeedForwardSNN(4, [8], 2, neuron={"learn_threshold": True}), weight_decay=0.1)
    groups = {g["name"]: g for g in m.parameter_groups()}
    assert groups["threshold"]["weight_decay"] == 0.0 and groups["weight"]["weight_decay"] == 0.1


def test_mse_rate_loss_is_plif_loss():
    m = SpikingClassifier(FeedForwardSNN(4, [8], 3, readout="spikes"), loss="mse_rate")
    rates = torch.tensor([[0.2, 0.9, 0.0]])
    expected = ((rates - torch.tensor([[0.0, 1.0, 0.0]])) ** 2).mean()
    assert torch.allclose(m._loss(rates, torch.tensor([1])), expected)


def _trainer(tmp_path, **kw):
    return L.Trainer(
        default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False, **kw
    )


def test_training_reduces_loss_and_checkpoint_round_trip(tmp_path):
    L.seed_everything(0)
    net = FeedForwardSNN(40, [16], 2, tau={"kind": "linear", "mean": 8.0, "delta": 0.0}, neuron={"decay_input": False})
    model = SpikingClassifier(net, readout="per_step", lr=0.02)
    dm = MTSXORDataModule(n_train=256, n_val=64, n_test=64, batch_size=64)
    trainer = _trainer(tmp_path, max_epochs=3, enable_checkpointing=False)
    before = trainer.validate(model, dm, verbose=False)[0]["val_loss"]
    tau0 = net.neurons[0].tau.value.clone()
    trainer.fit(model, dm)
    after = trainer.validate(model, dm, verbose=False)[0]["val_loss"]
    assert after < before
    assert not torch.equal(net.neurons[0].tau.value, tau0)  # τ is learned
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = SpikingClassifier.load_from_checkpoint(path)
    x = torch.rand(100, 3, 40)
    model.eval(), loaded.eval()
    assert torch.equal(model(x), loaded(x))
    assert loaded.hparams.readout == "per_step"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"readout": "median"}, "Unknown readout"),
        ({"loss": "nll"}, "Unknown loss"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_bad_classifier_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpikingClassifier(FeedForwardSNN(4, [8], 2), **kwargs)


def test_per_step_readout_needs_per_step_targets():
    m = SpikingClassifier(FeedForwardSNN(4, [8], 2), readout="per_step")
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        m._loss(torch.rand(5, 3, 2), torch.tensor([0, 1, 0]))


def test_zero_tau_lr_freezes_tau_and_lengths_are_validated():
    m = SpikingClassifier(FeedForwardSNN(4, [8], 2), tau_lr=0.0, delay_lr=0.0)
    assert {g["name"]: g["lr"] for g in m.parameter_groups()}["tau"] == 0.0
    with pytest.raises(ValueError, match="tau_lr must be >= 0"):
        SpikingClassifier(FeedForwardSNN(4, [8], 2), tau_lr=-1.0)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\]"):
        readout_logits(torch.rand(3, 2, 2), "last", torch.tensor([4, 1]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\]"):
        readout_logits(torch.rand(3, 2, 2), "max", torch.tensor([0, 1]))
