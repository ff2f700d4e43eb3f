"""A streamed time series (preprocessing.window with data.stream): read unit by unit, its windows
made by index over each unit's rows and the rows before them that its first windows read, never
copied out, so memory stays bounded whatever the series' length.

Each series (data.series_id) is cut in time order by data.split's fractions, as in memory. A row's
split then depends on its series' length, so a streamed series takes three passes: a count (`plan`:
only the series id and time columns are read), the statistics pass over the train rows (which also
keeps each unit's history: the last rows of its series before it, as many as a window reads before
its target), then the epochs. A stream cannot be sorted: each series' rows must be together and in
time order in the files (as `ORDER BY id, time` writes them), which the count checks.

    >>> series = plan(config, stream, progress)           # before stats.fit(…, plan=series)
    >>> split = SeriesSplit(stream, layout, prep, hashsplit.TRAIN, "train", config, plan=series)
    >>> ds, epoch, steps = split.training(batch_size=64, seed=42, buffer=200_000)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tensorflow as tf

from dlcli.config.checks import streamed_series
from dlcli.datasets import pipeline
from dlcli.datasets.predictions import prediction_table
from dlcli.datasets.scoring import window_starts
from dlcli.datasets.streamed import StreamSplit, outputs, write_units
from dlcli.io import hashsplit
from dlcli.io.reading import row_where
from dlcli.preprocessing.stats import piece_name
from dlcli.utils.errors import ConfigError, DataError

if TYPE_CHECKING:
    from dlcli.config.config import Config
    from dlcli.io.streams import Stream


def refuse(config: Config, multi_worker: bool = False) -> None:
    """The series options a stream does not take (each needs the whole series at once), as
    `dlcli validate` says them for data.stream: true (checks.streamed_series)."""

    raw = config.model_dump()
    raw["data"]["stream"] = True
    if not multi_worker:
        raw["train"]["distribution"] = None
    for key, message in streamed_series(raw):
        raise ConfigError(f"{config.where(*key)}: {message}")


@dataclass
class SeriesPlan:
    """Where every row of a streamed series lies in its series, and so its split."""

    runs: list[list[tuple[Any, int, int]]]  # per unit: (series, its first row's position in it, rows)
    bounds: dict[Any, tuple[int, int]]  # series → (train rows, train + validation rows)
    offset: int  # rows from a window's first row to its target's
    stride: int  # steps between training windows
    history: dict[int, Any] = field(default_factory=dict)  # unit → its series' rows just before it
    _tail: Any = None

    def positions(self, i: int) -> np.ndarray:

        parts = [np.arange(pos, pos + n) for _, pos, n in self.runs[i]]
        return np.concatenate(parts) if parts else np.empty(0, "int64")

    def codes(self, i: int) -> np.ndarray:
        """The split of each row of unit i (hashsplit.TRAIN, VALIDATION, TEST)."""

        parts = []
        for key, pos, n in self.runs[i]:
            train, seen = self.bounds[key]
            p = np.arange(pos, pos + n)
            parts.append(
                np.where(p < train, hashsplit.TRAIN, np.where(p < seen, hashsplit.VALIDATION, hashsplit.TEST))
            )
        return np.concatenate(parts).astype("int8") if parts else np.empty(0, "int8")

    def targets(self, i: int, code: int, strided: bool = False) -> np.ndarray:
        """Which rows of unit i are the target of one of the split's windows: a row of the split with
        a whole window before it in its series (`strided`, training: every `stride`-th)."""
        p = self.positions(i)
        mask = (self.codes(i) == code) & (p >= self.offset)
        if strided and self.stride > 1:
            mask &= (p - self.offset) % self.stride == 0
        return mask

    def windows(self, code: int, strided: bool = False) -> list[int]:
        """The split's windows in each unit."""
        return [int(self.targets(i, code, strided).sum()) for i in range(len(self.runs))]

    def keep(self, i: int, frame) -> None:
        """Called by the statistics pass with each unit in file order: unit i's history is the tail
        of the series it continues; then the tail moves on to the end of unit i."""

        runs = self.runs[i]
        if not runs:
            return
        if runs[0][1] > 0 and self._tail is not None:
            self.history[i] = self._tail
        key, pos, n = runs[-1]
        rows = frame.iloc[len(frame) - n :]
        if n < self.offset and pos > 0 and self._tail is not None:  # a short run: the tail goes on
            rows = pd.concat([self._tail, rows])
        self._tail = rows.iloc[-self.offset :].copy() if self.offset else rows.iloc[:0]


