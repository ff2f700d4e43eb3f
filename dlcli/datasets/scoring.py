"""The splits as the model sees them (`Examples`), and their scores in the target's own units.

Used by training (every split is scored once it ends) and by `dlcli evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlcli.config.config import Config
from dlcli.datasets import pipeline
from dlcli.io import data as data_mod
from dlcli.metrics.tallies import ClassTally, RegressionTally
from dlcli.preprocessing.base import Preprocessor
from dlcli.utils.errors import DataError


@dataclass
class Examples:
    """One split ready for the model: inputs plus targets (encoded and in original units)."""

    x: Any  # features array, or the whole series for time series
    y: np.ndarray | None  # encoded targets aligned with x's rows
    y_raw: np.ndarray | None  # original-unit targets, one per prediction
    naive: np.ndarray | None = None  # time series: the last observed value before each target
    when: Any = None  # time series: the time of each target (the time column, else the row index)
    starts: np.ndarray | None = None  # time series: each window's first row in x, one per prediction
    # who hears the rows scored (a streamed split's pass is long); one pass over memory is not reported
    progress: Any = field(default=None, repr=False)
    decoded: bool = False  # image files: x holds their pixels, read once (pipeline.decoded_in_memory)

    def loader(self, prep: Preprocessor):
        """What reads x's image files as batches stream (prep.loader()); None once they are read."""
        return None if self.decoded else prep.loader()

    def dataset(self, prep: Preprocessor, batch_size: int):
        if prep.windowed:  # windows cut by index as each batch is made, in order
            y = None if self.y is None else np.asarray(self.y)[self.starts + prep.target_offset]
            return pipeline.window_batches(self.x, self.starts, prep.window["length"], y, batch_size)
        return pipeline.array_dataset(self.x, self.y, batch_size, self.loader(prep))

    def score(self, prep: Preprocessor, config: Config, model, batch_size: int) -> tuple[dict, np.ndarray]:
        return score_in_memory(prep, config, model, self, batch_size)


def window_starts(n: int, length: int, offset: int, ids=None, targets=None):
    """The first row of every window of `length` rows of an n-row series whose row `offset` after
    its start (the target's, or its own last row) is in the series: with `ids`, the window and that
    row belong to one series; with `targets` (a mask), that row is one of them."""

    starts = np.arange(max(n - offset, 0), dtype="int64")
    keep = np.ones(len(starts), dtype=bool)
    if ids is not None:
        keep &= ids[starts] == ids[starts + offset]
    if targets is not None:
        keep &= targets[starts + offset]
    return starts[keep]


def _with_history(prep: Preprocessor, part, history):
    """`part` after the rows of `history` its first windows read (each series' own, with
    data.series_id), and a mask of the rows that are `part`'s."""

    column = prep.window.get("series_id")
    if history is None or not len(history):
        return part, np.ones(len(part), dtype=bool)
    if column is None:
        groups = [(history, part)]
    else:
        earlier = {key: rows for key, rows in history.groupby(column, sort=False)}
        groups = [
            (earlier.get(key, history.iloc[:0]), rows) for key, rows in part.groupby(column, sort=False)
        ]
    blocks, mask = [], []
    for before, rows in groups:
        before = before.tail(prep.context)
        blocks += [before, rows]
        mask += [np.zeros(len(before), dtype=bool), np.ones(len(rows), dtype=bool)]
    return pd.concat(blocks), np.concatenate(mask)


def examples(
    prep: Preprocessor,
    part: Any,
    history: pd.DataFrame | None = None,
    source: str = "",
    labelled: bool = True,
) -> Examples:
    if not prep.windowed:
        x = prep.features(part, source)
        if not labelled:
            return Examples(x, None, None)
        y_raw = prep.raw_target(part, source)
        return Examples(x, prep.encode_target(y_raw), y_raw)

    frame, own = _with_history(prep, part, history)
    series = prep.features(frame, source)
    length, horizon, column = prep.window["length"], prep.window["horizon"], prep.window.get("series_id")
    ids = None
    if column is not None:
        if column not in frame.columns:
            raise DataError(
                f"{source}: no column {column!r}, which names each row's series (data.series_id of the "
                "run): add it"
            )
        ids = frame[column].to_numpy()
    each = " in any one series" if column is not None else ""
    if not labelled:
        starts = window_starts(len(frame), length, length - 1, ids)
        if not len(starts):
            raise DataError(
                f"{source}: {len(frame)} rows{each} are too few for one window of length {length}"
            )
        return Examples(series, None, None, starts=starts)
    starts = window_starts(len(frame), length, prep.target_offset, ids, own)
    if not len(starts):
        raise DataError(
            f"{source}: {len(frame)} rows{each} are too few for windows of length {length} with "
            f"horizon {horizon} (expected at least {length + horizon} rows): shorten "
            "preprocessing.window.length or give this split a larger fraction"
        )
    y_all = prep.raw_target(frame, source)
    times = frame[prep.time_column] if prep.time_column in frame else frame.index
    targets = starts + prep.target_offset
    return Examples(
        series,
        prep.encode_target(y_all),
        y_all[targets],
        naive=y_all[targets - horizon],
        when=np.asarray(times)[targets],
        starts=starts,
    )


