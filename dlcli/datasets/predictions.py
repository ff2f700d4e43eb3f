"""What `predict` writes, whichever path made the predictions (in memory, streamed, a series, the ONNX
or TFLite runtime): the input's columns, `prediction` and `probability_<class>` (several targets:
`prediction_<target>` and `probability_<target>_<class>`), as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcli.utils import files, formats
from dlcli.utils.errors import DataError


def prediction_table(part: Any, predictions, probs, classes, pad: int = 0, rows=None) -> pd.DataFrame:
    """What predict writes: the input's columns (a table), `prediction` and `probability_<class>`.
    A series' first `pad` rows have no full window: their forecast is empty (row i: the forecast
    from the window ending there). `rows`: the positions of the rows the predictions are for (the
    others' are empty), as for several series in one file."""

    predictions = np.asarray(predictions)
    if pad:
        rows = np.arange(pad, pad + len(predictions))
    if rows is not None:
        n = len(part)
        placed = np.full(n, np.nan, dtype=object if predictions.dtype == object else "float64")
        placed[rows] = predictions
        predictions = placed
        if probs is not None:
            spread = np.full((n, probs.shape[1]), np.nan)
            spread[rows] = probs
            probs = spread
    table = part.copy() if isinstance(part, pd.DataFrame) else pd.DataFrame(index=range(len(predictions)))
    return _with_predictions(table, predictions, probs, classes)


def outputs_table(part: Any, decoded: list[tuple[str, Any, Any, list]]) -> pd.DataFrame:
    """Several targets: the input's columns, then per target `prediction_<target>` and, for a class
    target, `probability_<target>_<class>`, from `(target column, predictions, probabilities, classes)`."""
    table = part.copy() if isinstance(part, pd.DataFrame) else pd.DataFrame(index=range(len(decoded[0][1])))
    for column, predictions, probs, classes in decoded:
        table = _with_predictions(table, predictions, probs, classes, f"_{column}")
    return table


def decode_outputs(prep, outputs: dict) -> list[tuple[str, Any, Any, list]]:
    """Several targets' model outputs (by output name) → `(target column, predictions, probabilities,
    classes)` per target, as `runtime.decoded` gives an export's."""
    out = []
    for name, view in prep.outputs.items():
        predictions, probs = view.decode(outputs[name])
        out.append((view.target_encoder.column, predictions, probs, view.target_encoder.classes_))
    return out


def _with_predictions(table: pd.DataFrame, predictions, probs, classes, suffix: str = "") -> pd.DataFrame:
    """`prediction<suffix>` and, with probabilities, `probability<suffix>_<class>` per class."""
    table[f"prediction{suffix}"] = predictions
    for i, label in enumerate(classes if probs is not None else []):
        table[f"probability{suffix}_{label}"] = np.asarray(probs)[:, i]
    return table


def write_table(table: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in formats.PARQUET:
        content = table.to_parquet(index=False)
    elif suffix == ".csv":
        content = table.to_csv(index=False)
    else:
        raise DataError(f"--output {path}: unsupported suffix {suffix!r} (expected .csv or .parquet)")
    try:
        files.write_atomic(path, content)
    except OSError as exc:
        raise DataError(f"--output {path}: cannot write ({exc})") from None
