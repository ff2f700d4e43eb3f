"""A split of a streamed table as the model sees it: tf.data batches made from the stream's units as
they are read, scores accumulated as predictions stream past, predictions written as they come.

Training order is a function of (seed, epoch), as for data in memory: every epoch draws the order
of the units from `default_rng([seed, epoch])`, reads them in that order (two threads read and
transform ahead), and shuffles rows within a buffer of `data.shuffle_buffer` rows with the same
generator. So a run resumed at epoch k sees exactly the batches the uninterrupted run saw.

    >>> split = StreamSplit(stream, layout, prep, hashsplit.TRAIN, "train", config)
    >>> ds, epoch = split.training(batch_size=64, seed=42, buffer=200_000)
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import tensorflow as tf

from dlcli.datasets import pipeline
from dlcli.datasets.predictions import decode_outputs, outputs_table, prediction_table
from dlcli.datasets.scoring import OutputTallies, tally_for
from dlcli.io import hashsplit, shards
from dlcli.preprocessing.stats import piece_name
from dlcli.utils import files, formats

if TYPE_CHECKING:
    from dlcli.config.config import Config
    from dlcli.io.shards import Shard
    from dlcli.io.streams import Stream
    from dlcli.preprocessing.base import Preprocessor
    from dlcli.preprocessing.stats import Layout

#: Rows of the shown split whose predictions are kept for the plots (the metrics use every row).
PLOT_ROWS = 20_000


@dataclass
class StreamSplit:
    """One split (hashsplit.TRAIN, VALIDATION or TEST) of a streamed table."""

    stream: Stream
    layout: Layout
    prep: Preprocessor
    code: int
    name: str
    config: Config
    y_raw: Any = None  # after scoring: the targets of the first PLOT_ROWS rows (for the plots)
    naive: Any = None
    when: Any = None
    progress: Any = field(default=None, repr=False)
    cache: UnitCache | None = field(default=None, repr=False)  # this split's rows, kept by another pass
    feeds: StreamSplit | None = field(default=None, repr=False)  # the split whose rows this pass keeps
    shard: Shard | None = field(default=None, repr=False)  # multi_worker: the units this worker reads

    def score(self, prep: Preprocessor, config: Config, model, batch_size: int):
        """scoring.score() for this split, streamed (module function `score`)."""
        return score(prep, config, model, self, batch_size)

    @property
    def rows(self) -> int:
        """The split's rows (all workers')."""
        return self.layout.total(self.code) if self.layout is not None else 0

    def _rows_of(self, worker: int | None = None) -> int:
        """The rows this worker (or `worker`) reads of the split."""
        if self.shard is None:
            return self.rows
        worker = self.shard.worker if worker is None else worker
        owner = self.shard.owner
        return sum(r[self.code] for i, r in enumerate(self.layout.split_rows) if owner[i] == worker)

    def _units(self, order=None) -> list[int]:
        order = range(len(self.stream.units)) if order is None else order
        owns = self.shard.owns if self.shard is not None else lambda i: True
        return [int(i) for i in order if self.layout.split_rows[i][self.code] and owns(int(i))]

    def _batch(self, batch_size: int) -> int:
        """This worker's share of a global batch (each worker is one replica)."""
        return batch_size if self.shard is None else max(1, batch_size // self.shard.workers)

    def _distributed(self, make):
        """`make()`'s dataset; sharded, as the strategy's dataset of per-worker datasets (no
        auto-sharding: each worker's already holds only its own rows)."""
        if self.shard is None:
            return make()
        return self.shard.strategy.distribute_datasets_from_function(lambda context: make())

    def _arrays(self, i: int, frame, first_global: int | None = None):
        """One unit's rows of this split: `(x, y, y_raw)`. `first_global`: the unit's first row's
        position among all rows (default: the layout's)."""
        split, where = self.config.data.split, piece_name(self.stream, i)
        codes = hashsplit.codes(
            frame,
            split.validation,
            split.test_fraction,
            split.key,
            self.layout.first_global[i] if first_global is None else first_global,
            split.column,
            where,
        )
        other = self.feeds
        if other is not None and other.cache is not None and i not in other.cache:
            other.cache.put(i, *other._transform(frame[codes == other.code], where)[:2])
        return self._transform(frame[codes == self.code], where)

    def _transform(self, part, where: str):
        part = self.prep.match_labels(part, where)
        x = self.prep.features(part, where)
        y_raw = self.prep.raw_target(part, where)
        return x, self.prep.encode_target(y_raw), y_raw

    def keep_while_training(self, other: StreamSplit) -> None:
        """Keep `other`'s rows (validation) on disk as this split's pass (training) reads each unit:
        the epochs then read the data once, not twice. Replayed in file order, as read directly.
        Several targets: not kept (the cache holds one target array per unit); read each epoch."""
        if self.prep.outputs is None:
            other.cache, self.feeds = UnitCache(), other

    def chunks(self, order=None):
        """`(x, y, y_raw)` of each unit holding rows of this split, in `order` (default: file order),
        transformed in the reading threads. Without a layout (evaluate: no statistics pass), every
        unit is read in file order and transformed as it arrives."""
        if self.layout is None:
            yield from self._in_file_order()
            return
        units, done, total = self._units(order), 0, max(self._rows_of(), 1)
        if self.progress is not None:
            self.progress(self.name, 0, 0.0)
        for _, arrays in self.stream.frames(units, self.layout.offsets, then=self._arrays):
            done += len(arrays[0])
            if self.progress is not None:
                self.progress(self.name, done, done / total)
            yield arrays

    def _in_file_order(self):
        first, units = 0, len(self.stream.units)
        if self.progress is not None:
            self.progress(self.name, 0, 0.0)
        for k, (i, frame) in enumerate(self.stream.frames()):
            arrays = self._arrays(i, frame, first)
            first += len(frame)
            if self.progress is not None:
                self.progress(self.name, first, (k + 1) / units)
            if len(arrays[0]):
                yield arrays

    def take(self, piece, a: int, b: int):
        """Examples a … b-1 of a chunk's x."""
        return piece[0][a:b]

    def _signature(self, weighted: bool = False):
        width, views = self.prep.feature_width, self.prep.outputs
        y = _target_spec(self.prep) if views is None else {n: _target_spec(v) for n, v in views.items()}
        parts = (tf.TensorSpec((None, width), tf.float32), y)
        return (*parts, tf.TensorSpec((None,), tf.float32)) if weighted else parts

    def dataset(self, prep: Preprocessor, batch_size: int):
        """Batches in file order (validation): each unit's rows as they are read. Sharded: every
        worker takes as many batches as the worker with the fewest fills."""
        batch = self._batch(batch_size)

        def batches():
            for x, y in self._replayed():
                for s in range(0, len(x), batch):
                    yield x[s : s + batch], _each(lambda a, s=s: a[s : s + batch], y)

        def steps_of(worker=None):
            mine = self._units() if worker is None else self._units_of(worker)
            return sum(-(-self.layout.split_rows[i][self.code] // batch) for i in mine)

        steps = steps_of()
        if self.shard is not None:
            steps = min(steps_of(w) for w in range(self.shard.workers))

        def make():
            ds = tf.data.Dataset.from_generator(batches, output_signature=self._signature()).take(steps)
            return pipeline.lean(ds.apply(tf.data.experimental.assert_cardinality(steps)))

        return self._distributed(make)

    def _units_of(self, worker: int) -> list[int]:
        owner = self.shard.owner
        return [i for i, r in enumerate(self.layout.split_rows) if r[self.code] and owner[i] == worker]

    def _replayed(self):
        """`(x, y)` per unit in file order: from the cache the training pass filled, else read."""
        if self.cache is None:
            yield from ((x, y) for x, y, _ in self.chunks())
            return
        for i in self._units():
            if i in self.cache:
                yield self.cache.get(i, self.prep.feature_width, self._signature()[1].shape[1:])
            else:  # a unit the training pass has not read (no train rows in it)
                for _, (x, y, _) in self.stream.frames([i], self.layout.offsets, then=self._arrays):
                    yield x, y

    def training(self, batch_size: int, seed: int, buffer: int, class_weights: list[float] | None = None):
        """Shuffled batches of one epoch, the variable that names the epoch, and the steps per epoch.
        `class_weights`: one per class (train.class_weight), sent as sample weights."""
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        weights = None if class_weights is None else np.asarray(class_weights, dtype="float32")
        global_batch, batch_size = batch_size, self._batch(batch_size)

        def pools():  # shuffled runs of whole batches (the epoch's last may end short)
            rng = np.random.default_rng([seed, int(epoch.numpy())])
            order = rng.permutation(len(self.stream.units))
            pool: list = []
            for x, y, _ in self.chunks(order):
                pool.append((x, y))
                if sum(len(p[0]) for p in pool) >= buffer:
                    yield from _batched(
                        _shuffled(pool, rng, batch_size, weights, self.prep, False), batch_size
                    )
            yield from _batched(_shuffled(pool, rng, batch_size, weights, self.prep, True), batch_size)

        # each item a stack of batches: (batches, rows, ...) of every part
        signature = tf.nest.map_structure(
            lambda spec: tf.TensorSpec((None, *spec.shape), spec.dtype),
            self._signature(weighted=weights is not None),
        )
        steps = -(-self.rows // global_batch)
        if self.shard is not None:
            steps = shards.epoch_steps([self._rows_of(w) for w in range(self.shard.workers)], batch_size)

        def make():
            ds = tf.data.Dataset.from_generator(pools, output_signature=signature)
            # a stack's batches sliced off by tf.data: a Python yield per batch would cost more than the
            # step, and slicing rows one by one to batch them again cost as much as the training itself
            ds = ds.flat_map(lambda *stack: tf.data.Dataset.from_tensor_slices(stack))
            return pipeline.lean(ds.take(steps).apply(tf.data.experimental.assert_cardinality(steps)))

        return self._distributed(make), epoch, steps


def _target_spec(prep: Preprocessor):
    """One target's batch as the model learns it (encode_target)."""
    if prep.task == "regression":
        return tf.TensorSpec((None,), tf.float32)
    if prep.label_mode == "one_hot":
        return tf.TensorSpec((None, prep.n_classes), tf.float32)
    if prep.label_mode == "binary":
        return tf.TensorSpec((None, 1), tf.float32)
    return tf.TensorSpec((None,), tf.int32)


def _each(fn, y):
    """`fn` of the targets: one array, or with several targets each output's (a dict by name)."""
    return {name: fn(a) for name, a in y.items()} if isinstance(y, dict) else fn(y)


def _batched(parts: tuple, batch_size: int):
    """`parts` (x, y[, w]) as stacks of batches, `(batches, rows, ...)` each: its whole batches as one
    stack (a view, no copy), then the rows left over as a stack of one short batch."""
    rows = len(parts[0])
    whole = rows - rows % batch_size
    if whole:
        yield tuple(_each(lambda a: a[:whole].reshape(-1, batch_size, *a.shape[1:]), p) for p in parts)
    if whole < rows:
        yield tuple(_each(lambda a: a[whole:][None], p) for p in parts)


def _shuffled(pool: list, rng, batch_size: int, weights, prep, final: bool):
    """The pool's rows shuffled, as one run of whole batches; unless `final`, the rows short of a
    whole batch stay in the pool (so every batch but an epoch's last is full)."""

    x = np.concatenate([p[0] for p in pool])
    ys = [p[1] for p in pool]
    y = (
        {n: np.concatenate([t[n] for t in ys]) for n in ys[0]}
        if isinstance(ys[0], dict)
        else np.concatenate(ys)
    )
    order = rng.permutation(len(x))
    end = len(x) if final else len(x) - len(x) % batch_size
    pool.clear()
    if end < len(x):
        rest = order[end:]
        pool.append((x[rest], _each(lambda a: a[rest], y)))
    idx = order[:end]
    if weights is None:
        return x[idx], _each(lambda a: a[idx], y)
    return x[idx], y[idx], weights[prep._codes(y[idx])]


def score(prep: Preprocessor, config: Config, model, split: StreamSplit, batch_size: int):
    """Metrics of a streamed split in the target's own units, as scoring.score gives for one in
    memory, and the predictions of its first PLOT_ROWS rows (their targets left in split.y_raw)."""
    if prep.outputs is not None:
        return _score_outputs(prep, config, model, split, batch_size)
    classify = prep.task == "classification"
    step = pipeline.traced_step(model, compiled=classify)
    tally = tally_for(prep, config.loss, config.metrics)
    if classify:
        model.reset_metrics()
    loss_sum, rows, kept_true, kept_pred, kept_when = 0.0, 0, [], [], []
    for piece in split.chunks():
        y, y_raw = piece[1], piece[2]
        outputs = []
        for s in range(0, len(y), batch_size):
            bx = tf.constant(split.take(piece, s, s + batch_size))
            if classify:
                out, loss = step(bx, tf.constant(y[s : s + batch_size]))
                loss_sum += float(loss) * len(bx)
            else:
                out = step(bx)
            outputs.append(out.numpy())
        predictions, probs = prep.decode(np.concatenate(outputs))
        if classify:
            tally.update_state(y_raw, predictions, probs)
        else:  # a series: the naive forecast
            tally.update_state(y_raw, predictions, piece[4] if len(piece) > 3 else None)
        rows += len(y)
        if sum(len(k) for k in kept_true) < PLOT_ROWS:
            kept_true.append(y_raw)
            kept_pred.append(predictions)
            if len(piece) > 3:  # a series: the time of each target, for the forecast plot
                kept_when.append(piece[5])
    split.y_raw = np.concatenate(kept_true)[:PLOT_ROWS] if kept_true else np.empty(0)
    if kept_when:
        split.when = np.concatenate(kept_when)[:PLOT_ROWS]
    predicted = np.concatenate(kept_pred)[:PLOT_ROWS] if kept_pred else np.empty(0)
    if split.shard is not None:  # every worker's rows: the tallies and metric states added up
        keras_metrics = model.metrics if classify else tally.keras_metrics()  # where Keras keeps them
        loss_sum, rows = _add_up(split.shard, tally, keras_metrics, loss_sum, rows)
    if not classify:
        return tally.result(), predicted
    compiled = {k: float(v) for k, v in model.get_metrics_result().items()}
    compiled["loss"] = loss_sum / max(rows, 1)
    return tally.result(compiled), predicted


def _score_outputs(prep: Preprocessor, config: Config, model, split: StreamSplit, batch_size: int):
    """Several targets: the total loss, then each output's metrics as one target's would be (under its
    output's name), as scoring gives for a split in memory; chunk by chunk. Predictions and targets of
    the first PLOT_ROWS rows are kept by output name."""
    step = pipeline.traced_step(model, compiled=True)
    model.reset_metrics()
    scored = OutputTallies(prep, config)
    loss_sum, rows = 0.0, 0
    kept_true, kept_pred = ({name: [] for name in scored.tallies} for _ in range(2))
    for x, y, y_raw in split.chunks():
        parts = []
        for s in range(0, len(x), batch_size):
            targets = {name: tf.constant(a[s : s + batch_size]) for name, a in y.items()}
            out, loss = step(tf.constant(x[s : s + batch_size]), targets)
            loss_sum += float(loss) * min(batch_size, len(x) - s)
            parts.append({name: value.numpy() for name, value in out.items()})
        predictions = scored.update({n: np.concatenate([p[n] for p in parts]) for n in scored.tallies}, y_raw)
        if rows < PLOT_ROWS:
            for name in scored.tallies:
                kept_true[name].append(y_raw[name])
                kept_pred[name].append(predictions[name])
        rows += len(x)
    split.y_raw = {name: np.concatenate(v)[:PLOT_ROWS] for name, v in kept_true.items() if v}
    predicted = {name: np.concatenate(v)[:PLOT_ROWS] for name, v in kept_pred.items() if v}
    if split.shard is not None:  # every worker's rows: each output's tally, the metric states, the loss
        first, *others = scored.tallies.values()
        for tally in others:
            tally.merge(split.shard.exchange_arrays(*tally.state()))
        loss_sum, rows = _add_up(split.shard, first, model.metrics, loss_sum, rows)
    compiled = {k: float(v) for k, v in model.get_metrics_result().items()}
    return scored.result(compiled, loss_sum / max(rows, 1)), predicted


def _add_up(shard: Shard, tally, keras_metrics: list, loss_sum: float, rows: int) -> tuple[float, int]:
    """`tally`, the Keras metric states and the loss sum over every worker's rows (each worker
    scored its own units); returns the loss sum and the rows of all."""
    numbers, arrays = tally.state()
    everyone = shard.exchange_arrays({**numbers, "loss": loss_sum, "scored": rows}, arrays)
    tally.merge(everyone)
    shards.sum_metric_states(shard, keras_metrics)
    return sum(m["loss"] for m, _ in everyone), sum(m["scored"] for m, _ in everyone)


def predict(prep: Preprocessor, model, stream: Stream, out: Path, batch_size: int, progress=None):
    """Predictions for every row of `stream`, written to `out` (CSV or Parquet) unit by unit, in
    file order; returns the first unit's table (its attrs["rows"]: rows written in all)."""

    def table_of(i: int, frame):
        x = prep.features(frame, str(stream.paths[0]))
        out = outputs(model, len(x), lambda a, b: x[a:b], batch_size)
        if prep.outputs is not None:  # prediction_<target> and probability_<target>_<class>
            return outputs_table(frame, decode_outputs(prep, out))
        predictions, probs = prep.decode(out)
        return prediction_table(frame, predictions, probs, prep.target_encoder.classes_)

    return write_units(stream, out, table_of, progress)


def write_units(stream: Stream, out: Path, table_of, progress=None):
    """`table_of(i, frame)` of every unit of `stream`, in file order, written to `out` (CSV or
    Parquet) as it comes; returns the first unit's table (its attrs["rows"]: rows written in all)."""
    writer, head, rows = _Writer(out), None, 0
    if progress is not None:
        progress("predict", 0, 0.0)
    try:
        for i, frame in stream.frames():
            table = table_of(i, frame)
            writer.write(table)
            rows += len(table)
            head = table if head is None else head
            if progress is not None:
                progress("predict", rows, writer.fraction(stream))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    head.attrs["rows"] = rows
    return head


def outputs(model, n: int, batch, batch_size: int):
    """The model's outputs for examples 0 … n-1, `batch(a, b)` giving examples a … b-1: one call of
    the traced step per batch. No tf.data dataset per unit: making one for each of a 16 GB file's
    2,000 units grew predict's resident memory steadily (by 400 MB over half the file)."""
    step = pipeline.traced_step(model, compiled=False)
    parts = [step(tf.constant(batch(a, a + batch_size))) for a in range(0, n, batch_size)]
    if parts and isinstance(parts[0], dict):  # several targets: by output name
        return {name: np.concatenate([p[name].numpy() for p in parts]) for name in parts[0]}
    return np.concatenate([p.numpy() for p in parts]) if parts else np.empty((0, 1), "float32")


class UnitCache:
    """Transformed rows of some units in an unnamed temporary file (gone when the process ends):
    written by the reading threads, read back with pread. Plain file I/O, not a memory map, so the
    rows sit in the page cache, which the process' resident memory does not count."""

    def __init__(self):

        self.file = tempfile.TemporaryFile(prefix="dlcli-rows-")  # noqa: SIM115 - lives with the split
        self.where: dict[int, tuple[int, int, int, str]] = {}  # unit → start, rows, x bytes, y dtype
        self.lock, self.end = threading.Lock(), 0

    def __contains__(self, unit: int) -> bool:
        return unit in self.where

    def put(self, unit: int, x, y) -> None:

        x, y = np.ascontiguousarray(x, dtype="float32"), np.ascontiguousarray(y)
        with self.lock:
            if unit in self.where:
                return
            start = self.end
            self.file.seek(start)
            self.file.write(x.tobytes())
            self.file.write(y.tobytes())
            self.end = self.file.tell()
            self.file.flush()  # pread reads the file, not this buffer
            self.where[unit] = (start, len(x), x.nbytes, str(y.dtype))

    def get(self, unit: int, width: int, y_shape) -> tuple:

        start, rows, x_bytes, y_dtype = self.where[unit]
        y_width = int(np.prod([d for d in y_shape if d is not None])) if len(y_shape) else 1
        y_bytes = rows * y_width * np.dtype(y_dtype).itemsize
        raw = os.pread(self.file.fileno(), x_bytes + y_bytes, start)
        x = np.frombuffer(raw, "float32", rows * width).reshape(rows, width)
        y = np.frombuffer(raw, y_dtype, rows * y_width, offset=x_bytes)
        return x, (y.reshape(rows, *[d for d in y_shape]) if len(y_shape) else y)


class _Writer:
    """CSV or Parquet written chunk by chunk to a temporary file beside `path`, renamed at the end."""

    def __init__(self, path: Path):
        self.path, self.temp = path, path.with_name(f".{path.name}.partial")
        self.parquet, self.handle, self.done = path.suffix.lower() in formats.PARQUET, None, 0

    def write(self, table) -> None:

        if self.parquet:
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(table, preserve_index=False)
            if self.handle is None:
                self.handle = pq.ParquetWriter(self.temp, arrow.schema)
            self.handle.write_table(arrow.cast(self.handle.schema))
        else:
            first = self.handle is None
            if first:
                self.handle = open(self.temp, "w", encoding="utf-8", newline="")  # noqa: SIM115
            table.to_csv(self.handle, index=False, header=first)
        self.done += 1

    def fraction(self, stream: Stream) -> float:
        return self.done / max(len(stream.units), 1)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        files.commit(self.temp, self.path)

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.temp.unlink(missing_ok=True)
