"""What the benchmark adds to each plain script: epoch wall times and a JSON result. Nothing else."""

from __future__ import annotations

import json
import sys
import time

import keras


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.began = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(round(time.perf_counter() - self.began, 4))


def write_result(path: str, **values) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    print(json.dumps(values), file=sys.stderr)
