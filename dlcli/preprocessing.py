"""Fit preprocessing on the train split, apply it to any split or new file, save it as JSON.

Three kinds of data: `table` (rows → one feature vector each), `timeseries` (rows → sliding windows via
`keras.utils.timeseries_dataset_from_array`) and `image` (arrays kept in their own dtype; rescaling
happens inside the model so predict takes raw pixels).

    >>> prep = Preprocessor.fit(config, loaded.splits["train"])
    >>> x, y = prep.features(frame), prep.encode_target(prep.raw_target(frame))
    >>> Preprocessor.from_json(prep.to_json()).features(frame)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlcli import checks
from dlcli.checks import suggest
from dlcli.config import Config
from dlcli.data import row_where
from dlcli.errors import DataError, RunError
from dlcli.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class Preprocessor:
    def __init__(
        self,
        kind: str,
        task: str,
        label_mode: str | None,
        target: TargetEncoder,
        numeric: NumericTransformer | None = None,
        categorical: CategoricalEncoder | None = None,
        window: dict | None = None,
        image: dict | None = None,
        time_column: str | None = None,
    ):
        self.kind, self.task, self.label_mode = kind, task, label_mode
        self.target_encoder, self.numeric, self.categorical = target, numeric, categorical
        self.window, self.image, self.time_column = window, image, time_column
        self.warnings: list[str] = []

    # ---- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(cls, config: Config, train: Any, source: str = "") -> Preprocessor:
        pre = config.preprocessing
        task = config.task
        target = TargetEncoder(config.data.target_column, task, pre.target.scale)
        label_mode = checks.label_mode(config.loss)
        if isinstance(train, tuple):  # image arrays
            x, y = train
            image = {"shape": list(x.shape[1:]), "dtype": str(x.dtype), "rescale": pre.image.rescale}
            prep = cls("image", task, label_mode, target.fit(y), image=image)
        else:
            kind = "timeseries" if pre.window is not None else "table"
            window = pre.window.model_dump() if pre.window is not None else None
            numeric_cols, categorical_cols = feature_columns(config, list(train.columns))
            _check_not_empty(train, numeric_cols + categorical_cols, source)
            _check_numeric(train, numeric_cols, source, pre.numeric.non_finite == "missing")
            numeric = NumericTransformer(
                numeric_cols,
                pre.numeric.impute,
                pre.numeric.fill_value,
                pre.numeric.scale,
                pre.numeric.non_finite,
            )
            try:
                numeric.fit(train)
            except DataError as exc:
                raise DataError(f"{source}: {exc}") from None
            categorical = CategoricalEncoder(
                categorical_cols, pre.categorical.impute, pre.categorical.fill_value
            ).fit(train)
            y = _target_values(train, target.column, task, source)
            prep = cls(
                kind,
                task,
                label_mode,
                target.fit(y),
                numeric,
                categorical,
                window,
                time_column=config.data.time_column,
            )
        if label_mode == "binary" and len(prep.target_encoder.classes_) != 2:
            raise DataError(
                f"loss {config.loss} needs exactly 2 classes, but target {target.column!r} has "
                f"{len(prep.target_encoder.classes_)}: use sparse_categorical_crossentropy"
            )
        return prep

    # ---- shapes the model needs ----------------------------------------------------------------
    @property
    def input_shape(self) -> list[int]:
        if self.kind == "image":
            return self.image["shape"]
        width = len(self.numeric.columns) + self.categorical.width
        return [self.window["length"], width] if self.kind == "timeseries" else [width]

    @property
    def input_dtype(self) -> str:
        return self.image["dtype"] if self.kind == "image" else "float32"

    @property
    def n_classes(self) -> int | None:
        return len(self.target_encoder.classes_) if self.task == "classification" else None

    @property
    def input_columns(self) -> list[str]:
        return [*self.numeric.columns, *self.categorical.columns] if self.numeric else []

    # ---- transforming --------------------------------------------------------------------------
    def features(self, part: Any, source: str = "") -> np.ndarray:
        """Model input for a DataFrame (one row per row) or an image array, checked against training."""
        import numpy as np

        if self.kind == "image":
            x = part[0] if isinstance(part, tuple) else part
            _check_finite_images(x, source)
            if list(x.shape[1:]) != self.image["shape"]:
                raise DataError(
                    f"{source}: images have shape {list(x.shape[1:])} per item (array {list(x.shape)}); "
                    f"the model was trained on {self.image['shape']}: expected an array of shape "
                    f"[n, {', '.join(map(str, self.image['shape']))}]"
                )
            return x
        missing = [c for c in self.input_columns if c not in part.columns]
        if missing:
            raise DataError(
                f"{source}: missing input column(s) {', '.join(map(repr, missing))} (the model was "
                f"trained on {', '.join(self.input_columns)})"
            )
        _check_numeric(part, self.numeric.columns, source, self.numeric.non_finite == "missing")
        blocks = [self.numeric.transform(part, source), self.categorical.transform(part)]
        unknown = self.categorical.unknown_counts(part)
        if unknown:
            counts = ", ".join(f"{n} in {c!r}" for c, n in unknown.items())
            self.warnings.append(f"{source}: categories not seen in training ({counts}) encode as all zeros")
        return np.concatenate(blocks, axis=1)

    def raw_target(self, part: Any, source: str = "") -> np.ndarray:
        if isinstance(part, tuple):
            return part[1]
        return _target_values(part, self.target_encoder.column, self.task, source)

    def encode_target(self, raw: np.ndarray) -> np.ndarray:
        import numpy as np

        codes = self.target_encoder.transform(raw)
        if self.label_mode == "one_hot":
            return np.eye(self.n_classes, dtype="float32")[codes]
        if self.label_mode == "binary":
            return codes.astype("float32").reshape(-1, 1)
        return codes

    def decode(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Model outputs → (predictions in original units or labels, class probabilities or None)."""
        import numpy as np

        outputs = np.asarray(outputs)  # classes need no float64 copy of every probability
        bad = ~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
        if bad.any():
            raise RunError(
                f"the model's output is NaN or infinite for {int(bad.sum())} of {len(outputs)} inputs "
                f"(the first is input {int(np.argmax(bad)) + 1}) although every input was finite: its "
                "weights are not finite; retrain it (a lower optimizer.learning_rate), nothing is written"
            )
        if self.task == "regression":
            values = outputs.reshape(len(outputs), -1)[:, 0].astype("float64")
            return self.target_encoder.inverse(values), None
        if self.label_mode == "binary":
            p1 = outputs.reshape(-1)
            probs = np.stack([1 - p1, p1], axis=1)
        else:
            probs = outputs
        return self.target_encoder.inverse(probs.argmax(axis=1)), probs

    # ---- time series windows -------------------------------------------------------------------
    def window_dataset(
        self,
        series: np.ndarray,
        targets: np.ndarray | None,
        batch_size: int,
        stride: int = 1,
    ):
        """Windows of `length` rows; with targets, each window's target is `horizon` rows after its end.

        Without targets, there is one window ending at every row from `length - 1` on.
        """
        import keras

        length, horizon = self.window["length"], self.window["horizon"]
        data = series if targets is None else series[: len(series) - horizon]
        if targets is not None:
            targets = targets[length - 1 + horizon :]
        return keras.utils.timeseries_dataset_from_array(
            data,
            targets,
            sequence_length=length,
            sequence_stride=stride,
            batch_size=batch_size,
        )

    @property
    def context(self) -> int:
        """Rows before a split's first target row that its first window reads."""
        return self.window["length"] + self.window["horizon"] - 1 if self.window else 0

    # ---- JSON state ----------------------------------------------------------------------------
    def to_json(self) -> str:
        """The state as state_schema defines it, checked on the way out as on the way in."""
        from dlcli.state_schema import PreprocessingState

        state = PreprocessingState(
            kind=self.kind,
            task=self.task,
            label_mode=self.label_mode,
            target=self.target_encoder.get_state(),
            numeric=self.numeric.get_state() if self.numeric else None,
            categorical=self.categorical.get_state() if self.categorical else None,
            window=self.window,
            image=self.image,
            time_column=self.time_column,
        )
        return state.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "preprocessing.json") -> Preprocessor:
        """Rebuild from JSON checked against `state_schema` (typed fields, nothing extra)."""
        from pydantic import ValidationError

        from dlcli.state_schema import PreprocessingState

        try:
            state = PreprocessingState.model_validate_json(text).model_dump()
        except ValidationError as exc:
            # pydantic's own words (a state file is not hand-written), one per key: a union
            # (float | int) fails once per branch
            problems = {}
            for e in exc.errors():
                loc = ".".join(str(p) for p in e["loc"] if p not in ("float", "int", "str", "bool"))
                problems.setdefault(loc, f"{loc}: {e['msg']}")
            problems = "; ".join(list(problems.values())[:5])
            raise RunError(f"{source}: not a valid dlcli preprocessing state ({problems})") from None
        return cls(
            state["kind"],
            state["task"],
            state["label_mode"],
            TargetEncoder.from_state(state["target"]),
            NumericTransformer.from_state(state["numeric"]) if state["numeric"] else None,
            CategoricalEncoder.from_state(state["categorical"]) if state["categorical"] else None,
            state["window"],
            state["image"],
            state["time_column"],
        )


