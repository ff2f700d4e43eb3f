"""Tables (rows → one feature vector each: numeric, categorical and text columns) and series (rows →
sliding windows of those vectors, keras.utils.timeseries_dataset_from_array's way, optionally
differenced).

    >>> prep = preprocessing.fit(config, loaded.splits["train"])     # a TablePreprocessor
    >>> x = prep.features(frame)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlcli.io import columns as columns_mod
from dlcli.io import images
from dlcli.preprocessing.base import Preprocessor
from dlcli.preprocessing.text import input_name

if TYPE_CHECKING:
    import pandas as pd


class TablePreprocessor(Preprocessor):
    KIND: ClassVar[str] = "table"

    @property
    def streamable(self) -> bool:
        return self.image is None

    @property
    def image_input(self) -> dict | None:
        """A column of image files beside the others (model.branches): its state, else None."""
        return self.image

    def loader(self):
        """With a column of image files: `inputs → inputs` with that column's paths read as pixels."""
        if self.image is None:
            return None
        load, name = images.loader(self.image), input_name(self.image["column"])
        return lambda inputs: {**inputs, name: load(inputs[name])}

    @property
    def feature_width(self) -> int:
        """Values per row in the numeric and categorical feature vector (text not included)."""
        return len(self.numeric.columns) + self.categorical.width

    @property
    def input_shape(self) -> list[int]:
        """One example's shape as the first layer sees it (text vectors appended to the features)."""
        return [self.feature_width + (self.text.width if self.text else 0)]

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
        if not self.numeric:
            return []
        text = self.text.columns if self.text else []
        return [*self.numeric.columns, *self.categorical.columns, *text, *self.image_columns]

    @property
    def image_columns(self) -> list[str]:
        return [self.image["column"]] if self.image is not None else []

    def series_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The numeric columns as the model reads them (a differenced series changes its target's)."""
        return frame

    def features(self, part: Any, source: str = "") -> np.ndarray:
        """Model input for a DataFrame (one row per row), checked against training."""
        self.check_columns(part, source)
        columns_mod.check_numeric(part, self.numeric.columns, source, self.numeric.non_finite == "missing")
        codes = self.categorical.codes(part) if self.categorical.columns else None
        blocks = [
            self.numeric.transform(self.series_input(part), source),
            self.categorical.transform(part, codes),
        ]
        unknown = self.categorical.unknown_counts(part, codes) if codes is not None else {}
        if unknown:
            self.warnings.append(self.categorical.unseen_note(source, unknown))
        features = np.concatenate(blocks, axis=1)
        if self.text is None and self.image is None:
            return features
        # the model's named inputs: the feature vector (when there is one), each raw text column and
        # the paths of the image files (read as batches stream)
        named = {"features": features} if self.feature_width else {}
        if self.text is not None:
            named.update(self.text.inputs(part))
        for column in self.image_columns:
            named[input_name(column)] = images.paths(part, column)
        return named


class SeriesPreprocessor(TablePreprocessor):
    KIND: ClassVar[str] = "timeseries"
    windowed: ClassVar[bool] = True

    @property
    def streamable(self) -> bool:
        return not self.differenced

    @property
    def differenced(self) -> bool:
        return bool(self.window.get("difference"))

    @property
    def input_shape(self) -> list[int]:
        return [self.window["length"], *super().input_shape]

    def series_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """With series differencing, the target column as read by the model is its change from the
        row before (0 on the first row, of each series with data.series_id)."""
        column = self.target_encoder.column
        if not self.differenced or column not in self.numeric.columns:
            return frame
        frame, series = frame.copy(), self.window.get("series_id")
        values = frame[column] if series not in frame.columns else frame.groupby(series, sort=False)[column]
        frame[column] = values.diff().fillna(0.0)
        return frame

    @property
    def target_offset(self) -> int:
        """Rows from a window's first row to its target's."""
        return self.window["length"] - 1 + self.window["horizon"]

    @property
    def context(self) -> int:
        """Rows before a split's first target row that its first window reads."""
        return self.window["length"] + self.window["horizon"] - 1
