"""A data file as `dlcli train` reads it, and the role a first config gives each column, with the reason.

The file is read by `io.reading.read_table`, the reader `dlcli train` uses, and what that reader
cannot know without a config is decided here and written into the config as keys (so the config
reads the file the same way): a first row that is data, not a header (its values recur in their
columns), stray quotes that join lines (quotes read as ordinary characters). A folder of class
subfolders reads as `io.folders` reads it.

    >>> profile = read(Path("titanic.csv"))
    >>> profile.columns["Ticket"].role, profile.columns["Ticket"].reason
    ('drop', '681 distinct values in 891 rows: an identifier, not a category')
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlcli.io import folders
from dlcli.io.columns import ID_SHARE, id_like, is_row_number
from dlcli.io.reading import Reading, is_number, read_table
from dlcli.utils import formats
from dlcli.utils.errors import DataError

#: A column with more of its values missing than this share is dropped.
MOSTLY_MISSING = 0.5
#: Free text: values of at least this many words on average, mostly distinct.
TEXT_WORDS = 3.0
#: A target of whole numbers with at most this many values is a set of classes.
MAX_CLASS_CODES = 20
#: A target of text with more values than this is not a set of classes.
MAX_CLASSES = 200
#: Rows looked at to recognise dates, image paths and a header that is data.
SAMPLE = 500


@dataclass
class Column:
    """One column: its `role` (numeric, categorical, text, image, time or drop) and why."""

    name: str
    role: str
    reason: str
    distinct: int
    missing: int


@dataclass
class Profile:
    """What a file (or a folder of class folders) holds, read as `dlcli train` will read it."""

    path: Path
    frame: pd.DataFrame
    columns: dict[str, Column]
    reading: dict[str, object] = field(default_factory=dict)  # data.* keys: how to read the file
    why: dict[str, str] = field(default_factory=dict)  # data.* key → why it is set
    folder: folders.Found | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)


def read(path: Path) -> Profile:
    """The file (or folder) at `path` profiled column by column. DataError for what cannot be read."""
    path = Path(path)
    if path.is_dir():
        frame, found = folders.read(path)
        kind = "image" if found.kind == "images" else "text"
        first = frame.columns[0]
        why = f"the {kind} files of {len(found.classes)} class folders"
        columns = {first: Column(first, kind, why, len(frame), 0)}
        columns[folders.LABEL] = _column(frame, folders.LABEL)
        return Profile(path, frame, columns, folder=found)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (resolved to {path.resolve()})")
    reading, why = {}, {}
    frame, _ = read_table(path, Reading())
    delimited = path.suffix.lower() not in formats.OTHER_TABLES
    if delimited:
        frame = _data_in_header(path, frame, reading, why)
        frame = _stray_quotes(path, frame, reading, why)
        _header_reason(frame, reading, why)
    columns = {name: _column(frame, name, path) for name in frame.columns}
    return Profile(path, frame, columns, reading, why)


def _options(reading: dict) -> Reading:
    return Reading(header=reading.get("header", "auto"), quoting=reading.get("quoting", "minimal"))


def _stray_quotes(path: Path, frame: pd.DataFrame, reading: dict, why: dict) -> pd.DataFrame:
    """Read again with quotes as ordinary characters when quotes joined lines into one row."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = sum(1 for line in handle if line.strip())
    if lines <= len(frame) + (reading.get("header") is not False):
        return frame
    try:
        plain, _ = read_table(path, _options({**reading, "quoting": "none"}))
    except DataError:
        return frame
    if len(plain) <= len(frame):
        return frame
    reading["quoting"] = "none"
    why["quoting"] = (
        f"stray double quotes join lines when read as quotes: {len(plain)} rows, not {len(frame)}"
    )
    return plain


def _data_in_header(path: Path, frame: pd.DataFrame, reading: dict, why: dict) -> pd.DataFrame:
    """A first row whose text values recur in their own columns is a row of data, not names."""
    recurring = [
        name
        for name in frame.columns
        if not is_number(name) and frame[name].dtype.kind not in "biuf" and (frame[name] == name).sum() >= 2
    ]
    if not recurring:
        return frame
    reading["header"] = False
    return read_table(path, _options(reading))[0]


def _header_reason(frame: pd.DataFrame, reading: dict, why: dict) -> None:
    """Why the first row is data, told from the file as finally read (quotes as they are read)."""
    if reading.get("header") is False:
        first = frame.iloc[0]
        column = next(
            c for c in frame.columns if not is_number(str(first[c])) and (frame[c] == first[c]).sum() >= 2
        )
        name, count = frame[column].iloc[0], int((frame[column] == frame[column].iloc[0]).sum())
        why["header"] = (
            f"the first row is data: {name!r} recurs {count} times in its column; "
            f"columns named column_1 … column_{frame.shape[1]}"
        )


def _column(frame: pd.DataFrame, name: str, path: Path | None = None) -> Column:
    values = frame[name]
    present = values.dropna()
    distinct, missing, rows = int(present.nunique()), len(values) - len(present), len(values)

    def role(kind: str, reason: str) -> Column:
        return Column(name, kind, reason, distinct, missing)

    if present.empty:
        return role("drop", "empty: no values")
    if distinct == 1:
        return role("drop", f"the same value in every row ({present.iloc[0]!r})")
    if missing > MOSTLY_MISSING * rows:
        return role("drop", f"{missing} of {rows} values missing")
    if values.dtype.kind in "biuf":
        return _number_column(values, role, distinct, missing)
    return _text_column(values, role, distinct, path)


def _number_column(values: pd.Series, role, distinct: int, missing: int) -> Column:
    rows = len(values)
    if rows >= 20 and is_row_number(values):
        return role("drop", f"a row number or id: {values.iloc[0]} to {values.iloc[-1]}, each once, in order")
    filled = f", {missing} missing (filled with the median)" if missing else ""
    return role("numeric", f"numbers, {distinct} distinct values{filled}")


def _text_column(values: pd.Series, role, distinct: int, path: Path | None) -> Column:
    present, rows = values.dropna(), len(values)
    sample = present.head(SAMPLE).astype(str)
    if sample.str.lower().str.endswith(formats.IMAGES).mean() > 0.9:
        base = path.parent if path is not None else Path.cwd()
        found = sum((base / p).is_file() or Path(p).is_file() for p in sample.head(20))
        if found:
            return role("image", f"paths of image files ({len(present)} rows)")
    if _dates(sample):
        return role("time", f"dates, {present.iloc[0]} to {present.iloc[-1]}: the time column (sorted on)")
    words = sample.str.split().str.len().mean()
    if words >= TEXT_WORDS and distinct > ID_SHARE * len(present):
        return role("text", f"free text: {distinct} distinct values of {words:.0f} words on average")
    missing = rows - len(present)
    if id_like(values):
        return role("drop", f"{distinct} distinct values in {rows} rows: an identifier, not a category")
    filled = f", {missing} missing (a category of their own)" if missing else ""
    return role("categorical", f"{distinct} categories{filled}")


#: A date or a time: digits with - / . : or T between them (2024-01-31, 31/01/2024, 2024-01-31T08:00).
DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")


def _dates(sample: pd.Series) -> bool:
    if not sample.str.strip().str.match(DATE_LIKE).all():
        return False
    with warnings.catch_warnings():  # pandas warns when it infers each value's format on its own
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce")
    return bool(parsed.notna().all())
