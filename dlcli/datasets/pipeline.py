"""Data into the model and predictions out of it, at one copy of the data: tf.data pipelines over
arrays in place (training batches in a seeded order per epoch), batch-by-batch forward passes with the
compiled loss and metrics, and the memory handed back after training.

Everything the memory figures in benchmarks/ depend on is here.
"""

from __future__ import annotations

import ctypes
import gc
import weakref

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from dlcli.io.images import parallel_calls
from dlcli.utils.arrays import is_aligned


def rows(x) -> int:
    """Examples in `x`: an array, or a dict of named model inputs (text columns beside features;
    with sparse.py, a text column is a pair of ragged tensors)."""
    first = next(iter(x.values())) if isinstance(x, dict) else x
    first = first[0] if isinstance(first, tuple) else first
    return int(first.nrows()) if hasattr(first, "nrows") else len(first)


def as_tensor(x):
    """A tensor over `x`'s own memory when TensorFlow can use it in place (64-byte aligned and
    contiguous, see arrays.py), else a copy; a dict of named inputs gives a dict of tensors (strings
    for text). The tensor keeps `x` alive; nothing writes to either."""
    if isinstance(x, dict):
        return {name: as_tensor(value) for name, value in x.items()}
    if isinstance(x, tuple):  # sparse.py's (ids, values) of a text column: tensors already
        return x
    if x.dtype == object:  # raw text
        return tf.constant(x, dtype=tf.string)
    if is_aligned(x) and x.dtype.kind in "uif" and x.size:
        return tf.experimental.dlpack.from_dlpack(x.__dlpack__())
    return tf.constant(x)


def array_dataset(x: np.ndarray, y: np.ndarray | None, batch_size: int, load=None, finish=None):
    """`(x, y)` in memory → batches in order (validation, evaluation); x keeps its dtype. With `load`
    (image files), x holds paths and each is loaded, in parallel, as the batches stream. With
    `finish` (sparse.py), batches of rows are gathered and each batch's x passed through it."""
    if finish is not None:
        xs, ys = as_tensor(x), as_tensor(y)
        batches = tf.data.Dataset.range(rows(x)).batch(batch_size)
        return lean(batches.map(lambda idx: (finish(_gather(xs, idx)), _gather(ys, idx))))
    parts = as_tensor(x) if y is None else (as_tensor(x), as_tensor(y))
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if load is not None:
        ds = ds.map(_loading(load, y is not None), num_parallel_calls=_parallel())
    return lean(ds.batch(batch_size))


#: Image files whose decoded training and validation examples fit in this many bytes are read once,
#: before the first epoch, and trained on from memory: decoded again every epoch, a 20-epoch run on
#: hymenoptera's 245 photos (64x64: 12 MB as float32) read and resized each of them 20 times.
DECODED_BYTES = 256 << 20


def decoded_in_memory(parts: list, load) -> list | None:
    """Each of `parts` (paths, or named inputs holding a column of paths) with its files loaded by
    `load`, in order, as arrays; None when the loaded examples' shape is not fixed or they would take
    more than DECODED_BYTES together (then they are decoded as batches stream). The same `load` in
    the same tf.data map as the streaming path: the pixels are those it gives."""
    loading = [_decoding(x, load) for x in parts]
    size = _example_bytes(loading[0].element_spec)
    if size is None or size * sum(rows(x) for x in parts) > DECODED_BYTES:
        return None
    return [_arrays(ds) for ds in loading]


def _decoding(x, load):
    ds = tf.data.Dataset.from_tensor_slices(as_tensor(x))
    return ds.map(load, num_parallel_calls=_parallel())


def _example_bytes(spec) -> int | None:
    sizes = [s.shape.num_elements() for s in tf.nest.flatten(spec)]
    if any(n is None for n in sizes):
        return None
    return sum(n * s.dtype.size for n, s in zip(sizes, tf.nest.flatten(spec), strict=True))


def _arrays(ds):
    batches = [tf.nest.map_structure(lambda t: t.numpy(), b) for b in lean(ds.batch(FORWARD_BATCH))]
    if not batches:
        return None
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)


def _loading(load, labelled: bool):
    return (lambda x, *rest: (load(x), *rest)) if labelled else load


def _parallel() -> int:

    return parallel_calls()


