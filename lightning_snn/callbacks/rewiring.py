r"""``Rewiring``: DEEP R removal + RigL (or random) regrowth, a Lightning callback (paper D).

Each chosen layer's weight is kept as :math:`W = s \odot \theta \odot m`: magnitude :math:`\theta \ge 0`,
a fixed sign :math:`s` (per synapse, or per presynaptic neuron for Dale's law) and a mask :math:`m` with
exactly :math:`K = \mathrm{round}((1-\text{sparsity})N)` active synapses after every optimizer step.

- Before each optimizer step the dense gradient :math:`\partial L/\partial W` is recorded (RigL scores)
  and the gradient of inactive synapses is zeroed, so they stay exactly 0 (``mask_inactive_grad=True``, the
  default; with ``False`` the dense gradient reaches the optimiser's moments, as in paper D's code, and
  inactive synapses are zeroed after the step).
- After the step, DEEP R (Bellec et al. 2018) cuts the synapses whose magnitude crossed
  :math:`\theta \le 0`; the same number is regrown at the inactive positions with the largest
  :math:`|\partial L/\partial W|` (RigL, Evci et al. 2020) or uniformly at random (seeded), at magnitude
  ``regrow_magnitude``. Optimizer moments of cut and regrown synapses are reset to zero (``reset_moments=True``,
  the default; paper D's code never resets them).
- Optional DEEP R terms on active magnitudes: :math:`\theta \leftarrow \theta - \eta\alpha + \sqrt{2\eta T}\nu`
  (``l1`` = α, ``temperature`` = T, η = the parameter group's learning rate).
- Optional L1 *through the optimiser* (``l1_loss`` = λ, Mészáros et al. 2024, ``mbalazs98/spatiotemporal``
  model.py:140): :math:`\lambda\,\mathrm{sign}(W)` is added to the gradient before the step, which is
  exactly the gradient of a loss term :math:`\lambda\lVert W\rVert_1`, so Adam normalises it like the task
  gradient (a synapse shrinks by about one learning rate per step when the task gradient is small).

The weight is stored as the ordinary signed ``weight`` (θ = s·W), not through ``torch.nn.utils.parametrize``:
the model's ``state_dict`` keeps its usual keys and loads anywhere (zeros at cut synapses). For
coordinate-wise optimizers (SGD, Adam, AdamW) training W with the sign constraint is the same as training
θ, since their update is equivariant to a per-coordinate sign flip. Masks, signs, synapse ages, the step
count and the generator go through ``state_dict``/``load_state_dict``. Every decision is a deterministic
function of all-reduced gradients, identical weights and a generator seeded identically on every rank,
so all DDP ranks take the same decisions.

With ``regrow="none"`` the mask is static (no removal, no regrowth): the baseline of a fixed sparse mask.
"""

from __future__ import annotations

import math
import os
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from torch import nn
from typing_extensions import override

from lightning_snn.functional import rewiring as F
from lightning_snn.loggers import run_directory
from lightning_snn.roles import declared_roles

SIGNS = ("fixed", "dale", "free")
REGROWTHS = ("rigl", "random", "none")
RIGL_SCORES = ("magnitude", "aligned", "signed")
INIT_MASKS = ("random", "magnitude")


def rewirable_weight(module: nn.Module) -> nn.Parameter | None:
    """The synaptic weight of a layer: the ``weight`` parameter it owns, unless it declares another role for it.

    Any layer qualifies (Linear, DelayedLinear, a convolution, a user's synapse): no layer is special."""
    weight = dict(module.named_parameters(recurse=False)).get("weight")
    if weight is None or declared_roles(module).get("weight", "weight") != "weight":
        return None
    return weight


def default_layers(root: nn.Module) -> list[str]:
    """Qualified names of every module that owns a synapse matrix: a rewirable ``weight`` of shape ``(out, in)``
    (Linear, DelayedLinear, ...). Convolutions and other shapes are rewired when named in ``layers``."""
    return [
        name for name, module in root.named_modules() if (w := rewirable_weight(module)) is not None and w.dim() == 2
    ]


