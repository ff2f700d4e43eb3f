"""What every kind of preprocessing shares: the target (encoded for the loss, decoded back to labels or
units), class weights, labels matched to the training spelling, and the JSON state. The kinds are
subclasses (tabular.py: tables and series; pixels.py: image arrays and image files), made by the
factory in preprocessing.py; callers ask a preprocessor what it can do (`windowed`, `streamable`,
`reads_files`, `arrays`, `images`), never which kind it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlcli.config.checks import suggest
from dlcli.io import columns as columns_mod
from dlcli.preprocessing.state_schema import PreprocessingState
from dlcli.utils.errors import ConfigError, DataError, RunError

if TYPE_CHECKING:
    import pandas as pd

    from dlcli.preprocessing.text import TextVectorizer
    from dlcli.preprocessing.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder


class Preprocessor:
    """Fitted on the train split, applied to any split or new file, saved as JSON (to_json)."""

    KIND: ClassVar[str]  # the state's `kind`, which the factory reads back
    windowed: ClassVar[bool] = False  # examples are sliding windows of rows (a series)
    reads_files: ClassVar[bool] = False  # inputs are image files, decoded as batches stream
    arrays: ClassVar[bool] = False  # inputs are NumPy arrays of pixels, not a table
    images: ClassVar[bool] = False  # the model takes pixels (from arrays or decoded files)

    def __init__(
        self,
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
        self.task, self.label_mode = task, label_mode
        self.target_encoder, self.numeric, self.categorical = target, numeric, categorical
        self.window, self.image, self.time_column = window, image, time_column
        self.text = text
        self.warnings: list[str] = []
        #: several targets: a preprocessor per model output (sharing this one's feature transformers),
        #: each with its own target; this one's task is then "multitask" and it has no target itself
        self.outputs: dict[str, Preprocessor] | None = None

    def with_outputs(self, outputs: dict[str, Preprocessor]) -> Preprocessor:
        """This preprocessor as the features of several targets: `outputs`, by model output name, each
        with its own target."""
        self.outputs = outputs
        for view in outputs.values():
            view.warnings = self.warnings  # one list: the label notes of every target
        return self

    @property
    def kind(self) -> str:
        return self.KIND

    # ---- what the model and the data paths ask -------------------------------------------------
    @property
    def streamable(self) -> bool:
        """Whether a file too large for memory can be scored and predicted as it streams past."""
        return False

    @property
    def differenced(self) -> bool:
        return False

    @property
    def context(self) -> int:
        """Rows before a split's first target row that its first window reads."""
        return 0

    @property
    def input_dtype(self) -> str:
        return "float32"

    @property
    def input_columns(self) -> list[str]:
        return []

    @property
    def embeddings(self) -> list[tuple[str, int, int]]:
        return []

    def loader(self):
        """For image files, `path → pixels` to map over a dataset of paths (of named inputs, where the
        images are one input of several); else None."""
        return None

    @property
    def image_input(self) -> dict | None:
        """The state of a column of image files that is one input beside a table's others, else None."""
        return None

    @property
    def decodes_files(self) -> bool:
        """Whether the model reads image files: as its only input, or as one column beside others."""
        return self.reads_files or self.image_input is not None

    @property
    def n_classes(self) -> int | None | dict[str, int | None]:
        """Classes of the target (None for regression); several targets: by output name."""
        if self.outputs is not None:
            return {name: view.n_classes for name, view in self.outputs.items()}
        return len(self.target_encoder.classes_) if self.task == "classification" else None

    @property
    def task(self) -> str:
        return "multitask" if self.outputs is not None else self._task

    @task.setter
    def task(self, value: str) -> None:
        self._task = value

    def features(self, part: Any, source: str = "") -> np.ndarray:
        """Model input for a DataFrame (one row per row) or an image array, checked against training."""
        raise NotImplementedError

    def check_columns(self, part: pd.DataFrame, source: str) -> None:
        """Every input column the model was trained on is in `part`."""
        missing = [c for c in self.input_columns if c not in part.columns]
        if missing:
            raise DataError(
                f"{source}: missing input column(s) {', '.join(map(repr, missing))} (the model was "
                f"trained on {', '.join(self.input_columns)})"
            )

    # ---- the target ----------------------------------------------------------------------------
    def match_labels(self, part: Any, source: str) -> Any:
        """A labelled table whose labels differ from the training classes only by spaces or a trailing
        dot (UCI's adult.test writes `>50K.`) gets the training spelling, with a warning; any other
        unknown label is left for encode_target to refuse."""
        if self.outputs is not None:
            for view in self.outputs.values():
                part = view.match_labels(part, source)
            return part
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

    def raw_target(self, part: Any, source: str = "") -> np.ndarray | dict[str, np.ndarray]:
        """The target column(s) of a labelled part; several targets: by output name."""
        if self.outputs is not None:
            return {name: view.raw_target(part, source) for name, view in self.outputs.items()}
        if isinstance(part, tuple):
            return part[1]
        return columns_mod.target_values(part, self.target_encoder.column, self.task, source)

    def encode_target(self, raw: np.ndarray | dict) -> np.ndarray | dict[str, np.ndarray]:
        """Targets as the model learns them; with series differencing, row j holds the change from
        row j - horizon (the first `horizon` rows, which no window targets, hold 0). Several targets:
        by output name, as the model's outputs are."""
        if self.outputs is not None:
            return {name: view.encode_target(raw[name]) for name, view in self.outputs.items()}

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
            # scikit-learn only where a run is fitted: predict through a light runtime never loads it
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

    # ---- JSON state ----------------------------------------------------------------------------
    def to_json(self) -> str:
        """The state as state_schema defines it, checked on the way out as on the way in."""

        first = next(iter(self.outputs.values())) if self.outputs is not None else self
        state = PreprocessingState(
            kind=self.KIND,
            task=first.task,
            label_mode=first.label_mode,
            target=first.target_encoder.get_state(),
            numeric=self.numeric.get_state() if self.numeric else None,
            categorical=self.categorical.get_state() if self.categorical else None,
            window=self.window,
            image=self.image,
            time_column=self.time_column,
            text=self.text.get_state() if self.text else None,
            outputs=None
            if self.outputs is None
            else [
                {"name": name, "label_mode": view.label_mode, "target": view.target_encoder.get_state()}
                for name, view in self.outputs.items()
            ],
        )
        # one target: no `outputs` key, as runs wrote before several targets existed
        return state.model_dump_json(indent=2, exclude={"outputs"} if self.outputs is None else None)


def refuse_non_finite(outputs: np.ndarray) -> None:
    """A model output that is NaN or infinite (its inputs were all checked finite): a RunError."""

    bad = ~np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    if bad.any():
        raise RunError(
            f"the model's output is NaN or infinite for {int(bad.sum())} of {len(outputs)} inputs "
            f"(the first is input {int(np.argmax(bad)) + 1}) although every input was finite: its "
            "weights are not finite; retrain it (a lower optimizer.learning_rate), nothing is written"
        )