def lean(ds):
    """Prefetch two batches, without tf.data's graph rewrites and autotuning.

    The rewrites serialize the dataset graph, copying the arrays captured in it: on MNIST that was
    12 MB more peak memory in training and 15 MB in prediction. The pipelines here are an in-memory
    gather per batch, which the rewrites do not speed up.
    """
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    # Under a multi-worker strategy every worker builds the same batches from its own copy of the
    # arrays and keeps its share of each (there are no files to shard); one machine: no effect
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(2)


def _gather(xs, idx):
    return tf.nest.map_structure(lambda t: tf.gather(t, idx), xs)


def training_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    weights: np.ndarray | None = None,
    load=None,
    finish=None,
    windows: tuple[np.ndarray, int] | None = None,
):
    """Shuffled batches of one epoch, and the variable that names the epoch.

    Keras iterates the dataset afresh each epoch; the order is a pure function of (seed, epoch),
    read from the variable that HaltCallback sets as each epoch begins. So a run resumed at epoch k
    sees exactly the batches the uninterrupted run saw. Rows are gathered a batch at a time and x
    keeps its dtype (uint8 images are not copied to float). `weights`: one per row (class weights),
    passed to Keras as sample weights. `load` (image files): x holds paths, each loaded in parallel
    as its batch is made, in the batch's order. `finish` (sparse.py): each batch's x is passed
    through it. `windows` (time series): `(starts, length)`; x is the whole series and example i is
    its `length` rows from `starts[i]`, cut as its batch is made: no window is ever copied out.
    """
    xs, ys, n = as_tensor(x), as_tensor(y), rows(y)  # y: by output name with several targets
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def one_epoch(_):
        key = tf.stack([tf.constant(seed, tf.int64), epoch.read_value()])
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        order = tf.data.Dataset.from_tensor_slices(order)
        return order if load is not None else order.batch(batch_size)

    steps = -(-n // batch_size)

    if windows is not None:
        starts, length = tf.constant(windows[0], tf.int64), windows[1]
        offsets = tf.range(length, dtype=tf.int64)

        def take(idx):  # the batch's windows: rows starts[i] … starts[i] + length - 1 of the series
            return tf.gather(xs, tf.gather(starts, idx)[:, None] + offsets[None, :])
    else:

        def take(idx):  # one gather per batch and input
            return finish(_gather(xs, idx)) if finish is not None else _gather(xs, idx)

    if weights is None:
        gather = lambda idx: (take(idx), _gather(ys, idx))  # noqa: E731
    else:
        ws = as_tensor(weights.astype("float32"))
        gather = lambda idx: (take(idx), _gather(ys, idx), tf.gather(ws, idx))  # noqa: E731
    ds = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
    if load is None:
        ds = ds.map(gather)
    else:  # one example at a time: each path read and decoded in parallel, kept in order
        ds = ds.map(gather, num_parallel_calls=_parallel()).map(
            _loading(load, True), num_parallel_calls=_parallel()
        )
        ds = ds.batch(batch_size)
    # Keras then knows the epoch's length
    return lean(ds.apply(tf.data.experimental.assert_cardinality(steps))), epoch


def window_batches(series: np.ndarray, starts: np.ndarray, length: int, y, batch_size: int):
    """Windows `series[s : s + length]` for each s of `starts`, in order, in batches (with `y`, one
    target each), cut by index as each batch is made: no window is copied out beforehand."""
    xs, first = as_tensor(series), tf.constant(starts, tf.int64)
    offsets = tf.range(length, dtype=tf.int64)
    index = tf.data.Dataset.range(len(starts)).batch(batch_size)

    def take(idx):
        return tf.gather(xs, tf.gather(first, idx)[:, None] + offsets[None, :])

    if y is None:
        return lean(index.map(take))
    ys = as_tensor(y)
    return lean(index.map(lambda idx: (take(idx), tf.gather(ys, idx))))


def determinism_switch():
    """(off, on) for TensorFlow op determinism while it is on, else None."""
    off = getattr(tf_config, "disable_op_determinism", None)
    if off is None or not tf_config.is_op_determinism_enabled():
        return None
    return off, tf_config.enable_op_determinism


#: Batches of at least this many rows when only predicting (evaluation, predict): fewer calls.
FORWARD_BATCH = 256


def forward(model, ds, compiled: bool = False):
    """The model's outputs over `ds` (batches of inputs, or of (inputs, targets)), as one array;
    with `compiled`, also the compiled loss and metrics over all batches, as model.evaluate gives.

    One call per batch of a function traced once (`traced_step`) rather than `model.predict`, whose
    prediction loop cost 40 MB more peak memory on MNIST's 60,000 training images. Against calling
    the model eagerly per batch, the traced step halves the time (scoring MNIST's three splits: 2.1 s
    down to 1 s) at the same memory. The loss and metrics accumulate batch by batch too: over the
    whole set at once they cost another 15 MB there.
    """

    switch = determinism_switch()
    if switch:
        switch[0]()  # see callbacks/dataset_guard.py
    try:
        batches = iter(ds)
    finally:
        if switch:
            switch[1]()
    if compiled:
        model.reset_metrics()
    step = traced_step(model, compiled, getattr(ds, "element_spec", None))
    parts, loss_sum, seen = [], 0.0, 0
    for batch in batches:
        if not compiled:
            parts.append(_numpy(step(batch[0] if isinstance(batch, tuple) else batch)))
            continue
        out, loss = step(*batch)
        parts.append(_numpy(out))
        loss_sum += float(loss) * rows(parts[-1])
        seen += rows(parts[-1])
    if isinstance(parts[0], dict):  # several outputs: by name
        outputs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    else:
        outputs = np.concatenate(parts)
    if not compiled:
        return outputs
    metrics = {k: float(v) for k, v in model.get_metrics_result().items()}
    return outputs, {**metrics, "loss": loss_sum / max(seen, 1)}


def _numpy(out):
    return {name: value.numpy() for name, value in out.items()} if isinstance(out, dict) else out.numpy()


#: The traced forward steps of each model (see `traced_step`); dropped with the model.
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def traced_step(model, compiled: bool, spec=None):
    """`x → outputs`, or with `compiled` `(x, y) → (outputs, loss)` updating the compiled metrics,
    as a tf.function traced once per model and kind of batch.

    `spec` (a dataset's element_spec, the batch size unknown) is the function's input signature: one
    trace serves every batch of every split. Traced on the first batch's shape instead, the next
    split's batches of another size traced it again (reduce_retracing's relaxed shape), and for a
    model of MobileNetV2's 150 layers each trace is about a second.
    """
    steps = _STEPS.setdefault(model, {})
    key = (compiled, repr(spec))
    if key not in steps:
        if compiled:

            def step(x, y):
                out = model(x, training=False)
                loss = model.compute_loss(x=None, y=y, y_pred=out, training=False)
                model.compute_metrics(None, y, out)
                return out, loss

        else:

            def step(x):
                return model(x, training=False)

        signature = _signature(spec, compiled)
        steps[key] = (
            tf.function(step, input_signature=signature)
            if signature
            else tf.function(step, reduce_retracing=True)
        )
    return steps[key]


def _signature(spec, compiled: bool) -> list | None:
    """The input signature of a forward step over batches of `spec`: `[x]`, or `[x, y]` with
    `compiled`; None where `spec` is unknown or not (inputs, targets) as `compiled` needs."""
    if spec is None:
        return None
    parts = list(spec) if isinstance(spec, tuple) else [spec]
    if compiled:
        return parts if len(parts) == 2 else None
    return parts[:1]


#: Training data below this size leaves too little heap to hand back for a collection's cost (about
#: 0.3 s in a process that has imported TensorFlow, a third of a small table's fit).
RELEASE_BYTES = 64 << 20


def nbytes(x) -> int | None:
    """The bytes of a split's inputs held in memory (an array, named arrays, a sparse matrix); None
    for what is not held (a stream)."""
    if x is None:
        return None
    parts = x.values() if isinstance(x, dict) else [x]
    sizes = [getattr(p, "nbytes", None) or getattr(getattr(p, "data", None), "nbytes", None) for p in parts]
    return None if any(size is None for size in sizes) else int(sum(sizes))


def release_training_memory(model, data_bytes: int | None = None) -> None:
    """Drop the traced training and validation functions and, after training on `data_bytes` of at
    least RELEASE_BYTES (None: unknown, a stream), hand the freed heap back to the OS."""

    model.train_function = model.test_function = None
    _STEPS.pop(model, None)
    if data_bytes is not None and data_bytes < RELEASE_BYTES:
        return
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
