r"""``RNGStateCheckpoint``: put the global random state (torch, NumPy, Python) in every checkpoint.

Lightning checkpoints hold the model, optimiser, scheduler, loop and callback states but not the
global random generators. Everything that draws from them without its own generator then differs
after a resume: the shuffling order of a ``DataLoader(shuffle=True)`` (its ``RandomSampler`` draws
a seed from :func:`torch.get_rng_state` each epoch), dropout masks, Poisson encoders. With this
callback the state :math:`s_k` captured when the checkpoint of epoch :math:`k` is written is
restored when a resumed ``fit`` loads the checkpoint, before the training data iterator of the
resumed epoch is created (the sanity check runs under Lightning's ``isolate_rng``). A resumed run
then continues the random stream of the uninterrupted one: crash-and-resume equality is bit for
bit on CPU with ``deterministic=True``. (Restoring later, e.g. at ``on_train_start``, is wrong:
Lightning creates the first epoch's data iterator, which draws a seed, before that hook.)

Under DDP every rank restores rank zero's state (only rank zero writes checkpoints); shuffling is
then done by ``DistributedSampler`` (seed + epoch), which needs no global state.

The CUDA generators of the visible devices are saved too (host-side states: no device sync). A resume
that sees fewer or more devices restores those it has and warns that the others' draws will differ.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from typing_extensions import override


def capture_rng_state() -> dict[str, Any]:
    """Global torch / NumPy / Python generator states as tensors and plain Python values.

    Plain values (no NumPy objects) keep checkpoints loadable with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if len(cuda) != count:
            rank_zero_warn(
                f"RNGStateCheckpoint: the checkpoint holds the CUDA random state of {len(cuda)} device(s) and this "
                f"process sees {count}; restoring the first {min(len(cuda), count)}. CUDA draws on any other device "
                "will differ from the uninterrupted run (resume with the same visible devices to avoid this)."
            )
        for index, device_state in enumerate(cuda[:count]):  # host-side generator state: no device sync
            torch.cuda.set_rng_state(device_state, index)


class RNGStateCheckpoint(Callback):
    """Save the global RNG states in checkpoints and restore them on resume (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._fitting = False

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture_rng_state()}

    @override
    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Lightning calls this just before ``load_state_dict``; only a resumed fit restores the RNG
        # (``trainer.test(ckpt_path="best")`` must not rewind it).
        self._fitting = trainer.state.fn == TrainerFn.FITTING

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "rng" not in state_dict:
            raise ValueError(
                f"RNGStateCheckpoint: checkpoint callback state has keys {sorted(state_dict)}, expected 'rng'; "
                "was it written by another callback with the same state_key?"
            )
        if self._fitting:
            restore_rng_state(state_dict["rng"])
            self._fitting = False