def plan(config: Config, stream: Stream, progress=None) -> SeriesPlan:
    """The count: every unit's runs of series rows, each series' length and its split's bounds,
    checking that each series' rows are together and in time order."""

    data, window = config.data, config.preprocessing.window
    column, time = data.series_id, data.time_column
    for name, what in ((column, "data.series_id"), (time, "data.time_column")):
        if name is not None and name not in stream.columns:
            raise DataError(
                f"{stream.paths[0]}: no column {name!r} ({what}); the columns are {stream.columns}"
            )
    stream.wanted = [c for c in (column, time) if c is not None] or stream.columns[:1]
    runs: list[list[tuple[Any, int, int]]] = []
    sizes: dict[Any, int] = {}
    met, last_time, done = _Runs(column, time), None, 0
    if progress is not None:
        progress("series count", 0, 0.0)
    try:
        for i, frame in stream.frames():
            where = str(stream.units[i].path)  # read in file order: the lines are the file's own
            ids = (
                frame[column]
                if column is not None
                else pd.Series(np.zeros(len(frame), "int8"), index=frame.index)
            )
            if column is not None and ids.isna().any():
                raise DataError(
                    f"{where}: series id {column!r} {row_where(where, ids.index[ids.isna().argmax()])} is "
                    "empty; every row of a series needs its series' id: fill it in or drop the row"
                )
            values = ids.to_numpy()
            cuts = np.flatnonzero(values[1:] != values[:-1]) + 1 if len(values) else np.empty(0, "int64")
            bounds = [0, *cuts.tolist(), len(values)]
            unit = []
            for a, b in zip(bounds, bounds[1:], strict=False):
                if b <= a:
                    continue
                key = values[a].item() if hasattr(values[a], "item") else values[a]
                if met.check(key, where, ids.index[a]):
                    last_time, sizes[key] = None, 0
                if time is not None:
                    last_time = _in_time_order(frame[time].iloc[a:b], last_time, where, time)
                unit.append((key, sizes[key], b - a))
                sizes[key] += b - a
            runs.append(unit)
            done += len(frame)
            if progress is not None:
                progress("series count", done, (i + 1) / len(stream.units))
    finally:
        stream.wanted = None
    split = data.split
    bounds_of = {}
    for key, n in sizes.items():  # as data._split_index cuts a series in memory
        n_test, n_val = round(n * split.test_fraction), round(n * split.validation)
        bounds_of[key] = (n - n_test - n_val, n - n_test)
    return SeriesPlan(runs, bounds_of, window.length - 1 + window.horizon, window.stride)


def _in_time_order(times, last, where: str, column: str):
    """The run's last time, after checking its times never go back (from `last`, the series' time
    before the run)."""

    values = (
        times if pd.api.types.is_numeric_dtype(times) else pd.to_datetime(times, errors="coerce")
    ).to_numpy()
    before = values[:-1] if last is None else np.concatenate([[last], values[:-1]])
    back = np.flatnonzero(values[(1 if last is None else 0) :] < before)
    if len(back):
        line = times.index[back[0] + (1 if last is None else 0)]
        raise DataError(
            f"{where}: time {column!r} goes back {row_where(where, line)} ({times.loc[line]}); a streamed "
            f"series is read in file order, so each series' rows must be in time order: sort the file by "
            f"{column}, or set data.stream: false"
        )
    return values[-1] if len(values) else last


