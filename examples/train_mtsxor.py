"""Train a hierarchical-τ SNN on Multi-Time-Scale XOR with plain ``Trainer.fit`` (no CLI, no YAML).

python examples/train_mtsxor.py
"""

import lightning as L

from lightning_snn import FeedForwardSNN, MTSXORDataModule, SpikingClassifier, TauSchedule, TemporalStatsLogger
from lightning_snn.loggers import default_logger
from lightning_snn.summary import print_summary


def main() -> None:
    L.seed_everything(0)
    network = FeedForwardSNN(
        n_inputs=40,
        hidden=[32, 32, 32],
        n_outputs=2,
        tau=TauSchedule(mean=10.0, delta=16.0, kind="linear"),  # τ = 2, 10, 18 steps: grows with depth
        readout_tau=5.0,
        neuron={"decay_input": False},
    )
    model = SpikingClassifier(network, readout="per_step", lr=0.01)
    data = MTSXORDataModule(n_train=4096, n_val=1024, n_test=1024, batch_size=256)
    trainer = L.Trainer(
        max_epochs=30, logger=default_logger(), callbacks=[TemporalStatsLogger()], gradient_clip_val=1.0
    )
    trainer.fit(model, data)
    print_summary(model, trainer.test(model, data, verbose=False)[0])


if __name__ == "__main__":
    main()
