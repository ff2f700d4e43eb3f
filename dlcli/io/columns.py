"""Which columns of a table the model uses, which it ignores and why, and the checks on their values
that run over the whole file before it is split (so counts and lines are the file's own).

    >>> cols = resolve(config, frame)
    >>> cols.numeric, cols.categorical, cols.ignored
    (['age', 'hours'], ['workclass'], {'id': 'data.drop'})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlcli.config.checks import suggest
from dlcli.config.config import Config
from dlcli.io.reading import not_a_number, row_where
from dlcli.utils.errors import DataError

#: A text column with more distinct values than this share of its rows is an id or a name: ignored
#: unless listed, and flagged when listed.
ID_SHARE = 0.5


@dataclass
class Columns:
    numeric: list[str]
    categorical: list[str]
    ignored: dict[str, str] = field(default_factory=dict)  # column → why
    notes: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    image: list[str] = field(default_factory=list)  # the column of image file paths

    def describe(self) -> dict:
        """run.json's `data.columns`."""
        described = {"numeric": self.numeric, "categorical": self.categorical}
        extra = {kind: names for kind, names in (("text", self.text), ("image", self.image)) if names}
        return {**described, **extra, "ignored": self.ignored}

    def summary(self) -> str:
        line = "columns used:"
        kinds = (
            ("numeric", self.numeric),
            ("categorical", self.categorical),
            ("text", self.text),
            ("image", self.image),
        )
        for kind, names in kinds:
            if names:
                line += f" {len(names)} {kind} ({', '.join(names)})"
        others = {c: why for c, why in self.ignored.items() if why != "the target"}
        if others:
            line += "; ignored: " + ", ".join(f"{c} ({why})" for c, why in others.items())
        return line


def resolve(config: Config, frame: pd.DataFrame, source: str = "", image: str | None = None) -> Columns:
    """The feature columns: those listed under preprocessing, or by default every column not used
    otherwise (target, time, split column, data.drop), text columns as categorical. For time series
    the target is a feature too: the model reads its past values. With a column of image files
    (`image`: a folder's, or preprocessing.image.column) the images are the only input, unless
    model.branches gives the table's columns and the images a branch each: then the images are one
    input beside the others."""
    pre = config.preprocessing
    names = [str(c) for c in frame.columns]
    _check_listed(config, names)
    ignored = _set_aside(config, frame, names)
    if image is not None and not config.model.branches:
        why = "images are the model's input (preprocessing.image.column)"
        ignored.update({c: why for c in names if c != image and c not in ignored})
        return Columns([], [], ignored, image=[image])
    text = list(pre.text.columns) if pre.text is not None else []
    _check_text(config, frame, text, source)
    free = [c for c in names if c not in ignored and c not in text and c != image]
    numeric, categorical, notes = _kinds(config, frame, free, ignored, source)
    cols = Columns(numeric, categorical, ignored, notes=notes, text=text, image=[image] if image else [])
    if pre.text is not None and pre.text.output_mode == "int" and (numeric or categorical):
        if not config.model.branches:
            raise DataError(
                f"{config.where('preprocessing', 'text', 'output_mode')}: int gives token sequences for an "
                "Embedding, which cannot take the other feature columns too "
                f"({', '.join(numeric + categorical)}): add them to data.drop, give the text a branch of "
                "its own that starts with an Embedding (model.branches), or use output_mode: tf_idf, "
                "multi_hot or count to combine them"
            )
    if not numeric and not categorical and not text and not image:
        raise DataError(
            f"{source}: no feature columns are left (the file has {', '.join(names)}; "
            f"ignored: {', '.join(f'{c} ({w})' for c, w in cols.ignored.items())})"
        )
    cols.notes += [
        f"{source}: categorical column {c!r} has {frame[c].nunique()} distinct values in {len(frame)} "
        "rows, so it tells rows apart more than it describes them (an id or a name?): add it to "
        "data.drop, or set preprocessing.categorical.encode: embedding"
        for c in categorical
        if id_like(frame[c])
    ]
    return cols


