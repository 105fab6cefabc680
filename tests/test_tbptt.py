"""Truncated BPTT (``SpikingClassifier(tbptt_steps=k)``): detached state between chunks, one step per chunk."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TauSchedule
from lightning_snn.data.collate import time_major_collate

IGNORE = -100


def _trainer(**kw):
    return L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )


def _per_step_data(n=16, steps=30, batch=8):
    x = (torch.rand(n, steps, 4) < 0.3).float()
    y = torch.full((n, steps), IGNORE, dtype=torch.long)
    y[:, 12:] = torch.randint(0, 2, (n, steps - 12))  # the first chunk of 10 steps has no label
    return DataLoader(TensorDataset(x, y), batch_size=batch, collate_fn=time_major_collate)


class _Spy:
    """Wraps ``forward_with_state``: records whether any incoming state tensor carries a graph."""

    def __init__(self, network):
        self.inner, self.calls = network.forward_with_state, []
        network.forward_with_state = self

    def __call__(self, x, state=None):
        tensors = [t for s in (state or {}).values() for t in (s or ()) if isinstance(t, torch.Tensor)]
        self.calls.append((state is None, any(t.requires_grad or t.grad_fn is not None for t in tensors)))
        return self.inner(x, state)


def test_state_is_detached_between_chunks_and_one_step_per_labelled_chunk():
    """Fails if the carried state keeps its graph (the spy sees it, and the second chunk's backward would run
    into the first chunk's freed graph), or if the optimiser does not step once per labelled chunk."""
    net = FeedForwardSNN(4, [8], 2, neuron={"learn_tau": True})
    model = SpikingClassifier(net, readout="per_step", tbptt_steps=10, scheduler="none")
    spy = _Spy(net)
    trainer = _trainer()
    trainer.fit(model, _per_step_data())
    train_calls = spy.calls  # 2 batches × 3 chunks (no validation loader)
    assert len(train_calls) == 6
    assert [fresh for fresh, _ in train_calls] == [True, False, False] * 2
    assert not any(graph for _, graph in train_calls)
    assert trainer.global_step == 2 * 2  # chunks 2 and 3 of each batch are labelled, chunk 1 is not


def test_chunk_gradient_is_truncated():
    """The update of a later chunk only sees that chunk: its gradient equals the gradient of the chunk run
    from the detached state, and differs from the full-BPTT gradient through the whole sequence."""
    torch.manual_seed(0)
    net = FeedForwardSNN(4, [8], 2, neuron={"learn_tau": True}, readout_tau=5.0)
    x = (torch.rand(20, 3, 4) < 0.4).float()
    w = torch.randn(10, 3, 2)
    _, state = net.forward_with_state(x[:10])
    from lightning_snn.state import detach_state

    out, _ = net.forward_with_state(x[10:], detach_state(state))
    g_trunc = torch.autograd.grad((out * w).sum(), list(net.parameters()))
    out_full = net(x)[10:]
    g_full = torch.autograd.grad((out_full * w).sum(), list(net.parameters()))
    assert torch.allclose(out, out_full, atol=1e-6)  # same values ...
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(g_trunc, g_full))  # ... truncated gradient


def test_whole_sequence_readout_and_bad_argument():
    """A whole-sequence readout trains on the last chunk (one step per batch); padded lengths work."""
    x = (torch.rand(16, 25, 4) < 0.3).float()
    y = torch.randint(0, 2, (16,))
    data = DataLoader(TensorDataset(x, y), batch_size=8, collate_fn=time_major_collate)
    model = SpikingClassifier(FeedForwardSNN(4, [8], 2), readout="mean", tbptt_steps=10)
    trainer = _trainer()
    trainer.fit(model, data)
    assert trainer.global_step == 2
    with pytest.raises(ValueError, match="tbptt_steps"):
        SpikingClassifier(FeedForwardSNN(4, [8], 2), tbptt_steps=0)


def test_tbptt_trains_mtsxor_above_chance():
    """Chunks of 25 steps (T = 100): the carried state holds the first bit across chunks, so the XOR of later
    windows is learnable with truncated gradients; test accuracy on labelled steps well above chance (0.5)."""
    L.seed_everything(0)
    net = FeedForwardSNN(
        40,
        [32, 32],
        2,
        tau=TauSchedule(mean=10.0, delta=16.0, kind="linear"),
        readout_tau=5.0,
        neuron={"decay_input": False},
    )
    model = SpikingClassifier(net, readout="per_step", lr=0.01, tbptt_steps=25)
    data = MTSXORDataModule(n_train=1024, n_val=256, n_test=256, batch_size=64)
    trainer = L.Trainer(
        max_epochs=10, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, data)
    acc = trainer.test(model, data, verbose=False)[0]["test_acc"]
    assert acc > 0.65, acc


def test_tbptt_resume_equals_uninterrupted(tmp_path):
    """Crash after an epoch and resume: parameters, optimiser and scheduler state as an uninterrupted run."""
    from resume_utils import assert_resume_equal, run_and_resume

    def make_module():
        net = FeedForwardSNN(40, [16], 2, neuron={"learn_tau": True})
        return SpikingClassifier(net, readout="per_step", lr=0.01, tbptt_steps=25)

    def make_data():
        return MTSXORDataModule(n_train=64, n_val=32, n_test=32, batch_size=32)

    assert_resume_equal(run_and_resume(make_module, make_data, tmp_path=tmp_path, max_epochs=3))
