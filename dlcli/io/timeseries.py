"""Time-series tables before their split: each series' rows as a block, the time steps a regular
series skips inserted, and empty cells filled in time order (preprocessing.series.missing).

>>> frame = fill(config, frame, cols, "sensors.csv", notes)   # notes say what was inserted, filled
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlcli.config.config import Config
from dlcli.io import columns as columns_mod
from dlcli.io.columns import Columns
from dlcli.io.reading import row_where
from dlcli.utils.errors import DataError


def blocks(ids: pd.Series) -> list[tuple[int, int]]:
    """`(start, end)` positions of each series' rows (together, as the sort left them)."""

    values = ids.to_numpy()
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1 if len(values) else np.empty(0, "int64")
    bounds = [0, *cuts.tolist(), len(values)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def fill(config: Config, frame: pd.DataFrame, cols: Columns, source: str, notes: list[str]) -> pd.DataFrame:
    """preprocessing.series.missing on the whole table, each series (data.series_id) by itself."""
    if config.data.series_id is not None:
        return _fill_each_series(config, frame, cols, source, notes)
    return _fill_series(config, frame, cols, source, notes)


def _fill_each_series(
    config: Config, frame: pd.DataFrame, cols: Columns, source: str, notes: list[str]
) -> pd.DataFrame:
    """_fill_series on each series (data.series_id) by itself; inserted rows keep their series' id
    and are numbered after the file's last line. One note for all series."""

    column, said_by, out = config.data.series_id, [], []
    if frame[column].isna().any():
        line = frame.index[frame[column].isna().argmax()]
        raise DataError(
            f"{source}: series id {column!r} {row_where(source, line)} is empty; every row "
            "of a series needs its series' id: fill it in or drop the row"
        )
    label = int(frame.index.max()) + 1 if len(frame) else 0
    for start, end in blocks(frame[column]):
        part, said = frame.iloc[start:end], []
        filled = _fill_series(config, part, cols, f"{source} (series {part[column].iloc[0]!r})", said)
        new = ~filled.index.isin(part.index)
        if new.any():  # inserted time steps: this series' id, and lines after the file's last
            filled = filled.copy()
            filled.loc[new, column] = part[column].iloc[0]
            labels = filled.index.to_numpy(copy=True)
            labels[new] = range(label, label + int(new.sum()))
            filled.index = pd.Index(labels)
            label += int(new.sum())
        said_by += [said] if said else []
        out.append(filled)
    if said_by:  # the first series' notes, and how many more series were filled in
        notes += said_by[0]
        if len(said_by) > 1:
            notes.append(f"{source}: likewise for {len(said_by) - 1} more series (data.series_id)")
    return pd.concat(out) if out else frame


def _fill_series(
    config: Config, frame: pd.DataFrame, cols: Columns, source: str, notes: list[str]
) -> pd.DataFrame:
    """preprocessing.series.missing: empty cells of the target and numeric columns filled in time order
    (ffill, interpolate) or their rows dropped, before any check or split."""
    how = config.preprocessing.series.missing
    if config.data.time_column is not None:
        frame = _insert_missing_steps(frame, config.data.time_column, source, notes, insert=how != "error")
    numeric = [c for c in dict.fromkeys([*cols.numeric, config.data.target_column]) if c in frame.columns]
    gaps = int(frame[numeric].isna().any(axis=1).sum())
    if how == "error" or not gaps:
        return frame
    columns_mod.check_numeric(frame, numeric, source)  # text is an error, never a gap to fill
    frame = frame.copy()
    empty = frame[numeric].isna()
    with_gaps = [c for c in numeric if empty[c].any()]  # only the columns that have empty cells
    # a column's empty cells before its first value: no earlier value to carry or interpolate from
    leading = {c: int(empty[c].cummin().sum()) for c in with_gaps if empty[c].iloc[0]}
    if how == "drop":
        frame = frame.dropna(subset=numeric)
    else:
        values = frame[numeric].astype("float64")
        values = (
            values.ffill()
            if how == "ffill"
            else values.interpolate(method="linear", limit_direction="forward")
        )
        frame[numeric] = values.bfill()  # cells before the first value: the first value
    counts = ", ".join(f"{c} ({int(empty[c].sum())})" for c in with_gaps)
    notes.append(f"{source}: {gaps} rows with empty cells, in {counts}: {how} (preprocessing.series.missing)")
    if leading and how != "drop":
        first = ", ".join(f"{c}'s first {n}" for c, n in leading.items())
        notes.append(
            f"{source}: {first} cells come before any value, so they take the first value that follows "
            "(filled backwards); drop those rows from the file if they should not be used"
        )
    return frame


def _step_name(step) -> str:

    names = {
        pd.Timedelta(minutes=1): "minute-by-minute",
        pd.Timedelta(hours=1): "hourly",
        pd.Timedelta(days=1): "daily",
        pd.Timedelta(weeks=1): "weekly",
    }
    return names.get(step, f"every-{step}")


def _insert_missing_steps(
    frame: pd.DataFrame, time_column: str, source: str, notes: list[str], insert: bool
) -> pd.DataFrame:
    """Rows for the time steps a regular series skips (an hour that was never logged), with empty
    values for preprocessing.series.missing to fill. The step is the most common one (a calendar month
    for steps of 28 to 31 days); a series whose times do not all fall on that grid is left as it is."""

    raw = frame[time_column]
    numeric = pd.api.types.is_numeric_dtype(raw)
    times = raw if numeric else pd.to_datetime(raw, errors="coerce")
    if len(times) < 3 or times.isna().any() or not times.is_monotonic_increasing or times.duplicated().any():
        return frame
    steps = times.diff().iloc[1:]
    step = steps.mode().iloc[0]
    if not (steps > step).any():
        return frame
    if numeric:
        grid = np.arange(times.iloc[0], times.iloc[-1] + step / 2, step)
        label = f"every {step:g}"
    elif pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        freq = "MS" if (times.dt.day == 1).all() else "ME" if times.dt.is_month_end.all() else None
        if freq is None:
            return frame
        grid, label = pd.date_range(times.iloc[0], times.iloc[-1], freq=freq), "monthly"
    else:
        grid = pd.date_range(times.iloc[0], times.iloc[-1], freq=step)
        label = _step_name(step)
    grid = pd.Index(grid)
    if not pd.Index(times).isin(grid).all() or len(grid) > 2 * len(times):
        return frame
    missing = grid.difference(pd.Index(times))
    if not insert:
        notes.append(
            f"{source}: {len(missing)} time steps are missing from the {label} series (the first "
            f"{missing[0]}); windows run across the gaps: set preprocessing.series.missing to insert "
            "and fill them"
        )
        return frame
    frame = frame.assign(**{time_column: times})  # text times as datetimes: inserted rows match them
    filler = pd.DataFrame({time_column: missing})
    filler.index = pd.RangeIndex(int(frame.index.max()) + 1, int(frame.index.max()) + 1 + len(filler))
    out = pd.concat([frame, filler])
    out = out.iloc[np.argsort(out[time_column].to_numpy(), kind="stable")]
    notes.append(
        f"{source}: {len(missing)} time steps missing from the {label} series (the first "
        f"{missing[0]}) were inserted as rows to fill"
    )
    return out