@dataclass
class SeriesSplit(StreamSplit):
    """One split of a streamed series: its windows, those whose target is a row of the split."""

    plan: SeriesPlan | None = field(default=None, repr=False)
    _windows: list[int] | None = field(default=None, repr=False)
    _strided: list[int] | None = field(default=None, repr=False)  # training's (window.stride)

    @property
    def rows(self) -> int:
        """The split's windows (one example each)."""
        if self._windows is None:
            self._windows = self.plan.windows(self.code)
        return sum(self._windows)

    def keep_while_training(self, other: StreamSplit) -> None:
        """Nothing kept: a validation window reads the rows before its unit (its history), so the
        validation units are read again each epoch (they are the last share of each series)."""

    def _arrays(self, i: int, frame, first_global: int | None = None, strided: bool = False):
        """Unit i's windows of this split: `(x, y, y_raw, starts, naive, when)`, x the unit's rows
        after its history (the series' rows before it), `starts` each window's first row in x."""

        where = piece_name(self.stream, i)
        history = self.plan.history.get(i)
        rows = frame if history is None else pd.concat([history, frame])
        mask = np.zeros(len(rows), dtype=bool)
        mask[len(rows) - len(frame) :] = self.plan.targets(i, self.code, strided)
        targets = np.flatnonzero(mask)
        starts = targets - self.plan.offset
        x = self.prep.features(rows, where)
        y_raw = self.prep.raw_target(rows, where)
        horizon = self.prep.window["horizon"]
        time = self.prep.time_column
        when = rows[time].to_numpy()[targets] if time in rows.columns else np.asarray(rows.index)[targets]
        return (
            x,
            self.prep.encode_target(y_raw[targets]),
            y_raw[targets],
            starts,
            y_raw[targets - horizon],
            when,
        )

    def chunks(self, order=None, strided: bool = False):
        """Each unit's windows of this split, `(x, y, y_raw, starts, naive, when)`, in `order`
        (default: file order), made in the reading threads; `strided` (training): every
        preprocessing.window.stride-th. Without a layout (evaluate: no statistics pass), every unit
        is read in file order, its history kept as it goes."""
        self.rows  # noqa: B018 - the windows per unit, counted once
        if self.layout is None:
            yield from self._in_file_order()
            return
        counts = self._strided_windows() if strided else self._windows
        units = [i for i in self._units(order) if counts[i]]
        done, total = 0, max(sum(counts), 1)
        if self.progress is not None:
            self.progress(self.name, 0, 0.0)
        then = lambda i, frame: self._arrays(i, frame, strided=strided)  # noqa: E731
        for _, arrays in self.stream.frames(units, self.layout.offsets, then=then):
            done += len(arrays[1])
            if self.progress is not None:
                self.progress(self.name, done, done / total)
            yield arrays

    def _strided_windows(self) -> list[int]:
        if self._strided is None:
            self._strided = self.plan.windows(self.code, strided=True)
        return self._strided

    def _in_file_order(self):
        done, total = 0, max(self.rows, 1)
        if self.progress is not None:
            self.progress(self.name, 0, 0.0)
        for i, frame in self.stream.frames():
            self.plan.keep(i, frame)
            if self._windows[i]:
                arrays = self._arrays(i, frame)
                done += len(arrays[1])
                if self.progress is not None:
                    self.progress(self.name, done, done / total)
                yield arrays
            self.plan.history.pop(i, None)  # each unit's history is needed once

    def take(self, piece, a: int, b: int):
        """Windows a … b-1 of a chunk, cut by index."""

        x, starts = piece[0], piece[3][a:b]
        return x[starts[:, None] + np.arange(self.prep.window["length"])[None, :]]

    def _cut(self, batch_size: int):
        """A function turning `(rows, starts, y[, w])` into batches of windows, each cut by index."""
        offsets = tf.range(self.prep.window["length"], dtype=tf.int64)

        def cut(x, starts, *rest):
            n = tf.shape(starts, out_type=tf.int64)[0]

            def take(k):
                a, b = k * batch_size, (k + 1) * batch_size
                windows = tf.gather(x, starts[a:b][:, None] + offsets[None, :])
                return (windows, *(part[a:b] for part in rest))

            return tf.data.Dataset.range((n + batch_size - 1) // batch_size).map(take)

        return cut

    def _spec(self, weighted: bool = False):
        x, y, *w = self._signature(weighted)
        return (x, tf.TensorSpec((None,), tf.int64), y, *w)

    def dataset(self, prep, batch_size: int):
        """Batches of windows in file order (validation), each unit's as it is read."""
        self.rows  # noqa: B018 - the windows per unit, counted once
        steps = sum(-(-n // batch_size) for n in self._windows)

        def units():
            for x, y, _, starts, _, _ in self.chunks():
                yield x, starts, y

        ds = tf.data.Dataset.from_generator(units, output_signature=self._spec()).flat_map(
            self._cut(batch_size)
        )
        return pipeline.lean(ds.take(steps).apply(tf.data.experimental.assert_cardinality(steps)))

    def training(self, batch_size: int, seed: int, buffer: int, class_weights: list[float] | None = None):
        """Shuffled batches of windows for one epoch, the variable that names the epoch, and the
        steps per epoch. Units come in an order drawn from (seed, epoch); windows are shuffled within
        a pool of `buffer` rows by the same generator, so `--resume` sees the same batches."""
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        weights = None if class_weights is None else np.asarray(class_weights, dtype="float32")
        length = self.prep.window["length"]

        def pools():
            rng = np.random.default_rng([seed, int(epoch.numpy())])
            order = rng.permutation(len(self.stream.units))
            pool: list = []
            for x, y, _, starts, _, _ in self.chunks(order, strided=True):
                pool.append((x, starts, y))
                if sum(len(p[0]) for p in pool) >= buffer:
                    drawn = _drawn(pool, rng, batch_size, length, final=False)
                    if drawn is not None:
                        yield self._weighted(drawn, weights)
            drawn = _drawn(pool, rng, batch_size, length, final=True)
            if drawn is not None:
                yield self._weighted(drawn, weights)

        steps = -(-sum(self._strided_windows()) // batch_size)
        spec = self._spec(weighted=weights is not None)
        ds = tf.data.Dataset.from_generator(pools, output_signature=spec).flat_map(self._cut(batch_size))
        return (
            pipeline.lean(ds.take(steps).apply(tf.data.experimental.assert_cardinality(steps))),
            epoch,
            steps,
        )

    def _weighted(self, drawn: tuple, weights):
        if weights is None:
            return drawn
        return (*drawn, weights[self.prep._codes(drawn[2])])


def _drawn(pool: list, rng, batch_size: int, length: int, final: bool):
    """The pool's windows shuffled, as `(rows, starts, y)` of whole batches; unless `final`, the
    windows short of a whole batch stay in the pool, copied out (fewer than a batch of them)."""

    if not pool:
        return None
    bases = np.cumsum([0, *(len(p[0]) for p in pool[:-1])])
    x = np.concatenate([p[0] for p in pool])
    starts = np.concatenate([p[1] + base for p, base in zip(pool, bases, strict=True)])
    y = np.concatenate([p[2] for p in pool])
    order = rng.permutation(len(starts))
    end = len(starts) if final else len(starts) - len(starts) % batch_size
    pool.clear()
    if end < len(starts):
        rest = starts[order[end:]]
        kept = x[rest[:, None] + np.arange(length)[None, :]].reshape(-1, x.shape[1])
        pool.append((kept, np.arange(len(rest), dtype="int64") * length, y[order[end:]]))
    if not end:
        return None
    return x, starts[order[:end]], y[order[:end]]


def predict(prep, model, stream: Stream, out, batch_size: int, progress=None):
    """Forecasts for a streamed series, written unit by unit in file order (streamed.predict's
    contract): each row that ends a window of its own series gets the forecast from that window,
    the rows before a series' first whole window an empty one. Each series' rows must be together."""

    length, column = prep.window["length"], prep.window.get("series_id")
    met, carried = _Runs(column), {"tail": None}  # the rows a window ending in the next unit reads

    def table_of(i: int, frame):
        where = str(stream.units[i].path)
        if column is not None and column not in frame.columns:
            raise DataError(
                f"{where}: no column {column!r}, which names each row's series (data.series_id of the "
                "run): add it"
            )
        ids = frame[column].to_numpy() if column is not None else None
        met.each(ids, frame, where)
        tail = carried["tail"]
        goes_on = tail is not None and (ids is None or (len(ids) and ids[0] == tail[column].iloc[-1]))
        both = pd.concat([tail, frame]) if goes_on else frame
        carried["tail"] = both.iloc[len(both) - length + 1 :]
        h = len(both) - len(frame)
        starts = window_starts(
            len(both), length, length - 1, None if ids is None else both[column].to_numpy()
        )
        starts = starts[starts + length - 1 >= h]  # the windows that end on this unit's rows
        predictions, probs = np.empty(0), None
        if len(starts):
            windows = _cutter(prep.features(both, where), starts, length)
            predictions, probs = prep.decode(outputs(model, len(starts), windows, batch_size))
        ends = starts + length - 1 - h
        return prediction_table(frame, predictions, probs, prep.target_encoder.classes_, rows=ends)

    return write_units(stream, out, table_of, progress)


def _cutter(x, starts, length: int):
    """`(a, b) → windows a … b-1`, each `length` rows of x from its start."""

    offsets = np.arange(length)[None, :]
    return lambda a, b: x[starts[a:b, None] + offsets]


class _Runs:
    """The series met so far in file order: one that comes back after another's rows is refused."""

    def __init__(self, column: str | None, time: str | None = None):
        self.column, self.time, self.seen, self.last = column, time, set(), object()

    def check(self, key, where: str, line) -> bool:
        """Whether `key` starts a series here (else it goes on from the row before)."""
        if key == self.last:
            return False
        if key in self.seen:
            order = f"{self.column} and {self.time}" if self.time else self.column
            raise DataError(
                f"{where}: series {key!r} (data.series_id {self.column!r}) comes back "
                f"{row_where(where, line)} after other series' rows; a streamed series is read in file "
                "order, so each series' rows "
                f"must be together: sort the file by {order}, or set data.stream: false"
            )
        self.seen.add(key)
        self.last = key
        return True

    def each(self, ids, frame, where: str) -> None:

        if ids is None or not len(ids):
            return
        for a in [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()]:
            self.check(ids[a].item() if hasattr(ids[a], "item") else ids[a], where, frame.index[a])
