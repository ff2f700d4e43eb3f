"""Reading a table file as it ships: with or without a header row, any separator, stray quotes,
`?` for missing, spaces around values. Rows keep their place in the file as the frame's index, so
every message can name the line (delimited text) or row (Parquet, JSON lines) a value came from.

    >>> frame, notes = read_table(Path("adult.data"), Reading(target="income"))
    >>> notes
    ["adult.data: no header row (its first row, '39', 'State-gov', … holds numbers); ..."]
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from dlcli.utils import formats
from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    from dlcli.config.config import DataConfig

#: What `sep: whitespace` means: any run of spaces and tabs (UCI's fixed-width-looking files).
WHITESPACE = r"\s+"
SNIFFED = ",\t;| "
QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}


@dataclass(frozen=True)
class Reading:
    """How a table file is read: `data.header`, `data.columns`, `data.sep`, `data.quoting`,
    `data.na_values` and `data.strip` of the config, and the target (used to recognise a header)."""

    header: bool | Literal["auto"] = "auto"
    columns: tuple[str, ...] | None = None
    sep: str | None = None
    quoting: str = "minimal"
    na_values: tuple[str, ...] = ("?",)
    strip: bool = True
    target: str | None = None
    skip_rows: int = 0  # lines before the header (or the first row), skipped whatever they hold
    comment: str | None = None  # a line starting with this is skipped (only at its start)
    keys: dict[str, str] = field(default_factory=dict, compare=False)  # option → "FILE:LINE: data.x"

    @classmethod
    def of(cls, data: DataConfig, where=None) -> Reading:
        keys = {}
        if where is not None:
            keys = {k: where("data", k) for k in ("header", "columns", "sep", "quoting", "na_values")}
        return cls(
            header=data.header,
            columns=tuple(data.columns) if data.columns is not None else None,
            sep=data.sep,
            quoting=data.quoting,
            na_values=tuple(data.na_values),
            strip=data.strip,
            target=data.target,
            skip_rows=data.skip_rows,
            comment=data.comment,
            keys=keys,
        )

    def key(self, name: str) -> str:
        return self.keys.get(name, f"data.{name}")


def is_table(path: Path, reading: Reading) -> bool:
    suffix = path.suffix.lower()
    return suffix in formats.DELIMITED or suffix in formats.OTHER_TABLES or reading.sep is not None


def kind_of(path: Path, reading: Reading) -> str:
    suffix = path.suffix.lower()
    if suffix in formats.OTHER_TABLES and reading.sep is None:
        return formats.OTHER_TABLES[suffix]
    if suffix in formats.DELIMITED or reading.sep is not None:
        return "delimited text"
    raise DataError(
        f"{path}: unsupported file type {suffix!r} (expected one of "
        f"{', '.join(sorted([*formats.DELIMITED, *formats.OTHER_TABLES, *formats.ARRAYS]))}); for delimited "
        "text with another name set data.sep (e.g. sep: ',')"
    )


def row_where(source: str, label: Any) -> str:
    """Where a row is, for messages: `line N` of a delimited text file (the frame's index is the line
    number), else `row N` (counting from 1)."""
    try:
        number = int(label)
    except (TypeError, ValueError):
        return f"row {label!r}"
    name = source.split(" (")[0].lower()
    return f"line {number}" if Path(name).suffix in formats.DELIMITED else f"row {number}"


def not_a_number(source: str, column: str, row: Any, shown: str, then: str) -> str:
    """The one message for text where a number goes (a file's column, a request's cell): where it
    is, the value as `shown`, then `then` (how many such rows, what to do)."""
    return f"{source}: column {column!r} {row_where(source, row)}: {shown} is not a number {then}"


def read_table(
    path: Path, reading: Reading = Reading(), *, labelled: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """The file as a DataFrame indexed by line (or row) number, and notes on what was decided for
    the user (a header row found missing, the separator sniffed). DataError for what cannot be read.

    `labelled=False` (predict's input): a headerless file may lack the target column of data.columns.
    """

    path = Path(path)
    kind = kind_of(path, reading)
    if not path.is_file():
        if path.is_dir():
            raise DataError(
                f"{path}: is a folder; data.path names one file (CSV, TSV, Parquet, JSON lines, NPZ)"
            )
        raise DataError(f"{path}: file not found (resolved to {path.resolve()})")
    notes: list[str] = []
    if kind == "delimited text":
        frame = _read_delimited(path, reading, notes, labelled)
    else:
        try:
            frame = pd.read_parquet(path) if kind == "Parquet" else pd.read_json(path, lines=True)
        except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for a bad file
            raise DataError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from None
        frame.columns = [str(c) for c in frame.columns]
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        if reading.strip:
            frame.columns = [c.strip() for c in frame.columns]
            _strip_values(frame, reading.na_values)
    if frame.empty:
        raise DataError(f"{path}: the file holds no data rows (expected a header and at least one row)")
    repeated = sorted(name for name, count in Counter(frame.columns).items() if count > 1)
    if repeated:
        raise DataError(_duplicate_columns(str(path), repeated))
    return frame, notes


def _read_delimited(path: Path, reading: Reading, notes: list[str], labelled: bool) -> pd.DataFrame:

    sep = separator(path, reading, notes)
    quoting = QUOTING[reading.quoting]
    first = first_record(path, sep, quoting, reading.strip, reading)
    skipped = skipped_lines(path, reading)
    header = has_header(path, reading, first, notes)
    names = None
    if not header:
        names = column_names(path, reading, first, labelled)
    elif reading.columns is not None and not set(first) <= set(reading.columns):
        raise DataError(
            f"{reading.key('columns')}: the header row of {path} is {', '.join(first)}, not the names "
            f"given ({', '.join(reading.columns)}); set data.header: false if the first row is data, or "
            "drop data.columns to use the header's names"
        )
    elif len(set(first)) != len(first):
        repeated = [n for n, c in Counter(first).items() if c > 1]
        raise DataError(_duplicate_columns(f"{path}:1", repeated))
    options = {
        "sep": sep,
        "header": 0 if header else None,
        "names": names,
        "quoting": quoting,
        "na_values": list(reading.na_values),
        "skipinitialspace": reading.strip,
        "skiprows": skipped or None,
    }
    try:
        try:
            frame = pd.read_csv(path, **options)
        except UnicodeDecodeError as exc:  # not UTF-8: Windows' Latin-1 is the usual other
            frame = pd.read_csv(path, encoding="latin-1", **options)
            notes.append(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); read as Latin-1")
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a bad file
        kind = {",": "CSV", "\t": "TSV"}.get(sep, "delimited text")
        raise DataError(
            f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc}); check data.sep "
            f"({'sniffed' if reading.sep is None else 'given'}: {sep!r}) and data.quoting (none reads quotes "
            "as ordinary characters)"
        ) from None
    frame.columns = [str(c).strip() if reading.strip else str(c) for c in frame.columns]
    start = (2 if header else 1) + _leading(skipped)  # line numbers stay the file's
    frame.index = pd.RangeIndex(start, start + len(frame))
    if reading.strip:
        _strip_values(frame, reading.na_values)
    return frame


def separator(path: Path, reading: Reading, notes: list[str]) -> str:
    if reading.sep is not None:
        return WHITESPACE if reading.sep == "whitespace" else reading.sep
    implied = formats.DELIMITED.get(path.suffix.lower())
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        sample = "".join(_data_lines(handle, reading, 1 << 16))
    if implied is not None and (implied in sample.split("\n", 1)[0] or not sample.strip()):
        return implied  # a .csv with commas (or empty: pandas says so): nothing to sniff
    # a .csv or .tsv without its separator in the first line: another character (';') or one column;
    # spaces separate words of a one-column text file, never its columns, unless data.sep says so
    candidates = SNIFFED.replace(" ", "") if implied is not None else SNIFFED
    try:
        found = csv.Sniffer().sniff(sample, delimiters=candidates).delimiter
    except csv.Error:
        if implied is not None:
            return implied  # one column, no separator at all
        raise DataError(
            f"{path}: cannot tell what separates the values (tried {', '.join(map(repr, SNIFFED))}); "
            "set data.sep (e.g. sep: ',' or sep: whitespace)"
        ) from None
    shown = "whitespace" if found == " " else repr(found)
    instead = f", not the {implied!r} its suffix suggests" if implied is not None else ""
    notes.append(f"{path}: values separated by {shown}{instead} (sniffed; set data.sep to choose)")
    return WHITESPACE if found == " " else found


def first_record(
    path: Path, sep: str, quoting: int, strip: bool, reading: Reading | None = None
) -> list[str]:
    """The first row (the header, or the first data row) after data.skip_rows and comment lines."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        lines = _data_lines(handle, reading or Reading(), None)
        if sep == WHITESPACE:
            return next(lines, "").split()
        row = next(csv.reader(lines, delimiter=sep, quoting=quoting), [])
    return [c.strip() for c in row] if strip else row


def _data_lines(handle, reading: Reading, limit: int | None):
    """The file's lines after data.skip_rows, without data.comment's lines (up to `limit` characters)."""
    read = 0
    for number, line in enumerate(handle):
        if number < reading.skip_rows or (reading.comment and line.startswith(reading.comment)):
            continue
        yield line
        read += len(line)
        if limit is not None and read >= limit:
            return


def skipped_lines(path: Path, reading: Reading) -> list[int]:
    """The 0-based numbers of the lines data.skip_rows and data.comment leave out (pandas' skiprows)."""
    skipped = list(range(reading.skip_rows))
    if reading.comment:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            skipped += [
                n
                for n, line in enumerate(handle)
                if n >= reading.skip_rows and line.startswith(reading.comment)
            ]
    return skipped


def _leading(skipped: list[int]) -> int:
    """How many of the skipped lines come before the first one read."""
    n = 0
    while n < len(skipped) and skipped[n] == n:
        n += 1
    return n


def is_number(text: str) -> bool:
    """Whether `text` reads as a number (as a header cell never does)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def has_header(path: Path, reading: Reading, first: list[str], notes: list[str]) -> bool:
    """data.header, or for `auto`: the first row is a header unless it holds what a name never is (a
    number), or data.columns names the columns and the first row is not those names."""
    if reading.header != "auto":
        return bool(reading.header)
    if reading.columns is not None:  # a header of some of those names (predict's input: no target)
        return len(set(first)) == len(first) and set(first) <= set(reading.columns)
    if reading.target is not None and reading.target in first:
        if first and all(is_number(c) for c in first):  # Pima's `target: "1"`: a data row as names?
            shown = ", ".join(repr(c) for c in first[:6]) + (", …" if len(first) > 6 else "")
            notes.append(
                f"{path}: the first row ({shown}) holds only numbers but is read as the header, because "
                f"data.target {reading.target!r} is one of them; if the file has no header that row is "
                "data and is lost: set data.header: false (and name the columns with data.columns)"
            )
        return True
    data_like = [c for c in first if is_number(c)]  # an empty cell: pandas' unnamed index column
    if not data_like:
        return True
    what = "numbers"
    shown = ", ".join(repr(c) for c in first[:6]) + (", …" if len(first) > 6 else "")
    notes.append(
        f"{path}: no header row (its first row, {shown}, holds {what}, "
        "which are not column names): read as data, columns named column_1 … column_"
        f"{len(first)}; name them with data.columns, or set data.header: true if it is a header"
    )
    return False


def column_names(path: Path, reading: Reading, first: list[str], labelled: bool) -> list[str]:
    if reading.columns is None:
        return [f"column_{i + 1}" for i in range(len(first))]
    names = list(reading.columns)
    if len(names) == len(first):
        return names
    if not labelled and reading.target in names and len(names) - 1 == len(first):
        return [n for n in names if n != reading.target]  # predict's input: the target left out
    raise DataError(
        f"{reading.key('columns')}: {len(names)} names given but {path} has {len(first)} values per row "
        f"(its first row: {', '.join(first[:8])}{', …' if len(first) > 8 else ''}); give one name per column"
    )


def _strip_values(frame: pd.DataFrame, na_values: tuple[str, ...]) -> None:
    """Spaces around text values go (` <=50K` is `<=50K`), a stripped missing marker (` ?`) becomes
    missing, and a text column that is all numbers once stripped becomes numeric."""

    markers = set(na_values)
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue  # pandas 3 reads text as its `str` dtype, older pandas as object
        text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        text = text.mask(text.isin(markers) | (text == ""))
        numbers = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and numbers.notna().sum() == text.notna().sum():
            frame[column] = numbers
        else:
            frame[column] = text


def _duplicate_columns(where: str, names: list[str]) -> str:
    return (
        f"{where}: the column name(s) {', '.join(map(repr, names))} appear more than once; dlcli never "
        "renames columns (pandas would call the second one 'x.1'): give each column its own name"
    )
