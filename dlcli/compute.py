"""How TensorFlow computes here: start-up, seeds and determinism, CPU threads, steps per call, the
tf.data input pipelines over arrays in place, batch-by-batch forward passes, and memory release.

Everything speed or memory measured in benchmarks/ depends on is in this module; train.py holds the
training loop's callbacks and `fit`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import TYPE_CHECKING

from dlcli.config import Config
from dlcli.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np


#: steps_per_execution: auto. Per-step Python overhead dominates small models; running many steps per
#: call into TensorFlow removes it without changing results.
AUTO_STEPS_PER_EXECUTION = 32


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
        deterministic = not tf.config.get_visible_devices("GPU")
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
        small = macs is not None and macs < SMALL_STEP_MACS and not tf.config.get_visible_devices("GPU")
        wanted = 1 if small else 0
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(wanted))
    except RuntimeError:  # TensorFlow already ran ops in this process (a library user, a test)
        pass
    return tf.config.threading.get_intra_op_parallelism_threads() or "all cores"


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.get_visible_devices("GPU")  # what --device left visible
    return f"gpu x{len(gpus)}" if gpus else "cpu"


def weights_digest(model) -> str:
    """sha256 of the model's weight values, in order: equal digests, identical weights."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def steps_per_execution(config: Config, distributed: bool = False) -> int:
    """train.steps_per_execution; 1 under a tf.distribute strategy, where Keras 3.15's loop over
    several steps fails ("You must feed a value for placeholder tensor", keras-team/keras issue 19246)."""
    value = config.train.steps_per_execution
    if distributed and value not in ("auto", 1):
        from dlcli.checks import steps_per_call_problem

        raise ConfigError(f"train.steps_per_execution: {steps_per_call_problem(int(value))}")
    if distributed:
        return 1
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
    # Under a multi-worker strategy every worker builds the same batches from its own copy of the
    # arrays and keeps its share of each (there are no files to shard); one machine: no effect
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
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
