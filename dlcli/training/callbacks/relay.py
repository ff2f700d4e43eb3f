"""Training's progress relayed to a listener (the CLI's live lines, a tune trial's pruner)."""

from __future__ import annotations

from typing import Protocol

import keras

from dlcli.training.callbacks.halt import Halt


class Listener(Protocol):
    """Hears training's progress: the CLI's live lines, a tune trial's reporter."""

    def train_begin(self, epochs: int, steps: int | None) -> None: ...
    def batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def train_end(self) -> None: ...


class Relay(keras.callbacks.Callback):
    def __init__(self, listener: Listener, epochs: int, steps: int | None, halt: Halt):
        super().__init__()
        self.listener, self.epochs, self.steps, self.halt = listener, epochs, steps, halt

    def on_train_begin(self, logs=None):
        self.listener.train_begin(self.epochs, self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.listener.batch_end(batch + 1, _floats(logs))

    def on_epoch_end(self, epoch, logs=None):
        if not self.halt:  # a halted epoch is partial and is not recorded
            self.listener.epoch_end(epoch + 1, _floats(logs))

    def on_train_end(self, logs=None):
        self.listener.train_end()


def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}
