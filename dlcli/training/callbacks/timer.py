"""The wall time of each epoch and of the first training step, for run.json's timings."""

from __future__ import annotations

import time

import keras

from dlcli.utils.about import STARTED_AT


class Timer(keras.callbacks.Callback):
    """Wall time of each epoch (training, validation and the files written after it), and the
    time from the start of the process to the end of the first training step."""

    def __init__(self):
        super().__init__()
        self.epoch_s: list[float] = []
        self.first_step_s: float | None = None
        self.began = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.first_step_s is None:
            self.first_step_s = round(time.time() - STARTED_AT, 3)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_s.append(round(time.perf_counter() - self.began, 4))