def feature_columns(config: Config, columns: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns: by default every column not otherwise used.

    For time series the target is also a feature: the model reads its past values.
    """
    pre, data = config.preprocessing, config.data
    categorical = list(pre.categorical.columns)
    if pre.numeric.columns is not None:
        numeric = list(pre.numeric.columns)
    else:
        skip = {data.time_column, data.split.column, *categorical}
        if pre.window is None:
            skip.add(data.target_column)
        numeric = [c for c in columns if c not in skip]
    problems, names_in_data = [], [str(c) for c in columns]
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for i, name in enumerate(names):
            if name not in columns:
                problems.append(
                    f"{config.where('preprocessing', kind, 'columns', i)}: column {name!r} not found in "
                    f"the data (it has {', '.join(names_in_data)}){suggest(name, names_in_data)}"
                )
    if problems:
        raise DataError("\n".join(problems))
    return numeric, categorical


def _check_not_empty(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """A feature with no value in any training row carries nothing to learn from."""
    empty = [c for c in columns if frame[c].isna().all()]
    if empty:
        raise DataError(
            f"{source}: column(s) {', '.join(map(repr, empty))} are empty in all {len(frame)} training rows; "
            "drop them from the file or list only the useful ones under preprocessing.numeric.columns"
        )


def _check_numeric(
    frame: pd.DataFrame, columns: list[str], source: str, inf_is_missing: bool = False
) -> None:
    """Refuse text in a numeric column instead of silently turning it into NaN, and ±inf unless
    `preprocessing.numeric.non_finite: missing` asked for it to be imputed."""
    import numpy as np
    import pandas as pd

    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numbers = values
        else:
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values[numbers.isna() & values.notna()]
            if len(bad):
                raise DataError(
                    f"{source}: column {column!r} {row_where(source, bad.index[0])}: {bad.iloc[0]!r} is not "
                    f"a number ({len(bad)} such rows); list the column under "
                    "preprocessing.categorical.columns if it holds categories, or fix the value"
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


def _check_finite_images(x: np.ndarray, source: str) -> None:
    """Float pixels that are NaN or ±inf would give NaN outputs: refuse them, naming the first image."""
    import numpy as np

    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{source}: image {int(np.argmax(bad))} (counting from 0) holds NaN or infinite pixels "
            f"({int(bad.sum())} such images of {len(x)}); fix or drop them"
        )


def _target_values(frame: pd.DataFrame, column: str, task: str, source: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(
            f"{source}: the target column {column!r} is missing (the file has "
            f"{', '.join(map(str, frame.columns))})"
        )
    values = frame[column]
    if values.isna().any():
        row = values.index[values.isna()][0]
        raise DataError(
            f"{source}: target {column!r} {row_where(source, row)} is empty ({int(values.isna().sum())} "
            "rows); drop those rows or fill them in"
        )
    if task == "regression":
        _check_numeric(frame, [column], source)
        return values.to_numpy(dtype="float64")
    return values.to_numpy(dtype=object) if not _is_int_like(values) else values.to_numpy()


def _is_int_like(values: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values)