class _SparseLayer:
    """Mask, sign and per-synapse age of one rewired weight."""

    def __init__(
        self,
        name: str,
        param: nn.Parameter,
        mask: torch.Tensor,
        sign: torch.Tensor,
        age: torch.Tensor,
        rewired_total: int = 0,
    ) -> None:
        self.name, self.param = name, param
        self.mask = mask.to(param.device, torch.bool)
        self.sign = sign.to(param.device, param.dtype)
        self.age = age.to(param.device, torch.long)
        self.rewired_total, self.rewired_epoch = rewired_total, 0
        self.dense_grad: torch.Tensor | None = None
        self.lr = 0.0

    def state(self) -> dict[str, Any]:
        return {
            "mask": self.mask.cpu().clone(),
            "sign": self.sign.cpu().to(torch.int8),
            "age": self.age.cpu().clone(),
            "rewired_total": self.rewired_total,
        }


class Rewiring(Callback):
    """Dynamic sparse connectivity with DEEP R removal and RigL regrowth (see the module docstring).

    :param sparsity: fraction of synapses cut in each layer, in ``[0, 1)``.
    :param sign: ``"fixed"`` (sign of each synapse's initial weight, forever), ``"dale"`` (one random sign
        per presynaptic neuron, axis 1) or ``"free"`` (a regrown synapse takes the sign that descends
        the gradient under RigL, a random sign under random regrowth).
    :param regrow: ``"rigl"``, ``"random"``, or ``"none"`` (static mask: no removal and no regrowth).
    :param every_n_steps: rewire every n optimizer steps; in between, a magnitude that reaches 0 stays at 0.
    :param layers: qualified module names (relative to the LightningModule) of layers that own a ``weight``
        ``(out, in, *rest)``, or ``None`` for every layer that owns a weight matrix ``(out, in)``
        (Linear, DelayedLinear, a user's synapse).
    :param init_mask: ``"random"`` (uniform, seeded) or ``"magnitude"`` (keep the largest initial ``|W|``).
    :param rigl_score: ``"magnitude"`` (``|∂L/∂W|``, Evci et al.), ``"aligned"`` (``max(0, -s·∂L/∂W)``: only
        positions whose gradient would grow the synapse with its fixed sign; same as magnitude for "free") or
        ``"signed"`` (``-s·∂L/∂W = -∂L/∂θ``, the most negative magnitude gradient first, as
        ``mbalazs98/spatiotemporal`` snn_delays.py:141-145, which regrows ``n`` synapses even when fewer than
        ``n`` have a negative gradient).
    :param regrow_magnitude: the magnitude a regrown synapse starts from.
    :param l1: DEEP R's L1 shrinkage α (0 disables it).
    :param temperature: DEEP R's noise temperature T (0 disables it).
    :param excitatory_fraction: fraction of excitatory presynaptic neurons with ``sign="dale"``.
    :param l1_loss: λ of an L1 loss term λ‖W‖₁ applied through the optimiser (its gradient λ·sign(W) is added
        before the step; 0 disables it). The authors of paper D use 0.01 with Adam.
    :param reset_moments: zero the optimiser moments of cut and regrown synapses (the authors never do).
    :param mask_inactive_grad: zero the gradient of inactive synapses before the step, so their optimiser
        moments stay 0 (``False``: the dense gradient reaches the optimiser's moments, as in the authors'
        code; the synapses are zeroed after the step either way).
    :param seed: seed of the generator behind every random choice (identical on all ranks).
    :param plot: save a PNG raster of each mask at the end of fit, in the run's directory
        (:func:`~lightning_snn.loggers.run_directory`).
    """

    def __init__(
        self,
        sparsity: float = 0.9,
        sign: str = "fixed",
        regrow: str = "rigl",
        every_n_steps: int = 1,
        layers: list[str] | None = None,
        init_mask: str = "random",
        rigl_score: str = "magnitude",
        regrow_magnitude: float = 1e-4,
        l1: float = 0.0,
        temperature: float = 0.0,
        excitatory_fraction: float = 0.8,
        seed: int = 0,
        plot: bool = False,
        l1_loss: float = 0.0,
        reset_moments: bool = True,
        mask_inactive_grad: bool = True,
    ) -> None:
        super().__init__()
        _validate(
            sparsity,
            sign,
            regrow,
            every_n_steps,
            layers,
            init_mask,
            rigl_score,
            regrow_magnitude,
            l1,
            temperature,
            excitatory_fraction,
            l1_loss,
        )
        self.sparsity, self.sign, self.regrow = float(sparsity), sign, regrow
        self.every_n_steps, self.layer_names = int(every_n_steps), None if layers is None else list(layers)
        self.init_mask, self.rigl_score, self.regrow_magnitude = init_mask, rigl_score, float(regrow_magnitude)
        self.l1, self.temperature, self.excitatory_fraction = float(l1), float(temperature), float(excitatory_fraction)
        self.seed, self.plot = int(seed), plot
        self.l1_loss, self.reset_moments, self.mask_inactive_grad = (
            float(l1_loss),
            bool(reset_moments),
            bool(mask_inactive_grad),
        )
        self.generator = torch.Generator().manual_seed(self.seed)
        self.steps = 0
        self._targets: dict[str, nn.Parameter] = {}
        self._layers: dict[str, _SparseLayer] = {}
        self._loaded: dict[str, Any] | None = None
        self._pending = False

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(
            sparsity=self.sparsity, sign=self.sign, regrow=self.regrow, layers=self.layer_names, seed=self.seed
        )

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles callbacks; a torch.Generator's state would travel as a shared-memory tensor,
        # which fails to rebuild in the child, so it travels as plain bytes.
        state = self.__dict__.copy()
        state["generator"] = bytes(self.generator.get_state().numpy())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(state.pop("generator")), dtype=torch.uint8))
        self.__dict__.update(state, generator=generator)

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Current boolean mask of every rewired layer, by qualified name."""
        return {name: layer.mask.clone() for name, layer in self._layers.items()}

    @property
    def signs(self) -> dict[str, torch.Tensor]:
        """The ±1 sign of every synapse of every rewired layer."""
        return {name: layer.sign.clone() for name, layer in self._layers.items()}

    # ---- discovery and initialisation -------------------------------------------------------------
    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._targets = self.resolve_layers(pl_module)

    def resolve_layers(self, root: nn.Module) -> dict[str, nn.Parameter]:
        """``{name: weight}`` of the layers to rewire; raises ``ValueError`` for bad names or shapes."""
        names = self.layer_names if self.layer_names is not None else default_layers(root)
        modules = dict(root.named_modules())
        if not names:
            raise ValueError(
                f"Rewiring found no layer with a weight matrix (out, in) in {type(root).__name__}; "
                "pass layers=[...] with the qualified names of the layers to rewire."
            )
        targets = {}
        for name in names:
            if name not in modules:
                raise ValueError(
                    f"Rewiring: no layer named {name!r} in {type(root).__name__}; layers that "
                    f"can be rewired: {default_layers(root)}. Fix the name in `layers`."
                )
            weight = rewirable_weight(modules[name])
            if weight is None:
                raise ValueError(
                    f"Rewiring: layer {name!r} ({type(modules[name]).__name__}) has no `weight` parameter to rewire; "
                    "name a Linear, DelayedLinear, convolution or another layer that owns its `weight`."
                )
            self._check_layer(name, weight)
            targets[name] = weight
        return targets

    def _check_layer(self, name: str, weight: nn.Parameter) -> None:
        if self.sign == "dale" and weight.dim() < 2:
            raise ValueError(
                f"Rewiring: sign='dale' needs a presynaptic axis (weight of shape (out, in, ...)), "
                f"but layer {name!r} has a weight of shape {tuple(weight.shape)}; use sign='fixed'."
            )
        if F.target_active(weight.numel(), self.sparsity) < 1:
            raise ValueError(
                f"Rewiring: sparsity={self.sparsity} leaves no active synapse among the "
                f"{weight.numel()} of layer {name!r}; lower the sparsity."
            )

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            self._restore(loaded)
        for name, param in self._targets.items():
            known = self._layers.get(name)
            if known is None or known.param is not param:
                self._layers[name] = self._initial_layer(name, param)
        self._layers = {name: self._layers[name] for name in self._targets}
        for layer in self._layers.values():
            self._project(layer)

    def _initial_layer(self, name: str, param: nn.Parameter) -> _SparseLayer:
        weight = param.detach()
        n_active = F.target_active(weight.numel(), self.sparsity)
        if self.init_mask == "magnitude":
            mask = F.magnitude_mask(weight, n_active)
        else:
            mask = F.random_mask(weight.shape, n_active, self.generator)
        if self.sign == "dale":
            sign = F.dale_signs(weight.shape, self.excitatory_fraction, self.generator, weight.dtype)
            with torch.no_grad():
                param.copy_(sign.to(param) * param.abs())
        else:
            sign = F.weight_signs(weight)
        return _SparseLayer(name, param, mask, sign, torch.zeros(weight.shape, dtype=torch.long))

    def _restore(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.generator.set_state(state["generator"])
        missing = sorted(set(self._targets) - set(state["layers"]))
        if missing:
            raise ValueError(
                f"Rewiring: the checkpoint has no rewiring state for layers {missing} "
                f"(it has {sorted(state['layers'])}); resume with the same `layers`."
            )
        for name, param in self._targets.items():
            s = state["layers"][name]
            # Version 0.1 rewired a DelayedLinear through its Dcls1d weight (out, in, 1): same synapses.
            mask, sign, age = (s[k].reshape(param.shape) for k in ("mask", "sign", "age"))
            self._layers[name] = _SparseLayer(name, param, mask, sign, age, s["rewired_total"])

    # ---- the optimizer step -----------------------------------------------------------------------
    def _is_rewiring_step(self, steps_done: int) -> bool:
        return self.regrow != "none" and steps_done % self.every_n_steps == 0

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        owned = {id(p): group for group in optimizer.param_groups for p in group["params"]}
        keep_grad = self.regrow == "rigl" and self._is_rewiring_step(self.steps + 1)
        for layer in self._layers.values():
            group = owned.get(id(layer.param))
            if group is None:
                continue
            layer.lr = float(group["lr"])
            if self.l1_loss and layer.param.grad is None:
                layer.param.grad = torch.zeros_like(layer.param)
            grad = layer.param.grad
            if grad is not None:
                if self.l1_loss:  # the gradient of l1_loss·‖W‖₁, as if the term were in the loss
                    grad.add_(torch.sign(layer.param.detach()), alpha=self.l1_loss)
                layer.dense_grad = grad.detach().clone() if keep_grad else None
                if self.mask_inactive_grad:
                    grad.mul_(layer.mask)
            self._pending = True

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._pending:
            return
        self._pending = False
        self.steps += 1
        rewire = self._is_rewiring_step(self.steps)
        for layer in self._layers.values():
            with torch.no_grad():
                self._after_step(layer, rewire, trainer.optimizers)

    def _after_step(self, layer: _SparseLayer, rewire: bool, optimizers: list) -> None:
        weight = layer.param.data
        if (self.l1 or self.temperature) and self.regrow != "none":
            noise_std = math.sqrt(2.0 * layer.lr * self.temperature)
            weight.copy_(
                F.deep_r_noise_l1(weight, layer.sign, layer.mask, layer.lr * self.l1, noise_std, self.generator)
            )
        if rewire:
            changed = self._rewire(layer, weight)
            if self.reset_moments:
                _reset_optimizer_state(optimizers, layer.param, changed)
        layer.dense_grad = None
        self._project(layer)
        layer.age += layer.mask

    def _rewire(self, layer: _SparseLayer, weight: torch.Tensor) -> torch.Tensor:
        removed = F.crossed_zero(weight, layer.sign, layer.mask)
        kept = layer.mask & ~removed
        n = int(removed.sum())
        if self.regrow == "rigl":
            grad = layer.dense_grad if layer.dense_grad is not None else torch.zeros_like(weight)
            scores = self._rigl_scores(grad, layer.sign)
        else:
            scores = F.random_scores(weight.shape, self.generator)
        grown = F.regrow_positions(scores.cpu(), kept.cpu(), n, removed.cpu()).to(weight.device)
        if self.sign == "free":
            self._choose_free_signs(layer, grown)
        weight[removed] = 0.0
        weight[grown] = layer.sign[grown] * self.regrow_magnitude
        layer.mask = kept | grown
        layer.age[grown] = 0
        layer.rewired_epoch += n
        layer.rewired_total += n
        return removed | grown

    def _rigl_scores(self, grad: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        if self.rigl_score == "magnitude" or self.sign == "free":
            return F.rigl_scores(grad)
        if self.rigl_score == "aligned":
            return F.aligned_rigl_scores(grad, sign)
        return F.signed_rigl_scores(grad, sign)

    def _choose_free_signs(self, layer: _SparseLayer, grown: torch.Tensor) -> None:
        if self.regrow == "rigl" and layer.dense_grad is not None:
            descent = F.weight_signs(-layer.dense_grad)
        else:
            coin = torch.randint(0, 2, layer.sign.shape, generator=self.generator)
            descent = (2.0 * coin - 1.0).to(layer.sign)
        layer.sign = torch.where(grown, descent, layer.sign)

    def _project(self, layer: _SparseLayer) -> None:
        """Zero inactive synapses and hold magnitudes at ``>= 0`` (no sign flip)."""
        with torch.no_grad():
            w = layer.param
            if self.sign == "free" and self.regrow == "none":
                w.mul_(layer.mask)
            else:
                w.copy_(torch.where(layer.mask, layer.sign * (layer.sign * w).clamp_min(0.0), torch.zeros_like(w)))

    # ---- logging, plots and checkpoints -----------------------------------------------------------
    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, layer in self._layers.items():
            n_active = layer.mask.sum().clamp_min(1)
            stats = {
                "sparsity": 1.0 - layer.mask.float().mean().item(),
                "rewired": float(layer.rewired_epoch),
                "mean_age": (layer.age * layer.mask).sum().item() / n_active.item(),
            }
            for key, value in stats.items():
                pl_module.log(f"rewiring/{name}/{key}", value, on_step=False, on_epoch=True, batch_size=1)
            layer.rewired_epoch = 0

    @override
    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plot:
            self.save_mask_plots(run_directory(trainer))

    def save_mask_plots(self, directory: str) -> list[str]:
        """One PNG raster per layer: active synapses (postsynaptic × presynaptic) coloured by sign."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(directory, exist_ok=True)
        paths = []
        for name, layer in self._layers.items():
            signed = (layer.sign * layer.mask).detach().cpu().float()
            image = signed.reshape(signed.shape[0], -1) if signed.dim() > 1 else signed[None]
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.imshow(image.numpy(), cmap="bwr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
            ax.set_xlabel("presynaptic")
            ax.set_ylabel("postsynaptic")
            ax.set_title(f"{name}: {int(layer.mask.sum())}/{layer.mask.numel()} active")
            fig.tight_layout()
            path = os.path.join(directory, f"rewiring_mask_{name.replace('.', '_')}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
        return paths

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "generator": self.generator.get_state(),
            "layers": {name: layer.state() for name, layer in self._layers.items()},
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict


def _reset_optimizer_state(optimizers: list, param: nn.Parameter, positions: torch.Tensor) -> None:
    """Zero the per-synapse optimizer moments (Adam's exp_avg…, SGD momentum) at ``positions``."""
    if not positions.any():
        return
    for optimizer in optimizers:
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value[positions] = 0


def _validate(
    sparsity,
    sign,
    regrow,
    every_n_steps,
    layers,
    init_mask,
    rigl_score,
    regrow_magnitude,
    l1,
    temperature,
    excitatory_fraction,
    l1_loss,
) -> None:
    if not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ValueError(
            f"Rewiring: sparsity must be a number in [0, 1), got {sparsity!r}; "
            "e.g. sparsity=0.9 keeps 10 % of the synapses."
        )
    for arg, value, allowed in (
        ("sign", sign, SIGNS),
        ("regrow", regrow, REGROWTHS),
        ("init_mask", init_mask, INIT_MASKS),
        ("rigl_score", rigl_score, RIGL_SCORES),
    ):
        if value not in allowed:
            raise ValueError(f"Rewiring: unknown {arg}={value!r}; expected one of {allowed}.")
    if not isinstance(every_n_steps, int) or every_n_steps < 1:
        raise ValueError(f"Rewiring: every_n_steps must be an integer >= 1, got {every_n_steps!r}.")
    if layers is not None and (isinstance(layers, str) or not all(isinstance(n, str) for n in layers)):
        raise ValueError(f"Rewiring: layers must be None or a list of qualified module names, got {layers!r}.")
    if not regrow_magnitude > 0:
        raise ValueError(f"Rewiring: regrow_magnitude must be > 0, got {regrow_magnitude}.")
    if l1 < 0 or temperature < 0:
        raise ValueError(f"Rewiring: l1 and temperature must be >= 0, got l1={l1}, temperature={temperature}.")
    if not 0.0 <= excitatory_fraction <= 1.0:
        raise ValueError(f"Rewiring: excitatory_fraction must be in [0, 1], got {excitatory_fraction}.")
    if isinstance(l1_loss, bool) or not isinstance(l1_loss, (int, float)) or not 0 <= l1_loss < math.inf:
        raise ValueError(
            f"Rewiring: l1_loss must be a finite number >= 0 (λ of the loss term λ‖W‖₁; 0 disables it), "
            f"got {l1_loss!r}; the authors of paper D use 0.01."
        )
