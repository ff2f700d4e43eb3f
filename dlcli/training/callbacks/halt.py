"""Stopping after the current step on a signal, or when the loss stops being finite."""

from __future__ import annotations

import math

import keras


class Halt:
    """Why training should stop early: a signal (SIGINT/SIGTERM) or a diverged loss."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.diverged: tuple[int, int, float] | None = None

    def __bool__(self) -> bool:
        return self.signum is not None or self.diverged is not None


class HaltCallback(keras.callbacks.Callback):
    """Stops after the current step on a signal, or when the loss stops being finite.

    With steps_per_execution > 1 Keras reports every N batches, so a divergence is placed at the
    end of the block of N batches in which the loss first went bad.
    """

    def __init__(self, halt: Halt, steps: int | None, epoch_var=None):
        super().__init__()
        self.halt, self.steps, self.epoch, self.epoch_var = halt, steps, 0, epoch_var

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        if self.epoch_var is not None:  # picks this epoch's data order (see training_dataset)
            self.epoch_var.assign(epoch)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.halt.diverged is None:
            last = batch + 1 if self.steps is None else min(batch + 1, self.steps)
            self.halt.diverged = (self.epoch, last, float(loss))
        if self.halt:
            self.model.stop_training = True
