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
from dlcli.preprocessing.base import Preprocessor

if TYPE_CHECKING:
    import pandas as pd


class TablePreprocessor(Preprocessor):
    KIND: ClassVar[str] = "table"

    @property
    def streamable(self) -> bool:
        return True

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
        return [*self.numeric.columns, *self.categorical.columns, *(self.text.columns if self.text else [])]

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
        if self.text is None:
            return features
        # the model's named inputs: the feature vector (when there is one) and each raw text column
        return {**({"features": features} if self.feature_width else {}), **self.text.inputs(part)}


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
