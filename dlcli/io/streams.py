"""Tables read in pieces: CSV/TSV, JSON lines and Parquet files, one file, a folder of them or a
glob, as pandas chunks of bounded size (pyarrow parses; nothing holds the whole file).

A stream is cut into units, each read on its own: a byte range of a text file that starts and ends
at a line break (about `UNIT_BYTES`), or one row group of a Parquet file. Units are what epochs
shuffle, what workers divide between them and what threads read in parallel. Every unit of a text
file is parsed with the column names and types the first one was read with, so a column never
changes type halfway through a file.

    >>> stream = open_stream(config, [Path("big.csv")])
    >>> for unit, frame in stream.frames(): ...
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pc
import pyarrow.parquet as pq

from dlcli.io import reading as reading_mod
from dlcli.io.reading import WHITESPACE, Reading, kind_of
from dlcli.utils import formats
from dlcli.utils.errors import ConfigError, DataError, DlcliError, TrainingFailed

if TYPE_CHECKING:
    from dlcli.config.config import Config

#: About this many bytes of a text file per unit: large enough for pyarrow's threads, small enough
#: that two units in flight stay far below the memory a whole file would take.
UNIT_BYTES = 8 << 20
#: `stream: auto` streams when the files take more than this share of the memory available now:
#: pandas holds a CSV in two to five times its size on disk, and preprocessing copies it once more.
AUTO_SHARE = 0.25
#: pandas' own missing markers (pyarrow's list lacks these three).
PANDAS_NULLS = ("<NA>", "None", "-nan")


def table_files(path: str | Path) -> list[Path] | None:
    """The table files `path` names when it is a glob or a folder holding table files (CSV, TSV,
    Parquet, JSON lines; hidden files and `_`-files left out), sorted; else None (one file, or a
    folder of class subfolders, whose text files end in .txt)."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            raise DataError(f"data.path: {text}: the pattern matches no file")
        return found
    folder = Path(path)
    if not folder.is_dir():
        return None
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in formats.TABLE_PARTS and not formats.hidden(p, folder)
    )
    return found or None


