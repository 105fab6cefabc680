"""Human-readable end-of-run summary: test accuracy and the learned τ per layer, in time steps (and in
milliseconds when the neurons' ``TimeConstant.dt`` gives a step's length in seconds)."""

from __future__ import annotations

import torch

from lightning_snn.callbacks.temporal_stats import collect_statistics, in_steps, layer_dt


def tau_table(module: torch.nn.Module) -> str:
    """One line per layer: mean ± std [min, max] of τ in steps, then its mean in ms when a step's length is known."""
    dts = layer_dt(module)
    lines = []
    for layer, values in in_steps(collect_statistics(module), dts).get("tau", {}).items():
        std = values.std().item() if values.numel() > 1 else 0.0
        dt = dts.get(layer, 1.0)
        ms = f"  = {values.mean().item() * dt * 1000:.4g} ms" if dt != 1.0 else ""
        lines.append(
            f"  {layer:<28s} tau = {values.mean().item():8.3f} ± {std:6.3f}  "
            f"[{values.min().item():.3f}, {values.max().item():.3f}] steps{ms}  ({values.numel()} value(s))"
        )
    return "\n".join(lines)


def print_summary(module: torch.nn.Module, metrics: dict[str, float]) -> None:
    acc = metrics.get("test_acc")
    print("\n=== lightning-snn summary ===")
    if acc is not None:
        print(f"test accuracy: {float(acc):.4f}")
    print("learned tau per layer (time steps):")
    print(tau_table(module))
