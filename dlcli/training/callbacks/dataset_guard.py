"""Op determinism lifted while Keras makes dataset iterators, if it is on.

With op determinism on, tf.data gives every new iterator its `make_deterministic` graph rewrite,
which serializes the dataset graph and with it the in-memory arrays: a transient copy of the
training set each time (Keras 3.15 makes two iterators an epoch; 45 MB more peak memory on MNIST).
The pipelines here have no parallel stage, so the rewrite changes nothing. Determinism is on while
every training, validation and prediction step runs, which is when kernels are built.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from dlcli.datasets.pipeline import determinism_switch


class DatasetGuard(keras.callbacks.Callback):
    """Calls `off` between steps (when iterators are made) and `on` around every step."""

    def __init__(self, off: Callable[[], None], on: Callable[[], None]):
        super().__init__()
        self.off, self.on = off, on

    def _off(self, *args, **kwargs):
        self.off()

    def _on(self, *args, **kwargs):
        self.on()

    on_epoch_begin = on_test_begin = on_predict_begin = _off
    on_train_batch_end = on_test_batch_end = on_predict_batch_end = _off
    on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = _on
    on_train_end = on_test_end = on_predict_end = on_epoch_end = _on


def dataset_guard() -> list:
    """[DatasetGuard] while op determinism is on, else []."""
    switch = determinism_switch()
    return [] if switch is None else [DatasetGuard(*switch)]
