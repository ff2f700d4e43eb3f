"""Seeding, the tf.data input pipeline, Keras callbacks and `fit`.

A `Listener` (plain Python; the CLI implements it with rich) hears about epochs and batches, so this
module never prints.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
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


def seed_everything(seed: int, deterministic: bool | str = "auto") -> bool:
    """Python, NumPy and TensorFlow randomness from one seed; returns whether ops are deterministic.

    `auto` turns TensorFlow op determinism on where no GPU is used: on a CPU it costs little.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic == "auto":
        deterministic = not tf.config.list_physical_devices("GPU")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return bool(deterministic)


#: intra_op_threads: auto. A step of a small dense model (MNIST's MLP at batch 32: 3 M multiply-adds)
#: is too little work to split across threads: TensorFlow's pool costs more than it gains. One thread
#: per op made its epochs 10-25 % faster on 2 cores with identical results, while the convnet (a
#: step of 1.7 G multiply-adds) was 40 % slower with one. Below this many per step: one thread.
SMALL_STEP_MACS = 20_000_000
#: Layers that keep the shape of what they are given (the estimate passes through them).
_SHAPE_KEEPING = {
    "Dropout", "Activation", "BatchNormalization", "LayerNormalization", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Rescaling",
}  # fmt: skip


def dense_step_macs(config: Config, input_shape: list[int]) -> int | None:
    """Multiply-adds of one training batch's forward pass for a model of Dense layers (and layers
    that only reshape or act element-wise); None for any other layer, whose cost this cannot tell."""
    import math

    shape = list(config.model.input_shape or input_shape)
    macs = 0
    for spec in config.model.layers:
        ((name, args),) = spec.items()
        args = args or {}
        if name == "Dense":
            units = int(args.get("units", 1))
            macs += math.prod(shape[:-1]) * shape[-1] * units
            shape = [*shape[:-1], units]
        elif name == "Flatten":
            shape = [math.prod(shape)]
        elif name == "Reshape" and "target_shape" in args:
            shape = [int(d) for d in args["target_shape"]]
        elif name not in _SHAPE_KEEPING:
            return None
    return macs * config.train.batch_size


def set_intra_op_threads(config: Config, input_shape: list[int]) -> int | str:
    """Apply train.intra_op_threads before TensorFlow runs its first op; returns what is in use."""
    import tensorflow as tf

    wanted = config.train.intra_op_threads
    if wanted == "auto":
        macs = dense_step_macs(config, input_shape)
        small = macs is not None and macs < SMALL_STEP_MACS and not tf.config.list_physical_devices("GPU")
        wanted = 1 if small else 0
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(wanted))
    except RuntimeError:  # TensorFlow already ran ops in this process (a library user, a test)
        pass
    return tf.config.threading.get_intra_op_parallelism_threads() or "all cores"


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu x{len(gpus)}" if gpus else "cpu"


def steps_per_execution(config: Config) -> int:
    value = config.train.steps_per_execution
    return AUTO_STEPS_PER_EXECUTION if value == "auto" else int(value)


def as_tensor(x: np.ndarray):
    """A tensor over `x`'s own memory when TensorFlow can use it in place (64-byte aligned and
    contiguous, see arrays.py), else a copy. The tensor keeps `x` alive; nothing writes to either."""
    import tensorflow as tf

    from dlcli.arrays import is_aligned

    if is_aligned(x) and x.dtype.kind in "uif" and x.size:
        return tf.experimental.dlpack.from_dlpack(x.__dlpack__())
    return tf.constant(x)


def array_dataset(x: np.ndarray, y: np.ndarray | None, batch_size: int):
    """`(x, y)` in memory → batches in order (validation, evaluation); x keeps its dtype."""
    import tensorflow as tf

    parts = as_tensor(x) if y is None else (as_tensor(x), as_tensor(y))
    return lean(tf.data.Dataset.from_tensor_slices(parts).batch(batch_size))


def lean(ds):
    """Prefetch two batches, without tf.data's graph rewrites and autotuning.

    The rewrites serialize the dataset graph, copying the arrays captured in it: on MNIST that was
    12 MB more peak memory in training and 15 MB in prediction. The pipelines here are an in-memory
    gather per batch, which the rewrites do not speed up.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(2)


def training_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Shuffled batches of one epoch, and the variable that names the epoch.

    Keras iterates the dataset afresh each epoch; the order is a pure function of (seed, epoch),
    read from the variable that HaltCallback sets as each epoch begins. So a run resumed at epoch k
    sees exactly the batches the uninterrupted run saw. Rows are gathered a batch at a time and x
    keeps its dtype (uint8 images are not copied to float).
    """
    import tensorflow as tf

    xs, ys, n = as_tensor(x), as_tensor(y), len(x)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def one_epoch(_):
        key = tf.stack([tf.constant(seed, tf.int64), epoch.read_value()])
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    steps = -(-n // batch_size)
    ds = (
        tf.data.Dataset.from_tensors(0)
        .flat_map(one_epoch)
        .map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)))  # one gather per batch
        .apply(tf.data.experimental.assert_cardinality(steps))  # Keras then knows the epoch's length
    )
    return lean(ds), epoch


