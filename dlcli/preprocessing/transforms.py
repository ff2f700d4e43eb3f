"""Column transformers following scikit-learn's contract: parameters in `__init__`, `fit` returns
self, learned state ends in `_`, and `get_state()` / `from_state()` round-trip through JSON.

scikit-learn fits them (SimpleImputer, the scalers, OneHotEncoder, LabelEncoder); only the learned
numbers are kept, so a run directory never holds a pickle.
"""

from __future__ import annotations

import warnings
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from dlcli.io.reading import row_where
from dlcli.preprocessing import state_schema
from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    from dlcli.metrics.running import Moments, Sample


def plain(values) -> list:
    """NumPy scalars to JSON-safe Python values."""
    return [v.item() if hasattr(v, "item") else v for v in values]


class Stateful:
    """Parameters and learned state come from the class's `state` model in state_schema.py, the one
    place they are defined: its fields ending in `_` are learned, the others `__init__` arguments."""

    state: type[BaseModel]

    @classmethod
    def _fields(cls, learned: bool) -> list[str]:
        return [k for k in cls.state.model_fields if k.endswith("_") == learned]

    def get_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.state.model_fields}

    @classmethod
    def from_state(cls, state: dict[str, Any]):
        obj = cls(**{k: state[k] for k in cls._fields(learned=False)})
        for key in cls._fields(learned=True):
            setattr(obj, key, state[key])
        return obj


def fit_scale(values: np.ndarray, scale: str, columns: list[str]) -> tuple[list[float], list[float]]:
    """`(center, scale)` such that `(x - center) / scale` applies the named scikit-learn scaler;
    a DataError naming the column when its statistics overflow (values near ±1e308)."""

    width = values.shape[1]
    if scale == "none" or width == 0:
        return [0.0] * width, [1.0] * width
    # scikit-learn only where a run is fitted: predict through a light runtime never loads it
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    with _overflow_reported_below():
        if scale == "standard":
            fitted = StandardScaler().fit(values)
            center, factor = fitted.mean_, fitted.scale_
        elif scale == "minmax":
            fitted = MinMaxScaler().fit(values)
            center, factor = fitted.data_min_, np.where(fitted.data_range_ == 0, 1.0, fitted.data_range_)
        else:
            fitted = RobustScaler().fit(values)
            center, factor = fitted.center_, fitted.scale_
    check_finite_statistics(columns, values, f"{scale} scaling", center, factor)
    return plain(center), plain(factor)


@contextmanager
def _overflow_reported_below():
    """NumPy's overflow warnings off: check_finite_statistics reports the overflow, by column."""

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def summary_scale(scale: str, moments: Moments, sample: np.ndarray) -> tuple[list[float], list[float]]:
    """`(center, scale)` from running moments and a sample, as scikit-learn's scalers fit them on all
    the rows (a zero scale becomes 1, as they do): what fit_scale gives, in bounded memory."""

    width = len(moments.n)
    if scale == "none" or width == 0:
        return [0.0] * width, [1.0] * width
    eps = 10 * np.finfo("float64").eps
    if scale == "standard":
        center, factor = moments.mean, moments.std()
    elif scale == "minmax":
        center, factor = moments.low, moments.high - moments.low
    else:
        low, center, high = np.percentile(sample, [25, 50, 75], axis=0)
        factor = high - low
    factor = np.where(np.abs(factor) < eps, 1.0, factor)
    return [float(v) for v in center], [float(v) for v in factor]


def check_finite_statistics(columns: list[str], values: np.ndarray, what: str, *stats) -> None:
    """Statistics of huge values (±1e308) overflow to inf or NaN: refuse, naming the column."""

    for i, column in enumerate(columns):
        if all(np.isfinite(np.asarray(stat, dtype="float64")[i]) for stat in stats):
            continue
        largest = np.nanmax(np.abs(values[:, i])) if values.size else float("nan")
        raise DataError(
            f"column {column!r}: its {what} statistics overflow (values as large as {largest:.3g} in the "
            "training rows); bring the column to a sensible range (e.g. divide it by 1e6, or take "
            "its logarithm) before training"
        )


