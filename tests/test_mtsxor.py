import pytest
import torch

from lightning_snn.data.mtsxor import MTSXORDataModule, generate_mtsxor


@pytest.fixture(scope="module")
def sample():
    return generate_mtsxor(2000, seed=1)


def _firing_rate(p_code, noise=0.01):
    return 1 - (1 - p_code) * (1 - noise)


def test_shapes_and_layout(sample):
    x, y, first, windows = sample
    assert x.shape == (2000, 100, 40) and y.shape == (2000, 100) and windows.shape == (2000, 6)
    assert set(x.unique().tolist()) <= {0.0, 1.0}


def test_labels_are_xor_on_active_steps_only(sample):
    x, y, first, windows = sample
    labelled = (y[0] != -100).nonzero().flatten().tolist()
    expected = [t for w in range(6) for t in range(10 + 15 * w + 5, 10 + 15 * w + 15)]
    assert labelled == expected
    for w in range(6):
        t = 10 + 15 * w + 5
        assert torch.equal(y[:, t], first ^ windows[:, w])


def test_rates_in_each_window(sample):
    x, y, first, windows = sample
    for bit, rate in ((0, 0.2), (1, 0.6)):
        r = x[first == bit, :10, :20].mean().item()
        assert r == pytest.approx(_firing_rate(rate), abs=0.01)
        t = 10 + 5  # first window's active steps, group 2
        r = x[windows[:, 0] == bit, t : t + 10, 20:].mean().item()
        assert r == pytest.approx(_firing_rate(rate), abs=0.01)
    assert x[:, 10:15, :].mean().item() == pytest.approx(0.01, abs=0.003)  # first silent gap: noise only
    assert x[:, 10:, :20].mean().item() == pytest.approx(0.01, abs=0.002)  # group 1 after its window


def test_seeded_and_splits_differ():
    a = generate_mtsxor(8, seed=3)[0]
    assert torch.equal(a, generate_mtsxor(8, seed=3)[0]) and not torch.equal(a, generate_mtsxor(8, seed=4)[0])
    dm = MTSXORDataModule(n_train=16, n_val=8, n_test=8, batch_size=4, seed=0)
    dm.setup()
    xb, yb = next(iter(dm.val_dataloader()))
    assert xb.shape == (100, 4, 40) and yb.shape == (100, 4)
    assert len(dm.splits["train"]) == 16 and not torch.equal(dm.splits["val"].tensors[0], dm.splits["test"].tensors[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_train"):
        MTSXORDataModule(n_train=0)
    with pytest.raises(ValueError, match="noise"):
        MTSXORDataModule(noise=1.0)


def theirs_targets(first_bit, window_bits, nb_steps=100, start_time=10, coding_time=10, remain_time=5):
    """EIS-Hub/hSNN utils_dataset.py:335,344-354 (get_batch's targets), transcribed for given bits."""
    label = torch.zeros(2, 2)
    label[1][0] = 1
    label[0][1] = 1
    targets = torch.zeros(nb_steps, len(first_bit)).int()
    for i in range((nb_steps - start_time) // (coding_time + remain_time)):
        label_t = label[first_bit, window_bits[:, i]].int()
        targets[start_time + i * (coding_time + remain_time) : start_time + (i + 1) * (coding_time + remain_time)] = (
            label_t
        )
    return targets.transpose(0, 1).long()


def test_all_steps_target_equals_the_authors_labels_and_keeps_the_input():
    x_all, y_all, first, windows = generate_mtsxor(16, 3, label_all_steps=True)
    x, y, _, _ = generate_mtsxor(16, 3)
    assert torch.equal(x_all, x)
    assert torch.equal(y_all, theirs_targets(first, windows))
    active = y != -100  # their accuracy steps (training.py:189-192) are our labelled steps
    idx = [i for i in range(100) if ((i - 10) % 15) >= 5 and i > 10]
    assert active[0].nonzero().flatten().tolist() == idx and torch.equal(y_all[active], y[active])


def test_all_steps_target_labels_only_the_training_split():
    data = MTSXORDataModule(n_train=8, n_val=4, n_test=4, batch_size=4, target="all_steps")
    data.setup("fit")
    assert (data.splits["train"].tensors[1] != -100).all()
    assert (data.splits["val"].tensors[1] == -100).sum() == 4 * 40 and (data.splits["test"].tensors[1] == -100).any()
    with pytest.raises(ValueError, match="target='every'"):
        MTSXORDataModule(target="every")
