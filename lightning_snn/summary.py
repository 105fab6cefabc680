"""Human-readable end-of-run summary: test accuracy and the learned τ per layer."""

from __future__ import annotations

import torch

from lightning_snn.callbacks.temporal_stats import collect_statistics


def tau_table(module: torch.nn.Module) -> str:
    """One line per layer: mean ± std [min, max] of τ."""
    lines = []
    for layer, values in collect_statistics(module).get("tau", {}).items():
        std = values.std().item() if values.numel() > 1 else 0.0
        lines.append(
            f"  {layer:<28s} tau = {values.mean().item():8.3f} ± {std:6.3f}  "
            f"[{values.min().item():.3f}, {values.max().item():.3f}]  ({values.numel()} value(s))"
        )
    return "\n".join(lines)


def print_summary(module: torch.nn.Module, metrics: dict[str, float]) -> None:
    acc = metrics.get("test_acc")
    print("\n=== lightning-snn summary ===")
    if acc is not None:
        print(f"test accuracy: {float(acc):.4f}")
    print("learned tau per layer (units of dt):")
    print(tau_table(module))
