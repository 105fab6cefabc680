"""
Learn τ on Multi-Time-Scale XOR
===============================

A 40 → 3 × 32 LIF → 2 network starts from a hierarchical τ schedule (τ growing with depth, Moro et al.
2024) and learns its membrane time constants on the synthetic Multi-Time-Scale XOR task. The τ-per-layer
plot is the one :class:`~lightning_snn.callbacks.TemporalStatsLogger` writes at the end of fit.
This tutorial trains for a few epochs on a reduced data set; ``make run`` trains the full experiment.
"""

# %%
# Build the network, the data and the Lightning module
# ----------------------------------------------------
import tempfile

import lightning as L
import matplotlib.pyplot as plt

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TauSchedule, TemporalStatsLogger
from lightning_snn.callbacks.temporal_stats import collect_statistics

L.seed_everything(0, verbose=False)
net = FeedForwardSNN(
    40,
    [32, 32, 32],
    2,
    tau=TauSchedule(mean=10.0, delta=16.0, kind="linear"),
    readout_tau=5.0,
    neuron={"decay_input": False},
)
model = SpikingClassifier(net, readout="per_step", lr=0.01, tau_lr=0.01)
data = MTSXORDataModule(n_train=2048, n_val=256, n_test=512, batch_size=128)
initial_tau = {k: v.mean().item() for k, v in collect_statistics(model)["tau"].items()}

# %%
# Train
# -----
# ``TemporalStatsLogger`` logs τ and the spike rate of every layer each epoch and, at the end of fit,
# writes a PNG per statistic into the log directory.
log_dir = tempfile.mkdtemp()
trainer = L.Trainer(
    max_epochs=12,
    accelerator="cpu",
    default_root_dir=log_dir,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[TemporalStatsLogger(histograms=False)],
)
trainer.fit(model, data)
print("test accuracy:", round(trainer.test(model, data, verbose=False)[0]["test_acc"], 3))
for layer, tau in collect_statistics(model)["tau"].items():
    print(f"{layer}: mean τ {initial_tau[layer]:.1f} -> {tau.mean().item():.1f} steps")

# %%
# The τ-per-layer plot
# --------------------
# The distribution of the learned τ in each layer, as written by the callback.
paths = TemporalStatsLogger.save_plots({"tau": collect_statistics(model)["tau"]}, log_dir)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.imshow(plt.imread(paths[0]))
ax.set_axis_off()
