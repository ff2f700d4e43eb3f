"""Keras' EarlyStopping, resumable: its counters set back to where a killed run left them."""

from __future__ import annotations

from typing import Any

import keras


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping whose counters can be set back to where a killed run left them."""

    def __init__(self, prior: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.prior = prior

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.prior:
            self.wait, self.best, self.best_epoch = (
                self.prior["wait"],
                self.prior["best"],
                self.prior["best_epoch"],
            )

    def state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        return {
            "wait": int(self.wait),
            "best": best,
            "best_epoch": int(self.best_epoch),
            "stopped": bool(self.stopped_epoch),
        }
