"""Splits decided row by row, without seeing the other rows: by a stable hash of a key column
(`data.split.key`), of the row's position in the data, or by a split column (`data.split.column`).

A row's split never depends on the order, the number or the grouping of the rows around it, so a
streamed table and the same table read whole divide identically, and a row keeps its split as the
data grows. The hash is pandas' `hash_array`: of the value as int64 for whole numbers (an id read
as 17 from a CSV or a Parquet file hashes alike), else of its text (SipHash, pandas' fixed key).

    >>> codes(frame, key="id", validation=0.1, test=0.2)   # 0 train, 1 validation, 2 test
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlcli.io.reading import row_where
from dlcli.utils.errors import DataError

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_CODES = {
    "train": TRAIN,
    "validation": VALIDATION,
    "test": TEST,
    "0": TRAIN,
    "1": VALIDATION,
    "2": TEST,
    "val": VALIDATION,
    "valid": VALIDATION,
}


def unit_interval(values: np.ndarray) -> np.ndarray:
    """Each value's hash as a number in [0, 1), uniform over values."""

    hashed = pd.util.hash_array(np.asarray(values), categorize=False)
    return (hashed >> np.uint64(11)).astype("float64") * 2.0**-53


def codes(
    frame: pd.DataFrame,
    validation: float,
    test: float,
    key: str | None = None,
    first_row: int = 0,
    column: str | None = None,
    source: str = "",
    fold: tuple[int, int] | None = None,
) -> np.ndarray:
    """The split of each row (TRAIN, VALIDATION or TEST, as int8): from `column`'s names, else from
    the hash of `key`'s value as text, else of the row's 0-based position (`first_row` being the
    frame's first). A hash below `test` is test, below `test + validation` validation; with `fold`
    (folds, fold), the rows above `test` in that fold's range of hashes are validation."""

    if column is not None:
        return _from_column(frame, column, source)
    if key is not None:
        raw = frame[key]
        if raw.dtype.kind in "iu":  # whole numbers hash as int64, whatever file they came from
            u = unit_interval(raw.to_numpy(dtype="int64"))
        else:
            u = unit_interval(raw.astype(str).to_numpy(dtype=object))
    else:
        u = unit_interval(np.arange(first_row, first_row + len(frame), dtype="int64"))
    out = np.zeros(len(frame), dtype="int8")
    if fold is not None:
        out[fold_of(u, test, fold[0]) == fold[1] - 1] = VALIDATION
    else:
        out[u < test + validation] = VALIDATION
    out[u < test] = TEST
    return out


def fold_of(u: np.ndarray, test: float, k: int) -> np.ndarray:
    """The fold (0 to k - 1) of each row whose hash is `u` in [test, 1): equal ranges of it."""
    return np.minimum(((u - test) / (1.0 - test) * k).astype("int64"), k - 1)


def _from_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:

    labels = frame[column].astype(str).str.strip().str.lower().map(SPLIT_CODES)
    bad = frame[column][labels.isna()]
    if len(bad):
        raise DataError(
            f"{source}: column {column!r} {row_where(source, bad.index[0])}: {bad.iloc[0]!r} is not a "
            "split name (expected train/validation/test or 0/1/2)"
        )
    return labels.to_numpy(dtype="int8")