class NumericTransformer(Stateful):
    """Impute then scale numeric columns.

    >>> NumericTransformer(["a"], impute="median").fit(frame).transform(frame)
    """

    state = state_schema.NumericState

    def __init__(
        self,
        columns: list[str],
        impute: str = "mean",
        fill_value: float = 0.0,
        scale: str = "standard",
        non_finite: str = "error",
    ):
        self.columns, self.impute, self.fill_value, self.scale = columns, impute, fill_value, scale
        self.non_finite = non_finite

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        """The columns as float64; ±inf read as missing when `non_finite: missing` asked for it
        (otherwise preprocessing's column check has refused them already)."""

        values = frame[self.columns].to_numpy(dtype="float64")
        if self.non_finite == "missing":
            values[np.isinf(values)] = np.nan
        return values

    def fit(self, frame: pd.DataFrame) -> NumericTransformer:

        values = self._values(frame)
        if self.impute == "none" or not self.columns:  # no numeric column: nothing to fit
            self.statistics_ = [None] * len(self.columns)
        else:
            from sklearn.impute import SimpleImputer  # as fit_scale's scalers: fitting only

            imputer = SimpleImputer(
                strategy=self.impute, fill_value=self.fill_value, keep_empty_features=True
            )
            with _overflow_reported_below():
                raw, values = values, imputer.fit_transform(values)
            check_finite_statistics(self.columns, raw, f"{self.impute} imputation", imputer.statistics_)
            self.statistics_ = plain(imputer.statistics_)
        self.center_, self.scale_ = fit_scale(values, self.scale, self.columns)
        return self

    def fit_summary(self, moments: Moments, sample: Sample, rows: int, source: str) -> NumericTransformer:
        """fit() from a statistics pass's bounded summaries of the train rows (the streamed path):
        running moments, a uniform sample (medians, quartiles) and the row count."""

        width = len(self.columns)
        values = sample.rows[:, :width]
        empty = [c for c, n in zip(self.columns, moments.n, strict=True) if n == 0]
        if empty:
            raise DataError(
                f"{source}: column(s) {', '.join(map(repr, empty))} are empty in every train row; add them "
                "to data.drop"
            )
        if self.impute == "none" or not width:
            self.statistics_ = [None] * width
            fill = np.zeros(width)
        else:
            with np.errstate(all="ignore"):
                if self.impute == "mean":
                    fill = moments.mean
                elif self.impute == "median":
                    fill = np.nanmedian(values, axis=0) if len(values) else np.zeros(width)
                else:
                    fill = np.full(width, float(self.fill_value))
            check_finite_statistics(self.columns, values, f"{self.impute} imputation", fill)
            self.statistics_ = plain(fill)
        filled = sample.filled(np.append(fill, np.zeros(sample.rows.shape[1] - width)))[:, :width]
        self.center_, self.scale_ = summary_scale(self.scale, moments.filled(fill, rows), filled)
        check_finite_statistics(self.columns, values, f"{self.scale} scaling", self.center_, self.scale_)
        return self

    def transform(self, frame: pd.DataFrame, source: str = "") -> np.ndarray:

        values = self._values(frame)
        missing = np.isnan(values)
        if missing.any():
            if self.impute == "none":
                row, col = np.argwhere(missing)[0]
                raise DataError(
                    f"{source}: column {self.columns[col]!r} {row_where(source, frame.index[row])} is "
                    "missing and preprocessing.numeric.impute is none: set impute to mean, median or "
                    "constant"
                )
            values = np.where(missing, np.asarray(self.statistics_, dtype="float64"), values)
        with np.errstate(all="ignore"):
            out = ((values - np.asarray(self.center_)) / np.asarray(self.scale_)).astype("float32")
        bad = ~np.isfinite(out)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(
                f"{source}: column {self.columns[col]!r} {row_where(source, frame.index[row])}: "
                f"{values[row, col]:.6g} is out of range once scaled (float32 holds up to 3.4e38; "
                f"{int(bad.sum())} such value(s)); fix the value or bring the column to a sensible range"
            )
        return out


