"""Column transformers following scikit-learn's contract: parameters in `__init__`, `fit` returns
self, learned state ends in `_`, and `get_state()` / `from_state()` round-trip through JSON.

scikit-learn fits them (SimpleImputer, the scalers, OneHotEncoder, LabelEncoder); only the learned
numbers are kept, so a run directory never holds a pickle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlcli.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def _plain(values) -> list:
    """NumPy scalars to JSON-safe Python values."""
    return [v.item() if hasattr(v, "item") else v for v in values]


class _Stateful:
    _params: tuple[str, ...] = ()
    _learned: tuple[str, ...] = ()

    def get_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*self._params, *self._learned)}

    @classmethod
    def from_state(cls, state: dict[str, Any]):
        obj = cls(**{k: state[k] for k in cls._params})
        for key in cls._learned:
            setattr(obj, key, state[key])
        return obj


def fit_scale(values: np.ndarray, scale: str) -> tuple[list[float], list[float]]:
    """`(center, scale)` such that `(x - center) / scale` applies the named scikit-learn scaler."""
    import numpy as np
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    width = values.shape[1]
    if scale == "none":
        return [0.0] * width, [1.0] * width
    if scale == "standard":
        fitted = StandardScaler().fit(values)
        center, factor = fitted.mean_, fitted.scale_
    elif scale == "minmax":
        fitted = MinMaxScaler().fit(values)
        center, factor = fitted.data_min_, np.where(fitted.data_range_ == 0, 1.0, fitted.data_range_)
    else:
        fitted = RobustScaler().fit(values)
        center, factor = fitted.center_, fitted.scale_
    return _plain(center), _plain(factor)


class NumericTransformer(_Stateful):
    """Impute then scale numeric columns.

    >>> NumericTransformer(["a"], impute="median").fit(frame).transform(frame)
    """

    _params = ("columns", "impute", "fill_value", "scale")
    _learned = ("statistics_", "center_", "scale_")

    def __init__(
        self, columns: list[str], impute: str = "mean", fill_value: float = 0.0, scale: str = "standard"
    ):
        self.columns, self.impute, self.fill_value, self.scale = columns, impute, fill_value, scale

    def fit(self, frame: pd.DataFrame) -> NumericTransformer:
        from sklearn.impute import SimpleImputer

        values = frame[self.columns].to_numpy(dtype="float64")
        if self.impute == "none":
            self.statistics_ = [None] * len(self.columns)
        else:
            strategy = {"mean": "mean", "median": "median", "constant": "constant"}[self.impute]
            imputer = SimpleImputer(strategy=strategy, fill_value=self.fill_value, keep_empty_features=True)
            values = imputer.fit_transform(values)
            self.statistics_ = _plain(imputer.statistics_)
        self.center_, self.scale_ = fit_scale(values, self.scale)
        return self

    def transform(self, frame: pd.DataFrame, source: str = "") -> np.ndarray:
        import numpy as np

        values = frame[self.columns].to_numpy(dtype="float64")
        missing = np.isnan(values)
        if missing.any():
            if self.impute == "none":
                row, col = np.argwhere(missing)[0]
                raise DataError(
                    f"{source}: column {self.columns[col]!r} row {row + 1} is missing and "
                    "preprocessing.numeric.impute is none: set impute to mean, median or constant"
                )
            values = np.where(missing, np.asarray(self.statistics_, dtype="float64"), values)
        return ((values - np.asarray(self.center_)) / np.asarray(self.scale_)).astype("float32")


class CategoricalEncoder(_Stateful):
    """Impute then one-hot encode text columns; a category unseen in training encodes as all zeros."""

    _params = ("columns", "impute", "fill_value")
    _learned = ("categories_", "fill_")

    def __init__(self, columns: list[str], impute: str = "constant", fill_value: str = "missing"):
        self.columns, self.impute, self.fill_value = columns, impute, fill_value
        self.unknown_counts_: dict[str, int] = {}

    def _as_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.columns].astype("object").where(frame[self.columns].notna(), None)

    def fit(self, frame: pd.DataFrame) -> CategoricalEncoder:
        from sklearn.preprocessing import OneHotEncoder

        text = self._as_text(frame)
        if self.impute == "most_frequent":
            self.fill_ = [
                str(text[c].dropna().astype(str).mode().iat[0]) if text[c].notna().any() else self.fill_value
                for c in self.columns
            ]
        else:
            self.fill_ = [self.fill_value] * len(self.columns)
        encoder = OneHotEncoder(handle_unknown="ignore").fit(self._filled(text))
        self.categories_ = [_plain(c) for c in encoder.categories_]
        return self

    def _filled(self, text: pd.DataFrame) -> pd.DataFrame:
        return text.fillna(dict(zip(self.columns, self.fill_, strict=True))).astype(str)

    @property
    def width(self) -> int:
        return sum(len(c) for c in self.categories_)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np
        from sklearn.preprocessing import OneHotEncoder

        filled = self._filled(self._as_text(frame))
        self.unknown_counts_ = {
            c: int((~filled[c].isin(cats)).sum())
            for c, cats in zip(self.columns, self.categories_, strict=True)
        }
        # Explicit categories make fit() a no-op on the data: the learned state alone drives the encoding.
        encoder = OneHotEncoder(
            categories=[np.array(c, dtype=object) for c in self.categories_],
            handle_unknown="ignore",
            sparse_output=False,
        )
        encoder.fit(filled.iloc[:1])
        return encoder.transform(filled).astype("float32")


class TargetEncoder(_Stateful):
    """Class labels to indices (classification) or target scaling (regression), and back."""

    _params = ("column", "task", "scale")
    _learned = ("classes_", "center_", "scale_")

    def __init__(self, column: str | None, task: str, scale: str = "none"):
        self.column, self.task, self.scale = column, task, scale
        self.classes_: list | None = None
        self.center_: float = 0.0
        self.scale_: float = 1.0

    def fit(self, y: np.ndarray) -> TargetEncoder:
        import numpy as np

        if self.task == "classification":
            from sklearn.preprocessing import LabelEncoder

            self.classes_ = _plain(LabelEncoder().fit(np.asarray(y)).classes_)
            if len(self.classes_) < 2:
                raise DataError(
                    f"target {self.column!r} has only one class in the training rows "
                    f"({self.classes_[0]!r}); a classifier needs at least two"
                )
        else:
            center, factor = fit_scale(np.asarray(y, dtype="float64").reshape(-1, 1), self.scale)
            self.center_, self.scale_ = center[0], factor[0]
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        import numpy as np

        y = np.asarray(y)
        if self.task == "regression":
            return ((y.astype("float64") - self.center_) / self.scale_).astype("float32")
        lookup = {c: i for i, c in enumerate(self.classes_)}
        codes = [lookup.get(v.item() if hasattr(v, "item") else v) for v in y]
        unknown = [y[i] for i, c in enumerate(codes) if c is None]
        if unknown:
            raise DataError(
                f"target {self.column!r}: label {unknown[0]!r} ({len(unknown)} rows) was not among the "
                f"training labels {self.classes_}; a classifier can only be scored on classes it knows"
            )
        return np.asarray(codes, dtype="int32")

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Model outputs (scaled values, or class indices) in the target's original units."""
        import numpy as np

        if self.task == "regression":
            return np.asarray(values, dtype="float64") * self.scale_ + self.center_
        return np.asarray(self.classes_)[np.asarray(values, dtype=int)]