def available_memory() -> int:
    """Bytes of memory available now (Linux' MemAvailable; else the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def should_stream(config: Config, paths: list[Path]) -> tuple[bool, str | None]:
    """Whether to stream `paths` (data.stream), and for `auto` the note saying why it did."""
    setting = config.data.stream
    if setting is not True and setting is not False:
        size, memory = sum(p.stat().st_size for p in paths), available_memory()
        if size <= AUTO_SHARE * memory:
            return False, None
        return True, (
            f"data: streamed in pieces (data.stream: auto): the files take {size / 2**30:.1f} GB, more than "
            f"{AUTO_SHARE:.0%} of the {memory / 2**30:.1f} GB of memory available; set data.stream: false "
            "to read them whole"
        )
    return bool(setting), None


@dataclass(frozen=True)
class Unit:
    """A piece of one file read on its own: bytes [start, end) of a text file, or a row group."""

    path: Path
    start: int = 0
    end: int = 0
    row_group: int | None = None  # the first row group of a Parquet unit
    row_groups: int = 1  # consecutive row groups in the unit


@dataclass
class Stream:
    """The files of a table, cut into units, with how each is parsed."""

    paths: list[Path]
    units: list[Unit]
    kind: str  # "delimited text", "JSON lines" or "Parquet"
    columns: list[str]
    reading: Reading
    sep: str | None = None
    header: bool = True
    types: dict[str, str] = field(default_factory=dict)  # column → "float64" | "int64" | "string"
    notes: list[str] = field(default_factory=list)
    wanted: list[str] | None = None  # the columns to read (None: all)
    reads: dict[int, int] = field(default_factory=dict)  # unit → times frames() read it
    file_columns: dict[Path, list[str]] = field(default_factory=dict)  # a file's header in its order
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)  # size and mtime when opened
    #: The error a read raised inside tf.data, which TensorFlow reports only as an UnknownError with
    #: a traceback in its text: training raises this one instead (stages._fit).
    failure: Exception | None = None

    def __post_init__(self):
        self.stamps = {p: _stamp(p) for p in self.paths}

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def read(self, unit: Unit, first_row: int = 0) -> pd.DataFrame:
        """One unit as a DataFrame indexed by line (text) or row (Parquet, JSON lines) number in
        its file, `first_row` being the unit's first row's 0-based position there."""

        try:
            self._unchanged(unit.path)
            try:
                table = self._arrow(unit)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
                self._unchanged(unit.path)  # a file cut short while it was read
                raise DataError(self._unreadable(unit, exc)) from None
        except DlcliError as exc:
            self.failure = exc
            raise
        frame = table.to_pandas()
        start = first_row + (2 if self.kind == "delimited text" and self.header else 1)
        start += self.reading.skip_rows if self.kind == "delimited text" else 0
        frame.index = pd.RangeIndex(start, start + len(frame))
        if self.reading.strip:
            _strip_text(frame, self.reading.na_values)
        return frame

    def _unchanged(self, path: Path) -> None:
        """Refuse to read on from a file that changed since the stream was opened: its units (byte
        ranges, row groups) and the statistics fitted on it no longer describe it."""
        then, now = self.stamps.get(path), _stamp(path)
        if then is not None and now != then:
            raise TrainingFailed(
                f"{path}: changed while dlcli was reading it ({then[0]:,} bytes when the first pass began, "
                f"{now[0]:,} now, modified since): its pieces and the statistics fitted on it no longer "
                "describe it, so the run stopped. Keep the data unchanged while a run reads it (copy "
                "it, or write new files beside it) and train again"
            )

    def _unreadable(self, unit: Unit, exc: Exception) -> str:
        where = (
            f"row groups {unit.row_group}–{unit.row_group + unit.row_groups - 1}"
            if unit.row_group is not None
            else f"bytes {unit.start}–{unit.end}"
        )
        line = self._bad_line(unit, str(exc))
        if line is not None:
            return (
                f"{unit.path}: line {line[0]}: {line[1]}; fix the line (a row cut short or with an extra "
                "separator; a truncated file ends in one), or remove it"
            )
        message = f"{unit.path}: cannot be read as {self.kind} ({where}: {type(exc).__name__}: {exc})"
        if "conversion error" in str(exc) or "changed from" in str(exc):
            message += (
                "; the first part of the data fixed this column as numbers, and this part holds text: "
                "list it under preprocessing.categorical.columns if it holds categories, add the value "
                "to data.na_values if it marks a missing value, or fix it"
            )
        return message

    def _bad_line(self, unit: Unit, error: str) -> tuple[int, str] | None:
        """`(line, what)` for pyarrow's "Expected N columns, got M: <row>": the row found in the
        unit's bytes and its line counted from the file's start (only when reading failed)."""
        found = re.search(r"Expected (\d+) columns, got (\d+): (.*)", error, re.S)
        if found is None or unit.row_group is not None:
            return None
        expected, got, row = found.groups()
        with open(unit.path, "rb") as handle:
            before = handle.read(unit.start).count(b"\n")
            data = handle.read(unit.end - unit.start)
        at = data.find(row.encode("utf-8", "replace")[:200])
        if at < 0:
            return None
        line = before + data[:at].count(b"\n") + 1
        return line, f"{got} fields where the header has {expected} ({row[:80]!r})"

    def _arrow(self, unit: Unit):

        if unit.row_group is not None:
            import pyarrow.parquet as pq

            groups = list(range(unit.row_group, unit.row_group + unit.row_groups))
            table = pq.ParquetFile(unit.path).read_row_groups(groups, columns=self.wanted or self.columns)
            table = table.rename_columns(
                [str(c).strip() if self.reading.strip else str(c) for c in table.column_names]
            )
            return table
        with open(unit.path, "rb") as handle:
            handle.seek(unit.start)
            data = handle.read(unit.end - unit.start)
        types = {c: getattr(pa, t)() for c, t in self.types.items()}
        if self.kind == "JSON lines":
            import pyarrow.json as pj

            parse = pj.ParseOptions()
            if types:  # after the first unit: every unit read with its types
                schema = pa.schema([(c, types.get(c, pa.string())) for c in self.columns])
                parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
            table = pj.read_json(io.BytesIO(data), parse_options=parse)
            return table.select(self.wanted) if self.wanted else table

        skip = (int(self.header) + self.reading.skip_rows) if unit.start == 0 else 0
        names = self.file_columns.get(unit.path, self.columns)  # this file's header: read by name
        read = pc.ReadOptions(column_names=names, skip_rows=skip, block_size=1 << 22)
        quote = '"' if self.reading.quoting == "minimal" else False
        parse = pc.ParseOptions(delimiter=self.sep, quote_char=quote)
        convert = pc.ConvertOptions(
            column_types=types,
            null_values=[*pc.ConvertOptions().null_values, *PANDAS_NULLS, *self.reading.na_values],
            strings_can_be_null=True,
            include_columns=self.wanted,
        )
        table = pc.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)
        return table.select(self.wanted or self.columns) if names is not self.columns else table

    def frames(
        self, units: list[int] | None = None, offsets: list[int] | None = None, threads: int = 2, then=None
    ):
        """`(unit index, frame)` for the given units in that order (default: all, in file order),
        read `threads` at a time ahead of the consumer; with `then`, `(unit index, then(i, frame))`.
        `offsets`: each unit's first row's position in its file (the statistics pass learns them);
        without them the units must come in file order, and are numbered as they arrive."""
        order = list(range(len(self.units))) if units is None else list(units)
        known = offsets is not None

        def work(i: int):
            frame = self.read(self.units[i], offsets[i] if known else 0)
            self.reads[i] = self.reads.get(i, 0) + 1
            return then(i, frame) if known and then is not None else frame

        rows: dict[Path, int] = {}
        with ThreadPoolExecutor(threads, thread_name_prefix="dlcli-read") as pool:
            pending = [(i, pool.submit(work, i)) for i in order[:threads]]
            for i in order[threads:] + [None] * threads:
                if not pending:
                    break
                j, future = pending.pop(0)
                if i is not None:
                    pending.append((i, pool.submit(work, i)))
                result = future.result()
                if not known:  # number the rows on from the file's units before
                    path = self.units[j].path
                    shift = rows.get(path, 0)
                    rows[path] = shift + len(result)
                    result.index = result.index + shift
                    result = then(j, result) if then is not None else result
                yield j, result


def open_stream(
    config: Config, paths: list[Path], reading: Reading | None = None, labelled: bool = True
) -> Stream:
    """The stream of `paths` (all of one kind), parsed as the config says (data.sep, data.header,
    data.columns, data.quoting, data.na_values, data.strip), types fixed from the first file.
    `labelled=False` (predict's input): a headerless file may lack data.columns' target."""

    reading = reading or Reading.of(config.data, config.where)
    kinds = {kind_of(p, reading) for p in paths}
    if len(kinds) > 1:
        raise DataError(
            f"data.path: the files are of different kinds ({', '.join(sorted(kinds))}); stream one kind "
            "(all CSV, all Parquet or all JSON lines)"
        )
    kind = kinds.pop()
    if kind == "Parquet":
        return _parquet(paths, reading)
    return _text(config, paths, reading, kind, labelled)


def _parquet(paths: list[Path], reading: Reading) -> Stream:

    units, columns = [], None
    for path in paths:
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: cannot be read as Parquet ({type(exc).__name__}: {exc})") from None
        names = [str(c) for c in meta.schema.to_arrow_schema().names]
        if columns is None:
            columns = names
        elif names != columns:
            same_columns(path, names, paths[0], columns)
        units += _row_group_units(path, meta)
    return Stream(paths, units, "Parquet", columns or [], reading)


#: A Parquet unit gathers consecutive row groups until it holds this many rows: writers that flush
#: often leave row groups of a few thousand rows, too small to read one by one.
UNIT_ROWS = 50_000


def _row_group_units(path: Path, meta) -> list[Unit]:
    units, first, rows, least = [], 0, 0, int(os.environ.get("DLCLI_UNIT_ROWS") or UNIT_ROWS)
    for g in range(meta.num_row_groups):
        rows += meta.row_group(g).num_rows
        if rows >= least or g == meta.num_row_groups - 1:
            units.append(Unit(path, row_group=first, row_groups=g - first + 1))
            first, rows = g + 1, 0
    return units


def _text(config: Config, paths: list[Path], reading: Reading, kind: str, labelled: bool) -> Stream:

    notes: list[str] = []
    sep, header, names = None, False, None
    if kind == "delimited text":
        sep = reading_mod.separator(paths[0], reading, notes)
        if sep == WHITESPACE:
            raise ConfigError(
                f"{reading.key('sep')}: whitespace-separated files cannot be streamed (pyarrow reads one "
                "separator character): set data.stream: false, or convert the file to CSV or Parquet"
            )
        first = reading_mod.first_record(
            paths[0], sep, reading_mod.QUOTING[reading.quoting], reading.strip, reading
        )
        header = reading_mod.has_header(paths[0], reading, first, notes)
        names = first if header else reading_mod.column_names(paths[0], reading, first, labelled)
        if reading.strip:
            names = [n.strip() for n in names]
    units = [u for path in paths for u in _byte_ranges(path, header)]
    stream = Stream(paths, units, kind, list(names or []), reading, sep, header, notes=notes)
    if header:
        stream.file_columns = _headers(paths, list(names), sep, reading)
    if kind == "JSON lines":
        stream.columns = _json_columns(paths[0])
    stream.types = _types(config, stream)
    return stream


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return info.st_size, info.st_mtime_ns


def same_columns(path: Path, names: list[str], first: Path, columns: list[str]) -> None:
    """Files of one streamed table are read by column name: another order is fine, another set of
    names is an error naming both files and the columns that differ."""
    if sorted(names) == sorted(columns) and len(set(names)) == len(names):
        return
    extra = [n for n in names if n not in columns]
    lacking = [c for c in columns if c not in names]
    differ = (
        "; ".join(
            part
            for part in (
                f"it has {', '.join(map(repr, extra))} that {first} has not" if extra else "",
                f"it lacks {', '.join(map(repr, lacking))}" if lacking else "",
            )
            if part
        )
        or "a column name is repeated"
    )
    raise DataError(
        f"{path}: its columns ({', '.join(names)}) are not {first}'s ({', '.join(columns)}): {differ}. "
        "Every file of a streamed table needs the same column names (in any order): rename them, or "
        "move the file out of data.path"
    )


def _headers(paths: list[Path], columns: list[str], sep: str, reading: Reading) -> dict[Path, list[str]]:
    """Each file's own header, where its order differs from the first file's (checked by name)."""

    out = {}
    for path in paths[1:]:
        names = reading_mod.first_record(
            path, sep, reading_mod.QUOTING[reading.quoting], reading.strip, reading
        )
        names = [n.strip() for n in names] if reading.strip else names
        if names != columns:
            same_columns(path, names, paths[0], columns)
            out[path] = names
    return out


def _json_columns(path: Path) -> list[str]:

    with open(path, encoding="utf-8") as handle:
        line = handle.readline()
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise DataError(
            f"{path}:1: not a JSON object per line (JSON lines): {line[:80].strip()!r}; each line holds "
            'one row as {"column": value, ...}'
        )
    return [str(k) for k in record]


def unit_bytes() -> int:
    """UNIT_BYTES, or $DLCLI_UNIT_BYTES (tests and benchmarks cut small files into many units; so
    does $DLCLI_UNIT_ROWS for UNIT_ROWS)."""
    return int(os.environ.get("DLCLI_UNIT_BYTES") or UNIT_BYTES)


def _byte_ranges(path: Path, header: bool) -> list[Unit]:
    """`path` cut at line breaks into pieces of about UNIT_BYTES (the first holds the header)."""
    size, step = path.stat().st_size, unit_bytes()
    cuts = [0]
    with open(path, "rb") as handle:
        while cuts[-1] + step < size:
            handle.seek(cuts[-1] + step)
            handle.readline()  # to the end of the line the cut fell in
            if handle.tell() >= size:
                break
            cuts.append(handle.tell())
    cuts.append(size)
    return [Unit(path, a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _types(config: Config, stream: Stream) -> dict[str, str]:
    """Column types for every unit, from pyarrow's reading of the first: numbers as float64 (an
    integer column may hold a decimal or an empty cell further down), whole-number target, split
    key, series id and time columns as int64 (their values are labels, ids and steps), everything
    else as text."""

    stream.types = {}
    if not stream.units:
        return {}
    try:
        table = stream._arrow(stream.units[0])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise DataError(stream._unreadable(stream.units[0], exc)) from None
    data = config.data
    keep = {data.target_column, data.split.key, data.series_id, data.time_column}
    out = {}
    for name, kind in zip(table.column_names, table.schema.types, strict=True):
        if pa.types.is_integer(kind) and name in keep:
            out[name] = "int64"
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            out[name] = "float64"
        else:  # text, dates, booleans: read as text, as the checks and encoders expect
            out[name] = "string"
    return out


def _strip_text(frame: pd.DataFrame, na_values: tuple[str, ...]) -> None:
    """Spaces around text values go, and a stripped missing marker becomes missing (as reading.py
    does for whole files; a column's type never changes here)."""

    markers = set(na_values) | {""}
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        text = values.str.strip()
        frame[column] = text.mask(text.isin(markers))
