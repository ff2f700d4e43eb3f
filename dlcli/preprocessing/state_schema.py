"""The schema of `preprocessing.json`: a run directory from elsewhere is checked before it is used.

Every field is typed and nothing extra is allowed, so a tampered or corrupted file is refused with a
message instead of reaching NumPy or Keras.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

Label = StrictStr | StrictInt | StrictFloat | StrictBool
Number = StrictFloat | StrictInt


class _Closed(BaseModel):
    # NaN and ±inf (JSON's NaN, Infinity, or 1e999) are refused: no fitted statistic is ever one
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TargetState(_Closed):
    column: StrictStr | None
    task: Literal["classification", "regression"]
    scale: Literal["standard", "minmax", "robust", "none"]
    classes_: list[Label] | None
    center_: Number
    scale_: Number


class NumericState(_Closed):
    columns: list[StrictStr]
    impute: Literal["mean", "median", "constant", "none"]
    fill_value: Number
    scale: Literal["standard", "minmax", "robust", "none"]
    non_finite: Literal["error", "missing"] = "error"  # absent in runs of dlcli before 0.2
    statistics_: list[Number | None]
    center_: list[Number]
    scale_: list[Number]


class CategoricalState(_Closed):
    columns: list[StrictStr]
    impute: Literal["most_frequent", "constant"]
    fill_value: StrictStr
    encode: Literal["one_hot", "ordinal", "embedding"] = "one_hot"  # absent in runs of dlcli before 0.3
    categories_: list[list[Label]]
    fill_: list[StrictStr]


class WindowState(_Closed):
    length: StrictInt
    horizon: StrictInt
    stride: StrictInt
    difference: Literal[0, 1] = 0  # absent in runs of dlcli before 0.3
    series_id: StrictStr | None = None  # data.series_id; absent in runs of dlcli before 0.6


class ImageState(_Closed):
    shape: list[StrictInt]
    dtype: StrictStr
    rescale: Number | None
    # image files (kind image_files; absent for arrays and in runs of dlcli before 0.4)
    column: StrictStr | None = None
    size: list[StrictInt] | None = None
    channels: StrictInt | None = None
    crop_to_aspect_ratio: StrictBool = False
    pad_to_aspect_ratio: StrictBool = False
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3"] = "bilinear"


class TextState(_Closed):
    columns: list[StrictStr]
    output_mode: Literal["int", "multi_hot", "count", "tf_idf"]
    max_tokens: StrictInt | None
    ngrams: StrictInt | None
    output_sequence_length: StrictInt | None
    standardize: Literal["lower_and_strip_punctuation", "lower", "strip_punctuation"] | None
    split: Literal["whitespace", "character"]
    vocabularies_: list[list[StrictStr]]
    idf_weights_: list[list[Number]] | None


class OutputState(_Closed):
    """One target of several: the model output's name, how its labels are encoded, its encoder."""

    name: StrictStr
    label_mode: Literal["sparse", "one_hot", "binary"] | None
    target: TargetState


class PreprocessingState(_Closed):
    format: Literal["dlcli.preprocessing/1"] = "dlcli.preprocessing/1"
    kind: Literal["table", "timeseries", "image", "image_files"]
    task: Literal["classification", "regression"]
    label_mode: Literal["sparse", "one_hot", "binary"] | None
    target: TargetState
    numeric: NumericState | None
    categorical: CategoricalState | None
    window: WindowState | None
    image: ImageState | None
    time_column: StrictStr | None
    text: TextState | None = None  # absent in runs of dlcli before 0.4
    # several targets (data.target: [a, b]): each output's; task, label_mode and target are the
    # first's. Absent in runs of dlcli before 0.7 and with one target.
    outputs: list[OutputState] | None = None
