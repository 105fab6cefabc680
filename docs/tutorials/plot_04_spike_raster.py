"""
A spike raster
==============

Record the spikes of every :class:`~lightning_snn.neurons.LearnableLIF` layer with a forward hook and
draw them as a raster. Tensors are time-major, ``(T, B, N)``. The network is untrained; its threshold is
lowered to 0.3 (and the input is not scaled by ``1 - β``) so that its hidden layers fire at initialisation.
"""

# %%
import lightning as L
import matplotlib.pyplot as plt
import torch

from lightning_snn import FeedForwardSNN, LearnableLIF, MTSXORDataModule, TauSchedule

L.seed_everything(0, verbose=False)
net = FeedForwardSNN(
    40,
    [32, 32],
    2,
    tau=TauSchedule(mean=6.0, delta=8.0, kind="linear"),
    readout_tau=5.0,
    neuron={"decay_input": False, "threshold": 0.3},
)
data = MTSXORDataModule(n_train=128, n_val=128, n_test=128, batch_size=16)
data.setup("fit")
x, y = next(iter(data.train_dataloader()))
print("input", tuple(x.shape), "(T, B, N)")

spikes = {}
hooks = [
    m.register_forward_hook(lambda mod, inp, out, name=name: spikes.__setitem__(name, out.detach()))
    for name, m in net.named_modules()
    if isinstance(m, LearnableLIF)
]
with torch.no_grad():
    net(x)
for h in hooks:
    h.remove()

# %%
# One sample: input spikes and the spikes of each hidden layer
# ------------------------------------------------------------
panels = {"input": x, **spikes}
fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.8 * len(panels)), sharex=True)
for ax, (name, s) in zip(axes, panels.items()):
    t, n = torch.nonzero(s[:, 0] > 0, as_tuple=True)
    ax.scatter(t.numpy(), n.numpy(), s=2, marker="|", color="k")
    ax.set_ylabel(name, fontsize=7)
axes[-1].set_xlabel("time step")
fig.tight_layout()