def _kinds(
    config: Config, frame: pd.DataFrame, free: list[str], ignored: dict[str, str], source: str
) -> tuple[list[str], list[str], list[str]]:
    """`(numeric, categorical, notes)` among the `free` columns: as listed, else numbers are numeric
    and text (or numbers mixed with text in many rows) categorical, ids and names set aside into
    `ignored` with the reason."""
    pre = config.preprocessing
    listed_categorical = pre.categorical.columns
    mixed = {c: _mixed(frame[c]) for c in free}  # numbers and text, each in many rows: not numbers
    notes: list[str] = []
    if pre.numeric.columns is not None:
        numeric = list(pre.numeric.columns)
    else:
        numeric = [
            c for c in free if c not in (listed_categorical or []) and not _is_text(frame[c]) and not mixed[c]
        ]
    if listed_categorical is not None:
        categorical = list(listed_categorical)
    else:
        categorical = [c for c in free if c not in numeric and (_is_text(frame[c]) or mixed[c])]
        for c in [c for c in categorical if id_like(frame[c])]:
            categorical.remove(c)
            kind = f"numbers and text ({mixed[c]})" if mixed[c] else "text"
            ignored[c] = (
                f"{kind} with {frame[c].nunique()} distinct values in {len(frame)} rows, an id or a name: "
                "list it under preprocessing.categorical.columns to use it"
            )
        notes += [
            f"{source}: column {c!r} mixes numbers and text ({mixed[c]}): read as categories, not as a "
            "number column with mistakes; list it under preprocessing.numeric.columns if the text is "
            "a mistake to fix"
            for c in categorical
            if mixed[c]
        ]
    listing = "numeric" if pre.numeric.columns is not None else "categorical"
    for c in free:
        if c not in numeric and c not in categorical and c not in ignored:
            ignored[c] = f"not listed in preprocessing.{listing}.columns"
    return numeric, categorical, notes


def _set_aside(config: Config, frame: pd.DataFrame, names: list[str]) -> dict[str, str]:
    """Columns that are not features, by why: data.drop, the target (a feature of a series), the time
    and split columns, and pandas' unnamed row numbers."""
    data = config.data
    ignored = {c: "data.drop" for c in data.drop}
    roles = {
        data.time_column: "the time column",
        data.split.column: "the split column",
        data.split.key: "the split key, data.split.key",
        data.series_id: "the series id, data.series_id",
    }
    if config.preprocessing.window is None:
        roles.update(dict.fromkeys(data.targets, "the target"))
    for column, why in roles.items():
        if column in names:
            ignored.setdefault(column, why)
    for c in names:
        if c.startswith("Unnamed: ") and c not in ignored and is_row_number(frame[c]):
            ignored[c] = "a row number (an index written without a name, as pandas does)"
    return ignored


def id_like(values: pd.Series) -> bool:
    """More distinct values than ID_SHARE of the rows (20 rows or more): an id or a name."""
    return len(values) >= 20 and values.nunique() > ID_SHARE * len(values)


def is_row_number(values: pd.Series) -> bool:
    """Whole numbers counting up by one: a row number (or an id given in order)."""

    if not pd.api.types.is_integer_dtype(values):
        return False
    steps = np.diff(values.to_numpy())
    return len(values) > 1 and bool((steps == 1).all())


def _check_listed(config: Config, names: list[str]) -> None:
    pre = config.preprocessing
    problems = []
    for key, listed in (
        (("data", "drop"), config.data.drop),
        (("preprocessing", "numeric", "columns"), pre.numeric.columns or []),
        (("preprocessing", "categorical", "columns"), pre.categorical.columns or []),
        (("preprocessing", "text", "columns"), pre.text.columns if pre.text is not None else []),
        (("preprocessing", "image", "column"), [pre.image.column] if pre.image.column else []),
    ):
        for i, name in enumerate(listed):
            if name not in names:
                where = config.where(*key) if key[-1] == "column" else config.where(*key, i)
                problems.append(
                    f"{where}: column {name!r} not found in the data (it has "
                    f"{', '.join(names)}){suggest(name, names)}"
                )
    if problems:
        raise DataError("\n".join(problems))


def _check_text(config: Config, frame: pd.DataFrame, text: list[str], source: str) -> None:
    """Columns listed as text hold words, not numbers."""

    for i, column in enumerate(text):
        values = frame[column]
        if _is_text(values) or values.isna().all():
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        first = numbers.index[numbers.notna().argmax()]
        raise DataError(
            f"{config.where('preprocessing', 'text', 'columns', i)}: column {column!r} holds numbers, not "
            f"text ({int(numbers.notna().sum())} of {len(values)} values are numbers, the first "
            f"{values[first]!r} at {source} {row_where(source, first)}): list it under "
            "preprocessing.numeric.columns, or categorical.columns if the numbers name categories"
        )


def _is_text(values: pd.Series) -> bool:
    """A column of words, not of numbers with a stray word: fewer than half its values are numbers."""

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    present = values.dropna()
    if present.empty:
        return False
    return pd.to_numeric(present, errors="coerce").notna().mean() < 0.5


#: A column whose values are mostly numbers is read as text when at least this share of them is not:
#: Titanic's Ticket (230 of 891 like 'A/5 21171') is an identifier, not a number column with typos.
MIXED_SHARE = 0.1