class CategoricalEncoder(Stateful):
    """Impute then encode text columns: one-hot (a category unseen in training is all zeros) or
    ordinal (one column; categories numbered 1…n by training frequency, divided by n; unseen is 0)."""

    state = state_schema.CategoricalState

    def __init__(
        self,
        columns: list[str],
        impute: str = "constant",
        fill_value: str = "missing",
        encode: str = "one_hot",
    ):
        self.columns, self.impute, self.fill_value, self.encode = columns, impute, fill_value, encode

    def _as_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.columns].astype("object").where(frame[self.columns].notna(), None)

    def fit_counts(self, counts: list[dict], missing: list[int], most: int) -> CategoricalEncoder:
        """fit() from a statistics pass's category counts per column (and empty cells per column) of
        the train rows, keeping at most `most` categories per column (the most frequent)."""
        fills, kept = [], []
        for found, empty in zip(counts, missing, strict=True):
            found = dict(found)
            ranked = sorted(found, key=lambda v: (-found[v], v))
            fill = ranked[0] if self.impute == "most_frequent" and ranked else self.fill_value
            if empty:
                found[fill] = found.get(fill, 0) + empty
            ranked = sorted(found, key=lambda v: (-found[v], v))[:most]
            fills.append(str(fill))
            kept.append(ranked if self.encode in ("ordinal", "embedding") else sorted(ranked))
        self.fill_, self.categories_ = fills, kept
        return self

    def fit(self, frame: pd.DataFrame) -> CategoricalEncoder:
        text = self._as_text(frame)
        if self.impute == "most_frequent":
            self.fill_ = [
                str(text[c].dropna().astype(str).mode().iat[0]) if text[c].notna().any() else self.fill_value
                for c in self.columns
            ]
        else:
            self.fill_ = [self.fill_value] * len(self.columns)
        filled = self._filled(text)
        if self.encode in ("ordinal", "embedding"):  # most frequent first; ties in sorted order
            self.categories_ = [
                plain(
                    filled[c]
                    .value_counts()
                    .sort_index(kind="stable")
                    .sort_values(ascending=False, kind="stable")
                    .index
                )
                for c in self.columns
            ]
        else:
            self.categories_ = [plain(sorted(filled[c].unique())) for c in self.columns]
        return self

    def _filled(self, text: pd.DataFrame) -> pd.DataFrame:
        return text.fillna(dict(zip(self.columns, self.fill_, strict=True))).astype(str)

    @property
    def width(self) -> int:
        if self.encode in ("ordinal", "embedding"):
            return len(self.columns)
        return sum(len(c) for c in self.categories_)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's category number per column (its place in categories_), -1 where unseen:
        one vectorized lookup per column (pandas' Index.get_indexer), which scikit-learn's
        encoders with the categories given would compute row by row, ten times slower."""

        out = np.empty((len(frame), len(self.columns)), dtype="int64")
        for j, (column, categories, fill) in enumerate(
            zip(self.columns, self.categories_, self.fill_, strict=True)
        ):
            values, names = frame[column], [str(c) for c in categories]
            if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
                values = self._filled(self._as_text(frame[[column]]))[column]  # numbers as text
            codes = pd.Index(names, dtype=object).get_indexer(values.astype(object)).astype("int64")
            missing = values.isna().to_numpy()
            if missing.any():  # an empty cell is the imputed category
                codes[missing] = names.index(fill) if fill in names else -1
            out[:, j] = codes
        return out

    def transform(self, frame: pd.DataFrame, codes: np.ndarray | None = None) -> np.ndarray:
        """One-hot rows (an unseen category all zeros), or ordinal / embedding numbers (unseen 0)."""

        if not self.columns:
            return np.zeros((len(frame), 0), dtype="float32")
        codes = self.codes(frame) if codes is None else codes
        if self.encode == "ordinal":
            sizes = np.asarray([len(c) for c in self.categories_], dtype="float64")
            return ((codes + 1) / sizes).astype("float32")
        if self.encode == "embedding":
            return (codes + 1).astype("float32")  # 0 is an unseen category, 1…n the known ones
        out = np.zeros((len(frame), self.width), dtype="float32")
        start, rows = 0, np.arange(len(frame))
        for j, categories in enumerate(self.categories_):
            seen = codes[:, j] >= 0
            out[rows[seen], start + codes[seen, j]] = 1.0
            start += len(categories)
        return out

    def unseen_note(self, source: str, unknown: dict[str, int]) -> str:
        """The warning for categories training never saw, the same on every path (TensorFlow, ONNX,
        TFLite): `unknown` maps a column to its rows of unseen categories."""
        return unseen_note(source, unknown, self.encode)

    def unknown_counts(self, frame: pd.DataFrame, codes: np.ndarray | None = None) -> dict[str, int]:
        """Rows per column whose category was not seen in training (encoded as unknown)."""
        codes = self.codes(frame) if codes is None else codes
        unseen = (codes < 0).sum(axis=0) if len(codes) else [0] * len(self.columns)
        return {c: int(n) for c, n in zip(self.columns, unseen, strict=True) if n}


class TargetEncoder(Stateful):
    """Class labels to indices (classification) or target scaling (regression), and back."""

    state = state_schema.TargetState

    def __init__(self, column: str | None, task: str, scale: str = "none"):
        self.column, self.task, self.scale = column, task, scale
        self.classes_: list | None = None
        self.center_: float = 0.0
        self.scale_: float = 1.0

    def fit_summary(self, classes: list | None, moments: Moments, sample: np.ndarray) -> TargetEncoder:
        """fit() from a statistics pass: the classes counted (classification), or the target's running
        moments and sampled values (regression)."""

        if self.task == "classification":
            return self.fit(np.asarray(sorted(classes)))
        self.center_, self.scale_ = (v[0] for v in summary_scale(self.scale, moments, sample))
        return self

    def fit(self, y: np.ndarray) -> TargetEncoder:

        if self.task == "classification":
            from sklearn.preprocessing import LabelEncoder

            self.classes_ = plain(LabelEncoder().fit(np.asarray(y)).classes_)
            if len(self.classes_) < 2:
                raise DataError(
                    f"target {self.column!r} has only one class in the training rows "
                    f"({self.classes_[0]!r}); a classifier needs at least two"
                )
        else:
            values = np.asarray(y, dtype="float64").reshape(-1, 1)
            center, factor = fit_scale(values, self.scale, [self.column])
            self.center_, self.scale_ = center[0], factor[0]
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:

        y = np.asarray(y)
        if self.task == "regression":
            return ((y.astype("float64") - self.center_) / self.scale_).astype("float32")

        codes = pd.Index(self.classes_, dtype=object).get_indexer(pd.Index(y, dtype=object))
        unknown = Counter(v.item() if hasattr(v, "item") else v for v in y[codes < 0])
        if unknown:
            counts = ", ".join(f"{label!r} ({n} rows)" for label, n in unknown.most_common(5))
            raise DataError(
                f"target {self.column!r}: label(s) {counts} not among the training labels "
                f"{self.classes_}; a classifier can only be scored on classes it knows"
            )
        return np.asarray(codes, dtype="int32")

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Model outputs (scaled values, or class indices) in the target's original units."""

        if self.task == "regression":
            return np.asarray(values, dtype="float64") * self.scale_ + self.center_
        return np.asarray(self.classes_)[np.asarray(values, dtype=int)]


#: What an unseen category becomes, by preprocessing.categorical.encode.
UNSEEN = {"one_hot": "all zeros", "ordinal": "0", "embedding": "the embedding's row for unseen"}


def unseen_note(source: str, unknown: dict[str, int], encode: str) -> str:
    counts = ", ".join(f"{n} in {c!r}" for c, n in unknown.items())
    return f"{source}: categories not seen in training ({counts}) encode as {UNSEEN[encode]}"
