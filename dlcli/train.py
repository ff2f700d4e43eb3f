"""Seeding, the tf.data input pipeline, Keras callbacks and `fit`.

A `Listener` (plain Python; the CLI implements it with rich) hears about epochs and batches, so this
module never prints.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dlcli.config import Config

if TYPE_CHECKING:
    import numpy as np

#: steps_per_execution: auto. Per-step Python overhead dominates small models; running many steps per
#: call into TensorFlow removes it without changing results.
AUTO_STEPS_PER_EXECUTION = 32


class Listener(Protocol):
    def train_begin(self, epochs: int, steps: int | None) -> None: ...
    def batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def train_end(self) -> None: ...


def import_tensorflow() -> None:
    """Import TensorFlow once with its start-up chatter (absl lines about absent CUDA) held back.

    Those lines go straight to file descriptor 2 before any Python logging is set up; they are shown
    only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe prints here, once
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow randomness from one seed."""
    import keras

    keras.utils.set_random_seed(seed)


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu x{len(gpus)}" if gpus else "cpu"


def steps_per_execution(config: Config) -> int:
    value = config.train.steps_per_execution
    return AUTO_STEPS_PER_EXECUTION if value == "auto" else int(value)


def array_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    """`(x, y)` in memory → shuffled batches; x keeps its dtype (uint8 images are not copied to float)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def window_pipeline(ds, batch_size: int, shuffle: bool, seed: int):
    """Unbatched windows → cached, reshuffled each epoch, batched."""
    import tensorflow as tf

    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def callbacks(
    config: Config, run_dir: Path, listener: Listener | None, steps: int | None, guard=None
) -> list:
    import keras

    ckpt = run_dir / "checkpoints"
    ckpt.mkdir(exist_ok=True)
    monitor = config.checkpoint_monitor()
    out: list[Any] = [
        *([guard] if guard is not None else []),
        keras.callbacks.ModelCheckpoint(
            ckpt / "best.keras",
            monitor=monitor,
            save_best_only=True,
            mode=config.train.checkpoint.mode,
            verbose=0,
        ),
        keras.callbacks.ModelCheckpoint(ckpt / "last.keras", save_best_only=False, verbose=0),
        _csv_logger_class()(str(run_dir / "history.csv"), append=True),
    ]
    stop = config.train.early_stopping
    if stop is not None:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor=stop.monitor,
                patience=stop.patience,
                min_delta=stop.min_delta,
                mode=stop.mode,
                restore_best_weights=True,
                verbose=0,
            )
        )
    if config.train.tensorboard:
        out.append(
            keras.callbacks.TensorBoard(
                str(run_dir / "tensorboard"), write_graph=False, profile_batch=0, update_freq="epoch"
            )
        )
    if listener is not None:
        out.append(_relay_class()(listener, config.train.epochs, steps))
    return out


def _csv_logger_class():
    import keras

    class EpochCSVLogger(keras.callbacks.CSVLogger):
        """Keras' CSVLogger with epochs numbered from 1, as everywhere else in dlcli."""

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch + 1, logs)

    return EpochCSVLogger


def _relay_class():
    import keras

    class Relay(keras.callbacks.Callback):
        def __init__(self, listener: Listener, epochs: int, steps: int | None):
            super().__init__()
            self.listener, self.epochs, self.steps = listener, epochs, steps

        def on_train_begin(self, logs=None):
            self.listener.train_begin(self.epochs, self.steps)

        def on_train_batch_end(self, batch, logs=None):
            self.listener.batch_end(batch + 1, _floats(logs))

        def on_epoch_end(self, epoch, logs=None):
            self.listener.epoch_end(epoch + 1, _floats(logs))

        def on_train_end(self, logs=None):
            self.listener.train_end()

    return Relay


def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


def _nan_guard_class():
    import keras

    class NaNGuard(keras.callbacks.TerminateOnNaN):
        """Keras' TerminateOnNaN that also remembers where: `(epoch, batch, value)` in `self.diverged`.

        With steps_per_execution > 1 Keras reports every N batches, so the batch is the end of the
        block of N in which the loss first went bad.
        """

        diverged: tuple[int, int, float] | None = None
        epoch = 0
        steps: int | None = None  # batches per epoch, where known

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)) and self.diverged is None:
                last = batch + 1 if self.steps is None else min(batch + 1, self.steps)
                self.diverged = (self.epoch, last, float(loss))
                self.model.stop_training = True

    return NaNGuard


def fit(model, train_ds, val_ds, config: Config, run_dir: Path, listener: Listener | None, steps: int | None):
    """Train; returns the Keras History and where the loss diverged (or None).

    The model ends with the best checkpoint's weights, also after a divergence.
    """
    guard = _nan_guard_class()()
    guard.steps = steps
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.train.epochs,
        verbose=0,
        shuffle=False,
        callbacks=callbacks(config, run_dir, listener, steps, guard),
    )
    best = run_dir / "checkpoints" / "best.keras"
    if best.is_file():
        model.load_weights(best)
    return history, guard.diverged
