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

import numpy as np

from dlcli.config import checks
from dlcli.config.checks import suggest
from dlcli.config.config import Config
from dlcli.io import columns as columns_mod
from dlcli.io.images import DEFAULT_SIZE, loader
from dlcli.preprocessing.state_schema import PreprocessingState
from dlcli.preprocessing.text import TextVectorizer
from dlcli.preprocessing.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder
from dlcli.utils.arrays import check_pixels
from dlcli.utils.errors import ConfigError, DataError, RunError

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
        text: TextVectorizer | None = None,
    ):
        self.kind, self.task, self.label_mode = kind, task, label_mode
        self.target_encoder, self.numeric, self.categorical = target, numeric, categorical
        self.window, self.image, self.time_column = window, image, time_column
        self.text = text
        self.warnings: list[str] = []

    # ---- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, config: Config, train: Any, source: str = "", cols: columns_mod.Columns | None = None
    ) -> Preprocessor:
        """Fitted on the train split; `cols` as data.load resolved them on the whole file."""
        target = TargetEncoder(config.data.target_column, config.task, config.preprocessing.target.scale)
        if isinstance(train, tuple):  # image arrays
            x, y = train
            rescale = config.preprocessing.image.rescale
            image = {"shape": list(x.shape[1:]), "dtype": str(x.dtype), "rescale": rescale}
            prep = cls("image", config.task, checks.label_mode(config.loss), target.fit(y), image=image)
        elif cols is not None and cols.image:  # image files: paths in a column, decoded as they stream
            prep = cls._fit_image_files(config, train, source, cols, target)
        else:
            prep = cls._fit_table(
                config, train, source, cols or columns_mod.resolve(config, train, source), target
            )
        if prep.label_mode == "binary" and len(prep.target_encoder.classes_) != 2:
            raise DataError(
                f"loss {config.loss} needs exactly 2 classes, but target {target.column!r} has "
                f"{len(prep.target_encoder.classes_)}: use sparse_categorical_crossentropy"
            )
        return prep

    @classmethod
    def _fit_image_files(cls, config: Config, train, source: str, cols, target) -> Preprocessor:
        pre = config.preprocessing
        size = list(pre.image.size or DEFAULT_SIZE)
        image = {
            **pre.image.model_dump(include={"rescale", "channels", "interpolation"}),
            **pre.image.model_dump(include={"crop_to_aspect_ratio", "pad_to_aspect_ratio"}),
            "column": cols.image[0],
            "size": size,
            "shape": [*size, pre.image.channels],
            "dtype": "float32",
        }
        y = columns_mod.target_values(train, target.column, config.task, source)
        return cls("image_files", config.task, checks.label_mode(config.loss), target.fit(y), image=image)

    @classmethod
    def of_columns(cls, config: Config, target, numeric, categorical, text=None) -> Preprocessor:
        """A table's or a series' preprocessor from its (fitted or to-be-fitted) column transformers:
        a series (preprocessing.window) with its windows as the state records them. Used by the
        in-memory fit and the streamed statistics pass alike."""
        pre, window = config.preprocessing, None
        if pre.window is not None:
            window = {
                **pre.window.model_dump(),
                "difference": pre.series.difference,
                "series_id": config.data.series_id,
            }
        kind = "timeseries" if window is not None else "table"
        label_mode = checks.label_mode(config.loss)
        return cls(
            kind,
            config.task,
            label_mode,
            target,
            numeric,
            categorical,
            window,
            time_column=config.data.time_column,
            text=text,
        )

    @classmethod
    def _fit_table(cls, config: Config, train, source: str, cols, target) -> Preprocessor:
        """A table or a series: numeric, categorical and text columns, and the target."""
        pre = config.preprocessing
        numeric = NumericTransformer(
            cols.numeric,
            pre.numeric.impute,
            pre.numeric.fill_value,
            pre.numeric.scale,
            pre.numeric.non_finite,
        )
        categorical = CategoricalEncoder(
            cols.categorical, pre.categorical.impute, pre.categorical.fill_value, pre.categorical.encode
        )
        text = None
        if pre.text is not None:
            text = TextVectorizer(cols.text, **pre.text.model_dump(exclude={"columns"}))
        prep = cls.of_columns(config, target, numeric, categorical, text)
        try:
            numeric.fit(prep._series_input(train))
        except DataError as exc:
            raise DataError(f"{source}: {exc}") from None
        categorical.fit(train)
        if text is not None:
            text.fit(train, source)
        y = columns_mod.target_values(train, target.column, config.task, source)
        if prep.differenced:  # the target is the change over `horizon` steps
            horizon = pre.window.horizon
            y = y[horizon:] - y[:-horizon]
        target.fit(y)
        return prep

    @property
    def differenced(self) -> bool:
        return bool(self.window and self.window.get("difference"))

    def _series_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """With series differencing, the target column as read by the model is its change from the
        row before (0 on the first row, of each series with data.series_id)."""
        column = self.target_encoder.column
        if not self.differenced or column not in self.numeric.columns:
            return frame
        frame, series = frame.copy(), self.window.get("series_id")
        values = frame[column] if series not in frame.columns else frame.groupby(series, sort=False)[column]
        frame[column] = values.diff().fillna(0.0)
        return frame

    # ---- shapes the model needs ----------------------------------------------------------------
    @property
    def feature_width(self) -> int:
        """Values per row in the numeric and categorical feature vector (text not included)."""
        return len(self.numeric.columns) + self.categorical.width

    @property
    def input_shape(self) -> list[int]:
        """One example's shape as the first layer sees it (text vectors appended to the features)."""
        if self.image:
            return self.image["shape"]
        width = self.feature_width + (self.text.width if self.text else 0)
        return [self.window["length"], width] if self.kind == "timeseries" else [width]

    @property
    def input_dtype(self) -> str:
        return self.image["dtype"] if self.image else "float32"

    def loader(self):
        """For image files, `path → pixels` to map over a dataset of paths; else None."""
        if self.kind != "image_files":
            return None

        return loader(self.image)

    @property
    def n_classes(self) -> int | None:
        return len(self.target_encoder.classes_) if self.task == "classification" else None

    @property
    def embeddings(self) -> list[tuple[str, int, int]]:
        """`(column, position in the feature vector, rows)` of each categorical column the model
        embeds (categorical.encode: embedding): rows are its categories plus one for unseen."""
        if self.categorical is None or self.categorical.encode != "embedding":
            return []
        start = len(self.numeric.columns)
        return [
            (column, start + i, len(categories) + 1)
            for i, (column, categories) in enumerate(
                zip(self.categorical.columns, self.categorical.categories_, strict=True)
            )
        ]

    @property
    def input_columns(self) -> list[str]:
        if self.kind == "image_files":
            return [self.image["column"]]
        if not self.numeric:
            return []
        return [*self.numeric.columns, *self.categorical.columns, *(self.text.columns if self.text else [])]

    # ---- transforming --------------------------------------------------------------------------
    def features(self, part: Any, source: str = "") -> np.ndarray:
        """Model input for a DataFrame (one row per row) or an image array, checked against training."""

        if self.kind == "image":
            x = part[0] if isinstance(part, tuple) else part
            return check_pixels(x, self.image["shape"], self.image["dtype"], source)
        missing = [c for c in self.input_columns if c not in part.columns]
        if missing:
            raise DataError(
                f"{source}: missing input column(s) {', '.join(map(repr, missing))} (the model was "
                f"trained on {', '.join(self.input_columns)})"
            )
        if self.kind == "image_files":  # the paths; images are read as batches stream (pipeline)
            return part[self.image["column"]].astype(str).to_numpy(dtype=object)
        columns_mod.check_numeric(part, self.numeric.columns, source, self.numeric.non_finite == "missing")
        codes = self.categorical.codes(part) if self.categorical.columns else None
        blocks = [
            self.numeric.transform(self._series_input(part), source),
            self.categorical.transform(part, codes),
        ]
        unknown = self.categorical.unknown_counts(part, codes) if codes is not None else {}
        if unknown:
            self.warnings.append(self.categorical.unseen_note(source, unknown))
        features = np.concatenate(blocks, axis=1)
        if self.text is None:
            return features
        # the model's named inputs: the feature vector (when there is one) and each raw text column
        return {**({"features": features} if self.feature_width else {}), **self.text.inputs(part)}

    def match_labels(self, part: Any, source: str) -> Any:
        """A labelled table whose labels differ from the training classes only by spaces or a trailing
        dot (UCI's adult.test writes `>50K.`) gets the training spelling, with a warning; any other
        unknown label is left for encode_target to refuse."""
        column = self.target_encoder.column
        if self.task != "classification" or isinstance(part, tuple) or column not in part.columns:
            return part
        classes = {str(c): c for c in self.target_encoder.classes_}
        labels = part[column]
        unknown = labels.notna() & ~labels.astype(str).isin(list(classes))
        if not unknown.any():
            return part
        tidy = labels.astype(str).str.strip().str.rstrip(".").str.strip()
        if not tidy[unknown].isin(list(classes)).all():
            return part
        changed = sorted(set(labels[unknown].astype(str)))
        part = part.copy()
        part[column] = labels.where(~unknown, tidy.map(classes))
        self.warnings.append(
            f"{source}: {int(unknown.sum())} labels of {column!r} ({', '.join(map(repr, changed[:4]))}) "
            "differ from the training classes only by spaces or a trailing '.': read as "
            f"{', '.join(repr(str(classes[t])) for t in sorted(set(tidy[unknown])))}"
        )
        return part

    def raw_target(self, part: Any, source: str = "") -> np.ndarray:
        if isinstance(part, tuple):
            return part[1]
        return columns_mod.target_values(part, self.target_encoder.column, self.task, source)

    def encode_target(self, raw: np.ndarray) -> np.ndarray:
        """Targets as the model learns them; with series differencing, row j holds the change from
        row j - horizon (the first `horizon` rows, which no window targets, hold 0)."""

        if self.differenced:
            horizon = self.window["horizon"]
            raw = np.concatenate([np.zeros(horizon), raw[horizon:] - raw[:-horizon]])
        codes = self.target_encoder.transform(raw)
        if self.label_mode == "one_hot":
            return np.eye(self.n_classes, dtype="float32")[codes]
        if self.label_mode == "binary":
            return codes.astype("float32").reshape(-1, 1)
        return codes

    def _codes(self, encoded: np.ndarray) -> np.ndarray:
        """Class indices of encoded targets (codes, one-hot rows or 0/1 columns)."""

        if self.label_mode == "one_hot":
            return encoded.argmax(axis=1)
        return np.asarray(encoded).reshape(len(encoded)).astype(int)

    def class_weights(self, setting: str | dict, encoded: np.ndarray, where: str) -> dict[str, float]:
        """train.class_weight as {class label: weight}: scikit-learn's `balanced`, or the user's."""

        if self.task != "classification":
            raise ConfigError(f"{where}: class weights are for classification (this loss means regression)")
        labels = [str(c) for c in self.target_encoder.classes_]
        if setting == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            codes = self._codes(encoded)
            present = np.unique(codes)
            found = compute_class_weight("balanced", classes=present, y=codes)
            weights = dict.fromkeys(labels, 1.0)
            weights.update({labels[c]: round(float(w), 6) for c, w in zip(present, found, strict=True)})
            return weights
        unknown = [k for k in setting if k not in labels]
        if unknown:
            raise ConfigError(
                f"{where}: {', '.join(map(repr, unknown))} not among the training labels "
                f"({', '.join(labels)}){suggest(unknown[0], labels)}"
            )
        return {label: float(setting.get(label, 1.0)) for label in labels}

    def row_weights(self, per_class: dict[str, float], encoded: np.ndarray) -> np.ndarray:

        return np.asarray(list(per_class.values()), dtype="float32")[self._codes(encoded)]

    def decode(
        self, outputs: np.ndarray, last: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Model outputs → (predictions in original units or labels, class probabilities or None).

        With series differencing the outputs are changes: `last` (each window's last target value) is
        added back.
        """

        outputs = np.asarray(outputs)  # classes need no float64 copy of every probability
        refuse_non_finite(outputs)
        if self.task == "regression":
            values = self.target_encoder.inverse(outputs.reshape(len(outputs), -1)[:, 0].astype("float64"))
            if self.differenced:
                if last is None or len(last) != len(values):
                    raise RunError("a differenced series needs each window's last target value to forecast")
                values = np.asarray(last, dtype="float64") + values
            return values, None
        if self.label_mode == "binary":
            p1 = outputs.reshape(-1)
            probs = np.stack([1 - p1, p1], axis=1)
        else:
            probs = outputs
        return self.target_encoder.inverse(probs.argmax(axis=1)), probs

    # ---- time series windows -------------------------------------------------------------------
    @property
    def target_offset(self) -> int:
        """Rows from a window's first row to its target's."""
        return self.window["length"] - 1 + self.window["horizon"]

    @property
    def context(self) -> int:
        """Rows before a split's first target row that its first window reads."""
        return self.window["length"] + self.window["horizon"] - 1 if self.window else 0

    # ---- JSON state ----------------------------------------------------------------------------
    def to_json(self) -> str:
        """The state as state_schema defines it, checked on the way out as on the way in."""

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
            text=self.text.get_state() if self.text else None,
        )
        return state.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "preprocessing.json") -> Preprocessor:
        """Rebuild from JSON checked against `state_schema` (typed fields, nothing extra)."""
        from pydantic import ValidationError

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
            TextVectorizer.from_state(state["text"]) if state["text"] else None,
        )


def refuse_non_finite(outputs: np.ndarray) -> None:
    """A model output that is NaN or infinite (its inputs were all checked finite): a RunError."""

    bad = ~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    if bad.any():
        raise RunError(
            f"the model's output is NaN or infinite for {int(bad.sum())} of {len(outputs)} inputs "
            f"(the first is input {int(np.argmax(bad)) + 1}) although every input was finite: its "
            "weights are not finite; retrain it (a lower optimizer.learning_rate), nothing is written"
        )