def release_training_memory(model) -> None:
    """Drop the traced training and validation functions and hand freed heap back to the OS."""
    import ctypes
    import gc

    model.train_function = model.test_function = None
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class Halt:
    """Why training should stop early: a signal (SIGINT/SIGTERM) or a diverged loss."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.diverged: tuple[int, int, float] | None = None

    def __bool__(self) -> bool:
        return self.signum is not None or self.diverged is not None


@contextmanager
def stop_on_signals(halt: Halt):
    """SIGINT and SIGTERM ask training to stop after the current step instead of killing it."""

    def handler(signum, frame):
        halt.signum = signum

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield halt
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def callbacks(
    config: Config,
    run_dir: Path,
    listener: Listener | None,
    steps: int | None,
    halt: Halt,
    prior: dict | None,
    history: list[dict],
    epoch_var=None,
) -> list:
    import keras

    from dlcli.state import callbacks_classes

    ResumableEarlyStopping, RunState = callbacks_classes()
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    stop = config.train.early_stopping
    early = None
    if stop is not None:
        early = ResumableEarlyStopping(
            prior=(prior or {}).get("early_stopping"),
            monitor=stop.monitor,
            patience=stop.patience,
            min_delta=stop.min_delta,
            mode=stop.mode,
            restore_best_weights=False,
            verbose=0,
        )
    out: list[Any] = [*dataset_guard(), _halt_class()(halt, steps, epoch_var), *([early] if early else [])]
    if config.train.tensorboard:
        out.append(
            keras.callbacks.TensorBoard(
                str(run_dir / "tensorboard"), write_graph=False, profile_batch=0, update_freq="epoch"
            )
        )
    out.append(
        RunState(
            run_dir,
            config.checkpoint_monitor(),
            config.train.checkpoint.mode,
            prior,
            history,
            early,
            halted=lambda: bool(halt),
        )
    )
    if listener is not None:
        out.append(_relay_class()(listener, config.train.epochs, steps, halt))
    out.append(_timer_class()())  # last: an epoch's time includes the checkpoints written at its end
    return out


def _determinism_switch():
    """(off, on) for TensorFlow op determinism while it is on, else None."""
    from tensorflow.python.framework import config as tf_config

    off = getattr(tf_config, "disable_op_determinism", None)
    if off is None or not tf_config.is_op_determinism_enabled():
        return None
    return off, tf_config.enable_op_determinism


def dataset_guard() -> list:
    """A callback that keeps op determinism off while Keras makes dataset iterators, if it is on.

    With op determinism on, tf.data gives every new iterator its `make_deterministic` graph rewrite,
    which serializes the dataset graph and with it the in-memory arrays: a transient copy of the
    training set each time (Keras 3.15 makes two iterators an epoch; 45 MB more peak memory on
    MNIST). The pipelines here have no parallel stage, so the rewrite changes nothing. Determinism is
    on while every training, validation and prediction step runs, which is when kernels are built.
    """
    import keras

    switch = _determinism_switch()
    if switch is None:
        return []
    off, on = switch

    class DatasetGuard(keras.callbacks.Callback):
        def _off(self, *args, **kwargs):
            off()

        def _on(self, *args, **kwargs):
            on()

        on_epoch_begin = on_test_begin = on_predict_begin = _off
        on_train_batch_end = on_test_batch_end = on_predict_batch_end = _off
        on_train_batch_begin = on_test_batch_begin = on_predict_batch_begin = _on
        on_train_end = on_test_end = on_predict_end = on_epoch_end = _on

    return [DatasetGuard()]


#: Batches of at least this many rows when only predicting (evaluation, predict): fewer calls.
FORWARD_BATCH = 256


def forward(model, ds, compiled: bool = False):
    """The model's outputs over `ds` (batches of inputs, or of (inputs, targets)), as one array;
    with `compiled`, also the compiled loss and metrics over all batches, as model.evaluate gives.

    One eager call per batch rather than `model.predict`, which traces a function for a single
    pass: on MNIST's 60,000 training images that was 40 MB more peak memory against 17 MB, at the
    same speed with batches of 256. The loss and metrics accumulate batch by batch too: over the
    whole set at once they cost another 15 MB there.
    """
    import keras
    import numpy as np

    switch = _determinism_switch()
    if switch:
        switch[0]()  # see dataset_guard
    try:
        batches = iter(ds)
    finally:
        if switch:
            switch[1]()
    if compiled:
        model.reset_metrics()
    parts, loss_sum, rows = [], 0.0, 0
    for batch in batches:
        x, y = batch if isinstance(batch, tuple) else (batch, None)
        out = model(x, training=False)
        parts.append(keras.ops.convert_to_numpy(out))
        if compiled:
            n = int(keras.ops.shape(out)[0])
            loss_sum += float(model.compute_loss(x=None, y=y, y_pred=out, training=False)) * n
            rows += n
            model.compute_metrics(None, y, out)
    outputs = np.concatenate(parts)
    if not compiled:
        return outputs
    metrics = {k: float(v) for k, v in model.get_metrics_result().items()}
    return outputs, {**metrics, "loss": loss_sum / max(rows, 1)}


def _timer_class():
    import time

    import keras

    import dlcli

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
                self.first_step_s = round(time.time() - dlcli.STARTED_AT, 3)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_s.append(round(time.perf_counter() - self.began, 4))

    return Timer


def _halt_class():
    import keras

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

    return HaltCallback


def _relay_class():
    import keras

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

    return Relay


def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


def fit(
    model,
    train_ds,
    val_ds,
    config: Config,
    run_dir: Path,
    listener: Listener | None,
    steps: int,
    halt: Halt,
    first_epoch: int = 0,
    prior: dict | None = None,
    history: list[dict] | None = None,
    epoch_var=None,
):
    """Train epochs `first_epoch`.. of the config; returns the Timer (epoch times, first step).

    The model ends with the best checkpoint's weights, also after a divergence or a signal.
    """
    rows = history if history is not None else []
    hooks = callbacks(config, run_dir, listener, steps, halt, prior, rows, epoch_var)
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.train.epochs,
        initial_epoch=first_epoch,
        verbose=0,
        shuffle=False,
        callbacks=hooks,
    )
    best = run_dir / "checkpoints" / "best.keras"
    if best.is_file():
        model.load_weights(best)
    return hooks[-1]