def split_examples(prep: Preprocessor, loaded: data_mod.Loaded) -> dict[str, Examples]:

    sets, seen = {}, []
    for name in data_mod.SPLITS:
        if name not in loaded.splits:
            continue
        part = loaded.splits[name]
        history = None
        if prep.windowed and seen:
            history = pd.concat(seen)  # earlier rows feed this split's first windows (of each series)
        source = f"{loaded.source} ({name} split)"
        sets[name] = examples(prep, prep.match_labels(part, source), history, source)
        if prep.windowed:
            seen.append(part)
    return sets


def training_arrays(prep: Preprocessor, ex: Examples):
    """Training inputs and targets: `(x, y, windows)`. For a time series x stays the whole series,
    y holds one target per window and `windows` is `(starts, length)`, the windows Keras'
    `timeseries_dataset_from_array` would cut (a target `horizon` rows after each window's end,
    windows `stride` rows apart), made by index as batches are gathered (pipeline.training_dataset):
    memory does not grow with the window's length. Else windows is None."""

    if not prep.windowed:
        return ex.x, ex.y, None
    length, stride, starts = prep.window["length"], prep.window["stride"], ex.starts
    if stride > 1:  # every stride-th window of each run of windows (each series)
        run = np.concatenate([[0], np.cumsum(np.diff(starts) != 1)])
        first = np.searchsorted(run, run)  # where each window's run begins
        starts = starts[(np.arange(len(starts)) - first) % stride == 0]
    return ex.x, np.asarray(ex.y)[starts + prep.target_offset], (starts, length)


def score(prep: Preprocessor, config: Config, model, ex: Examples) -> tuple[dict, np.ndarray]:
    """Metrics of one labelled split in the target's original units, and the predictions they score
    (for a streamed split, those of its first rows: streamed.PLOT_ROWS). The split scores itself:
    `Examples.score` in memory, `StreamSplit.score` streamed."""
    return ex.score(prep, config, model, max(config.train.batch_size, pipeline.FORWARD_BATCH))


def score_in_memory(prep: Preprocessor, config: Config, model, ex: Examples, batch_size: int):
    """score() for examples held in memory: one pass, decoded to the target's units."""
    ds = ex.dataset(prep, batch_size)
    if prep.outputs is not None:
        return _score_outputs(prep, config, model, ex, ds)
    tally = tally_for(prep, config.loss, config.metrics)
    if prep.task == "regression":
        predictions, _ = prep.decode(pipeline.forward(model, ds), ex.naive)
        tally.update_state(ex.y_raw, predictions, ex.naive)
        return tally.result(), predictions
    # the compiled loss and metrics from the same pass: not a second one as model.evaluate would make
    outputs, compiled = pipeline.forward(model, ds, compiled=True)
    predictions, probs = prep.decode(outputs)
    tally.update_state(ex.y_raw, predictions, probs)
    return tally.result(compiled), predictions


def tally_for(prep: Preprocessor, loss: str, metrics: list[str]) -> ClassTally | RegressionTally:
    """The tally that scores one target in its own units: classes, or numbers with the configured
    loss and metrics."""
    if prep.task == "regression":
        return RegressionTally(loss, list(metrics))
    return ClassTally(prep.target_encoder.classes_)


class OutputTallies:
    """Several targets: each output's tally, as one target's would be, fed from one pass over the
    data at once (in memory) or piece by piece (streamed)."""

    def __init__(self, prep: Preprocessor, config: Config):
        self.views = prep.outputs
        self.tallies = {o.name: tally_for(self.views[o.name], o.loss, o.metrics) for o in config.outputs}

    def update(self, outputs: dict, y_raw: dict) -> dict:
        """The model's outputs (by name) decoded and tallied against the targets; the predictions."""
        predictions = {}
        for name, tally in self.tallies.items():
            predictions[name], probs = self.views[name].decode(outputs[name])
            tally.update_state(y_raw[name], predictions[name], *([] if probs is None else [probs]))
        return predictions

    def result(self, compiled: dict, loss: float) -> dict:
        """The total loss, then each output's metrics under its name (Keras' `<output>_<metric>`
        compiled values given to its class tally)."""
        metrics = {"loss": loss}
        for name, tally in self.tallies.items():
            own = {k[len(name) + 1 :]: v for k, v in compiled.items() if k.startswith(f"{name}_")}
            metrics[name] = tally.result() if self.views[name].task == "regression" else tally.result(own)
        return metrics


def _score_outputs(prep: Preprocessor, config: Config, model, ex: Examples, ds):
    """Several targets: the total loss and each output's metrics from one pass; each output's
    predictions, by name."""
    outputs, compiled = pipeline.forward(model, ds, compiled=True)
    tallies = OutputTallies(prep, config)
    predictions = tallies.update(outputs, ex.y_raw)
    return tallies.result(compiled, compiled["loss"]), predictions
