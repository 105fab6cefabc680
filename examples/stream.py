"""Streaming inference: a trained SNN reads a long input chunk by chunk, with constant memory.

Trains a small network on Multi-Time-Scale XOR (a few epochs, truncated BPTT with chunks of 25 steps),
then generates a long stream (many MTS-XOR sequences back to back, ``--samples`` × 100 steps) and feeds
it ``--chunk`` steps at a time through ``forward_with_state``: the network keeps only its state (one
membrane per neuron, and the few past inputs of delays / convolutions) between chunks, never the
stream. Every chunk prints its predictions on the labelled steps. The chunked outputs equal one pass
over the whole stream (checked at the end).

    python examples/stream.py                    # 40 sequences (4000 steps), chunks of 50
    python examples/stream.py --chunk 1          # one step at a time, as a sensor would deliver them
"""

from __future__ import annotations

import argparse

import lightning as L
import torch

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TauSchedule
from lightning_snn.data.mtsxor import generate_mtsxor
from lightning_snn.state import detach_state

IGNORE_INDEX = -100


def state_bytes(state: dict) -> int:
    return sum(t.numel() * t.element_size() for s in state.values() for t in s if isinstance(t, torch.Tensor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=40, help="MTS-XOR sequences in the stream")
    parser.add_argument("--chunk", type=int, default=50, help="steps per chunk")
    args = parser.parse_args()

    L.seed_everything(0)
    network = FeedForwardSNN(
        40, [32, 32], 2, tau=TauSchedule(mean=10.0, delta=16.0), readout_tau=5.0, neuron={"decay_input": False}
    )
    model = SpikingClassifier(network, readout="per_step", lr=0.01, tbptt_steps=25)
    data = MTSXORDataModule(n_train=1024, n_val=256, n_test=256, batch_size=64)
    L.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(
        model, data
    )

    network.eval()
    x, y, _, _ = generate_mtsxor(args.samples, seed=123)  # (N, 100, 40), (N, 100)
    stream_x = x.reshape(1, -1, x.shape[-1]).transpose(0, 1)  # one long sequence (N·100, 1, 40)
    stream_y = y.reshape(-1, 1)
    state, outputs, correct, labelled = None, [], 0, 0
    with torch.no_grad():
        for i, chunk in enumerate(stream_x.split(args.chunk)):
            out, state = network.forward_with_state(chunk, state)
            state = detach_state(state)  # nothing to detach under no_grad; needed when training on a stream
            outputs.append(out)
            target = stream_y[i * args.chunk : i * args.chunk + chunk.shape[0], 0]
            mask = target != IGNORE_INDEX
            pred = out[:, 0].argmax(-1)
            correct += int((pred[mask] == target[mask]).sum())
            labelled += int(mask.sum())
            shown = "".join(str(int(p)) if m else "." for p, m in zip(pred, mask))
            print(f"chunk {i:4d}  steps {i * args.chunk:6d}+  predictions {shown}")
        full = network(stream_x)
    print(f"accuracy on labelled steps: {correct / max(labelled, 1):.3f} ({labelled} steps)")
    print(f"state carried between chunks: {state_bytes(state)} bytes; stream: {stream_x.numel() * 4} bytes")
    print(f"chunked output equals one pass: {torch.allclose(torch.cat(outputs), full, atol=1e-5)}")


if __name__ == "__main__":
    main()