def _mixed(values: pd.Series) -> str | None:
    """How a column mixes numbers and text ("230 of 891 values text, such as 'A/5 21171'") when
    at least MIXED_SHARE of its values are text and at least half numbers; else None."""

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    present = values.dropna()
    if present.empty:
        return None
    words = present[pd.to_numeric(present, errors="coerce").isna()]
    if len(words) < MIXED_SHARE * len(present) or len(words) * 2 > len(present):
        return None
    return f"{len(words)} of {len(present)} values text, such as {words.iloc[0]!r}"


def check_table(config: Config, frame: pd.DataFrame, cols: Columns, source: str) -> None:
    """Every check on values, over the whole file: empty targets, text or ±inf in numeric columns,
    features empty in every row. Counts are the file's, lines the file's."""
    check_rows(config, frame, cols, source)
    empty = [c for c in [*cols.numeric, *cols.categorical] if frame[c].isna().all()]
    if empty:
        raise DataError(
            f"{source}: column(s) {', '.join(map(repr, empty))} are empty in all {len(frame)} rows; "
            "add them to data.drop"
        )


def check_rows(config: Config, frame: pd.DataFrame, cols: Columns, source: str, part: str = "") -> None:
    """The checks each row passes on its own: an empty target, text or ±inf in a numeric column.
    `part`: what the counts are of, when `frame` is a piece of the file (a streamed unit)."""
    numeric = list(cols.numeric)
    for output in config.outputs:
        target = output.column
        if target in frame.columns:
            missing = frame[target].isna()
            if missing.any():
                fix = "drop those rows or fill them in"
                if config.preprocessing.window is not None:
                    fix += " (for a series: preprocessing.series.missing: interpolate or ffill)"
                raise DataError(
                    f"{source}: target {target!r} {row_where(source, frame.index[missing.argmax()])} is "
                    f"empty ({int(missing.sum())} of {len(frame)} rows{part}); {fix}"
                )
        if output.task != "regression" and target in numeric:
            numeric.remove(target)
        if output.task == "regression" and target in frame.columns and target not in numeric:
            numeric.append(target)
    check_numeric(frame, numeric, source, config.preprocessing.numeric.non_finite == "missing")


def check_numeric(frame: pd.DataFrame, columns: list[str], source: str, inf_is_missing: bool = False) -> None:
    """Refuse text in a numeric column instead of silently turning it into NaN, and ±inf unless
    `preprocessing.numeric.non_finite: missing` asked for it to be imputed."""

    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numbers = values
        else:
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values[numbers.isna() & values.notna()]
            if len(bad):
                raise DataError(
                    not_a_number(
                        source,
                        column,
                        bad.index[0],
                        repr(bad.iloc[0]),
                        f"({len(bad)} such rows); list the column under preprocessing.categorical.columns "
                        "if it holds categories, add the value to data.na_values if it marks a missing "
                        "value, or fix it",
                    )
                )
        if inf_is_missing or pd.api.types.is_bool_dtype(numbers):
            continue
        infinite = np.isinf(numbers.to_numpy(dtype="float64", na_value=np.nan))
        if infinite.any():
            first = int(np.argmax(infinite))
            value = values.iloc[first]
            shown = value if isinstance(value, str) else float(value)
            raise DataError(
                f"{source}: column {column!r} {row_where(source, values.index[first])}: "
                f"{shown!r} is not a finite number ({int(infinite.sum())} such rows); fix "
                "the value, leave the cell empty to have it imputed, or set "
                "preprocessing.numeric.non_finite: missing to impute every ±inf"
            )


def target_values(frame: pd.DataFrame, column: str, task: str, source: str) -> np.ndarray:
    """The target column as an array: float64 for regression, labels (text or integers) otherwise."""

    if column not in frame.columns:
        raise DataError(
            f"{source}: the target column {column!r} is missing (the file has "
            f"{', '.join(map(str, frame.columns))})"
        )
    values = frame[column]
    if values.isna().any():
        raise DataError(
            f"{source}: target {column!r} {row_where(source, values.index[values.isna().argmax()])} is "
            f"empty ({int(values.isna().sum())} of {len(values)} rows); drop those rows or fill them in"
        )
    if task == "regression":
        check_numeric(frame, [column], source)
        return values.to_numpy(dtype="float64")
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.to_numpy()
    if pd.api.types.is_float_dtype(values):  # 0.0/1.0 labels are the classes 0 and 1
        whole = (values == values.round()).all()
        return values.to_numpy(dtype="int64" if whole else "float64")
    return values.to_numpy(dtype=object)
