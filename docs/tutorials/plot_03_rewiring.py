"""
Rewiring: DEEP R + RigL at 90 % sparsity
========================================

The input → hidden synapses of a 40 → 64 → 2 network are kept 90 % sparse by
:class:`~lightning_snn.callbacks.Rewiring`: after every optimizer step, synapses whose weight crossed zero
are removed (DEEP R) and as many are regrown where the gradient is largest (RigL). The picture is the
mask the callback draws: active synapses coloured by their fixed sign.
"""

# %%
# Train with the rewiring callback
# --------------------------------
import tempfile

import lightning as L
import matplotlib.pyplot as plt

from lightning_snn import FeedForwardSNN, MTSXORDataModule, Rewiring, SpikingClassifier

L.seed_everything(0, verbose=False)
net = FeedForwardSNN(40, [64], 2, tau=50.0, readout_tau=5.0, neuron={"decay_input": False})
model = SpikingClassifier(net, readout="per_step", lr=0.02)
rewiring = Rewiring(
    sparsity=0.9, sign="fixed", regrow="rigl", every_n_steps=1, layers=["network.synapses.0.synapse"], seed=0
)
trainer = L.Trainer(
    max_epochs=15,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[rewiring],
)
data = MTSXORDataModule(n_train=1024, n_val=256, n_test=256, batch_size=128)
trainer.fit(model, data)
print("test accuracy:", round(trainer.test(model, data, verbose=False)[0]["test_acc"], 3))
for name, mask in rewiring.masks.items():
    print(f"{name}: {int(mask.sum())} of {mask.numel()} synapses active")

# %%
# The mask picture
# ----------------
# Red: excitatory, blue: inhibitory, white: absent.
(path,) = rewiring.save_mask_plots(tempfile.mkdtemp())
fig, ax = plt.subplots(figsize=(6, 4))
ax.imshow(plt.imread(path))
ax.set_axis_off()
