"""The splits as the model sees them (`Examples`), and their scores in the target's own units.

Used by training (every split is scored once it ends) and by `dlcli evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlcli import data as data_mod
from dlcli import pipeline, report
from dlcli.config import Config
from dlcli.errors import DataError
from dlcli.preprocessing import Preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass
class Examples:
    """One split ready for the model: inputs plus targets (encoded and in original units)."""

    x: Any  # features array, or the whole series for time series
    y: np.ndarray | None  # encoded targets aligned with x's rows
    y_raw: np.ndarray | None  # original-unit targets, one per prediction
    naive: np.ndarray | None = None  # time series: the last observed value before each target
    when: Any = None  # time series: the time of each target (the time column, else the row index)

    def dataset(self, prep: Preprocessor, batch_size: int):
        if prep.kind == "timeseries":
            return prep.window_dataset(self.x, self.y, batch_size)
        return pipeline.array_dataset(self.x, self.y, batch_size, prep.loader())


def examples(
    prep: Preprocessor,
    part: Any,
    history: pd.DataFrame | None = None,
    source: str = "",
    labelled: bool = True,
) -> Examples:
    if prep.kind != "timeseries":
        x = prep.features(part, source)
        if not labelled:
            return Examples(x, None, None)
        y_raw = prep.raw_target(part, source)
        return Examples(x, prep.encode_target(y_raw), y_raw)
    import numpy as np
    import pandas as pd

    frame = part if history is None else pd.concat([history, part])
    series = prep.features(frame, source)
    length, horizon = prep.window["length"], prep.window["horizon"]
    if not labelled:
        if len(frame) < length:
            raise DataError(f"{source}: {len(frame)} rows are too few for one window of length {length}")
        return Examples(series, None, None)
    if len(frame) < length + horizon:
        raise DataError(
            f"{source}: {len(frame)} rows are too few for windows of length {length} with "
            f"horizon {horizon} (expected at least {length + horizon} rows): shorten "
            "preprocessing.window.length or give this split a larger fraction"
        )
    y_all = prep.raw_target(frame, source)
    times = frame[prep.time_column] if prep.time_column in frame else frame.index
    return Examples(
        series,
        prep.encode_target(y_all),
        y_all[length - 1 + horizon :],
        naive=y_all[length - 1 : len(y_all) - horizon],
        when=np.asarray(times)[length - 1 + horizon :],
    )


def split_examples(prep: Preprocessor, loaded: data_mod.Loaded) -> dict[str, Examples]:
    import pandas as pd

    sets, seen = {}, []
    for name in data_mod.SPLITS:
        if name not in loaded.splits:
            continue
        part = loaded.splits[name]
        history = None
        if prep.kind == "timeseries" and seen:
            history = pd.concat(seen).tail(prep.context)  # earlier rows feed this split's first windows
        source = f"{loaded.source} ({name} split)"
        sets[name] = examples(prep, prep.match_labels(part, source), history, source)
        if prep.kind == "timeseries":
            seen.append(part)
    return sets


def training_arrays(prep: Preprocessor, ex: Examples):
    """Training inputs and targets: `(x, y, windows)`. For a time series x stays the whole series,
    y holds one target per window and `windows` is `(starts, length)`, the windows Keras'
    `timeseries_dataset_from_array` would cut (a target `horizon` rows after each window's end,
    windows `stride` rows apart), made by index as batches are gathered (pipeline.training_dataset):
    memory does not grow with the window's length. Else windows is None."""
    import numpy as np

    if prep.kind != "timeseries":
        return ex.x, ex.y, None
    length, horizon, stride = prep.window["length"], prep.window["horizon"], prep.window["stride"]
    starts = np.arange(0, len(ex.x) - horizon - length + 1, stride, dtype="int64")
    return ex.x, np.asarray(ex.y)[starts + length - 1 + horizon], (starts, length)


def score(prep: Preprocessor, config: Config, model, ex: Examples) -> tuple[dict, np.ndarray]:
    """Metrics of one labelled split in the target's original units, and the predictions they score
    (for a streamed split, those of its first rows: streamed.PLOT_ROWS)."""
    if hasattr(ex, "stream"):
        from dlcli import streamed

        return streamed.score(prep, config, model, ex, max(config.train.batch_size, pipeline.FORWARD_BATCH))
    ds = ex.dataset(prep, max(config.train.batch_size, pipeline.FORWARD_BATCH))
    if prep.task == "regression":
        predictions, _ = prep.decode(pipeline.forward(model, ds), ex.naive)
        metrics = report.regression(config, ex.y_raw, predictions, ex.naive)
    else:
        # the compiled loss and metrics from the same pass: not a second one as model.evaluate would make
        outputs, compiled = pipeline.forward(model, ds, compiled=True)
        predictions, probs = prep.decode(outputs)
        metrics = report.classification(compiled, prep.target_encoder.classes_, ex.y_raw, predictions, probs)
    return metrics, predictions
