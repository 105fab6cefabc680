"""
Learn synaptic delays on the delay task
=======================================

On the delay-pattern task (:class:`~lightning_snn.data.DelayTaskDataModule`) six channels fire one spike
each at class-specific lags; only the lags code the class. A :class:`~lightning_snn.models.DelaySNN`
with fast, fixed membranes (τ = 2 steps) must learn per-synapse delays (DCLS, Gaussian kernels whose
width :class:`~lightning_snn.callbacks.DelaySigmaSchedule` narrows during training) to solve it.
This tutorial trains for a few epochs; ``configs/delays_task.yaml`` is the full run.
"""

# %%
# Network, data and training
# --------------------------
import lightning as L
import matplotlib.pyplot as plt

from lightning_snn import DelayedLinear, DelaySigmaSchedule, DelaySNN, DelayTaskDataModule, SpikingClassifier

L.seed_everything(0, verbose=False)
net = DelaySNN(
    n_inputs=6,
    hidden=[32],
    n_outputs=5,
    max_delay=31,
    tau=2.0,
    readout_tau=5.0,
    delay_output=False,
    neuron={"learn_tau": False, "decay_input": False},
)
model = SpikingClassifier(net, readout="mean", lr=0.01, delay_lr=1.0)
data = DelayTaskDataModule(n_channels=6, n_classes=5, gap=6, onset_range=30, tail=10, n_train=2048, batch_size=128)
initial = [m.delay().detach().flatten().clone() for m in net.modules() if isinstance(m, DelayedLinear)]

trainer = L.Trainer(
    max_epochs=12,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[DelaySigmaSchedule(end=0.23, fraction=0.5)],
)
trainer.fit(model, data)
print("test accuracy (integer delays):", round(trainer.test(model, data, verbose=False)[0]["test_acc"], 3))

# %%
# The learned-delay histogram
# ---------------------------
# Delays start spread over the whole range and move to the lags the task needs.
learned = [m.temporal_statistics()["delay"] for m in net.modules() if isinstance(m, DelayedLinear)]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(initial[0].numpy(), bins=31, range=(0, 31), alpha=0.5, label="initial")
ax.hist(learned[0].numpy(), bins=31, range=(0, 31), alpha=0.7, label="learned")
ax.set_xlabel("delay (steps)")
ax.set_ylabel("synapses")
ax.set_title("input → hidden delays")
ax.legend()
fig.tight_layout()
