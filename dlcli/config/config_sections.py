"""The config's `preprocessing` and `model` sections (pydantic models, unknown keys refused), and the
strict base every section of the config uses. config.py holds the rest and re-exports these.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scale = Literal["standard", "minmax", "robust", "none"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class NumericConfig(Strict):
    columns: list[str] | None = Field(None, description="Default: every column not named elsewhere.")
    impute: Literal["mean", "median", "constant", "none"] = Field(
        "mean",
        description="How missing values are filled, from the train split; none: a missing value is an error.",
    )
    fill_value: float = Field(0.0, description="The value impute: constant fills in.")
    scale: Scale = Field("standard", description="The scikit-learn scaler fitted on the train split.")
    non_finite: Literal["error", "missing"] = Field(
        "error",
        description="inf or -inf in a numeric column: error (names the file, line and column) or "
        "missing (imputed like an empty cell).",
    )


class CategoricalConfig(Strict):
    columns: list[str] | None = Field(
        None,
        description="Columns of categories. Default: every column of text (fewer than half its values "
        "numbers) not named elsewhere; [] for none.",
    )
    impute: Literal["most_frequent", "constant"] = Field(
        "constant", description="How an empty cell is filled: the training mode, or fill_value."
    )
    fill_value: str = Field("missing", description="The category impute: constant fills in.")
    encode: Literal["one_hot", "ordinal", "embedding"] = Field(
        "one_hot",
        description="one_hot: one column per category seen in training (unseen: all zeros). ordinal: "
        "one column of category numbers 1…n in training order of frequency (unseen: 0), scaled to "
        "0–1. embedding: those numbers feed a keras Embedding per column inside the model, of "
        "min(50, round(1.6 n^0.56)) dimensions (fast.ai's rule), learned with the rest; for many "
        "categories. Tables only (not with a window).",
    )


class TargetConfig(Strict):
    scale: Scale = Field("none", description="Regression only; undone on every reported number.")


class AugmentConfig(Strict):
    """Keras' random preprocessing layers, inside the model: they change images in training only."""

    flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = Field(
        None, description="keras.layers.RandomFlip's mode."
    )
    rotation: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="keras.layers.RandomRotation: up to this fraction of a full turn either way."
    )
    zoom: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="keras.layers.RandomZoom: in or out by up to this fraction."
    )
    contrast: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="keras.layers.RandomContrast: contrast changed by up to this factor."
    )
    translation: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="keras.layers.RandomTranslation: shifted by up to this fraction of each side."
    )


class ImageConfig(Strict):
    rescale: float | None = Field(None, description="Multiplies pixels inside the model, e.g. 1/255.")
    size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = Field(
        None,
        description="Image files: [height, width] every image is resized to as it is read (default "
        "[224, 224]).",
    )
    channels: Literal[1, 3, 4] = Field(3, description="Image files: 1 grey, 3 RGB, 4 RGBA.")
    crop_to_aspect_ratio: bool = Field(
        False, description="Image files: crop the centre to the target's aspect ratio before resizing."
    )
    pad_to_aspect_ratio: bool = Field(
        False, description="Image files: pad with black to the target's aspect ratio before resizing."
    )
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3"] = Field(
        "bilinear", description="Image files: how pixels are resampled when resized."
    )
    column: str | None = Field(
        None,
        description="A table column holding image file paths (relative to the table's folder); a "
        "folder data.path needs none.",
    )
    augment: AugmentConfig | None = Field(
        None, description="Random changes to training images (Keras preprocessing layers)."
    )


class TextConfig(Strict):
    """Columns of free text, turned into numbers by a keras TextVectorization inside the model (adapted
    on the train split only), so the saved model takes raw strings. Argument names are Keras'."""

    columns: list[str] = Field(min_length=1, description="The columns of free text (a message, a review).")
    output_mode: Literal["int", "multi_hot", "count", "tf_idf"] = Field(
        "int",
        description="int: a sequence of token numbers per text, for an Embedding first layer (then "
        "pooling, LSTM or Conv1D); multi_hot, count, tf_idf: one vector per text over the vocabulary, "
        "for Dense layers, side by side with the numeric and categorical columns.",
    )
    max_tokens: Annotated[int, Field(ge=3)] | None = Field(
        20000, description="The vocabulary's size at most (the most frequent tokens of the train split)."
    )
    ngrams: Annotated[int, Field(ge=1, le=5)] | None = Field(
        None, description="Also count word n-grams up to this length (2: words and pairs of words)."
    )
    output_sequence_length: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="output_mode int: pad or cut every sequence to this many tokens (default: the "
        "longest text of each batch).",
    )
    standardize: Literal["lower_and_strip_punctuation", "lower", "strip_punctuation"] | None = Field(
        "lower_and_strip_punctuation", description="How text is normalised before it is split."
    )
    split: Literal["whitespace", "character"] = Field(
        "whitespace", description="Tokens are words (whitespace) or characters."
    )


class WindowConfig(Strict):
    length: int = Field(gt=0, description="Time steps in each input window.")
    horizon: int = Field(1, ge=1, description="How many steps after the window's last one to predict.")
    stride: int = Field(1, ge=1, description="Steps between the starts of training windows.")


class SeriesConfig(Strict):
    """Time series: gaps in the values, and differencing for series that trend."""

    missing: Literal["error", "ffill", "interpolate", "drop"] = Field(
        "error",
        description="Empty cells in the target and numeric columns: error, ffill (the last value "
        "carried forward), interpolate (linear, between the neighbours) or drop (the rows).",
    )
    difference: Literal[0, 1] = Field(
        0,
        description="1: the model reads the changes between steps and predicts the change from the "
        "window's last value, added back to give the forecast; lets a trending series leave the "
        "range it was trained on. 0: levels.",
    )


class PreprocessingConfig(Strict):
    numeric: NumericConfig = Field(NumericConfig(), description="Numeric columns: imputing and scaling.")
    categorical: CategoricalConfig = Field(CategoricalConfig(), description="Text columns: one-hot encoding.")
    target: TargetConfig = Field(TargetConfig(), description="The column to predict.")
    image: ImageConfig = Field(ImageConfig(), description="Image arrays (NPZ files, Keras datasets).")
    text: TextConfig | None = Field(
        None, description="Free-text columns, vectorized inside the model (Keras TextVectorization)."
    )
    window: WindowConfig | None = Field(
        None, description="Time series: sliding windows of rows, each predicting a later target value."
    )
    series: SeriesConfig = Field(SeriesConfig(), description="Time series: missing values, differencing.")


class SearchConfig(Strict):
    """`dlcli tune`: the keys to search, by their config path, each with a distribution, and how."""

    parameters: dict[str, dict] = Field(
        min_length=1,
        description="Config paths (optimizer.learning_rate, model.layers.0.Dense.units, train.batch_size) "
        "each with one distribution: {loguniform: [low, high]}, {uniform: [low, high]} (step: s), "
        "{int: [low, high]} (step: s, log: true) or {choice: [a, b, ...]}.",
    )
    metric: str | None = Field(
        None, description="The per-epoch quantity to optimize (default: the checkpoint's monitor, val_loss)."
    )
    direction: Literal["auto", "minimize", "maximize"] = Field(
        "auto", description="auto: Keras' rule (losses and errors down; accuracy, AUC, r2 up)."
    )
    trials: Annotated[int, Field(gt=0)] = Field(20, description="Trials that finish (completed or pruned).")
    timeout: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Seconds after which no new trial starts (the running ones finish)."
    )
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="Optuna's TPE (seeded by the config's seed), random, or every combination (grid)."
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops a trial whose validation curve falls behind the others' (Optuna's)."
    )
    folds: Annotated[int, Field(ge=2, le=100)] | None = Field(
        None,
        description="Score each trial by the mean over this many cross-validation folds (each trial a "
        "folder of fold runs, as `dlcli train --folds`); trials are then not pruned.",
    )


Fraction = Annotated[float, Field(ge=0, lt=1)]
#: The test fraction when data.split.test is not given and the data has no test split of its own.
DEFAULT_TEST = 0.2


class SplitConfig(Strict):
    """How rows are divided into train, validation and test."""

    validation: Fraction = Field(
        0.1, description="Fraction of the rows for validation (stratified by class)."
    )
    test: Fraction | None = Field(
        None,
        description=f"Fraction for the test split; default {DEFAULT_TEST} unless the data has its own "
        "test split (data.test_path, an NPZ's x_test, a Keras dataset).",
    )
    shuffle: bool | None = Field(
        None,
        description="Shuffle rows before splitting; false keeps the file's (or time column's) order. "
        "Default: true, false for a time series (preprocessing.window), where true is refused.",
    )
    column: str | None = Field(None, description="A column holding train/validation/test (or 0/1/2).")
    key: str | None = Field(
        None,
        description="A column whose value decides each row's split by a stable hash (an id): the same "
        "row lands in the same split in every run, streamed or not, whatever the order of the rows.",
    )

    @property
    def test_fraction(self) -> float:
        return self.test if self.test is not None else DEFAULT_TEST

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> SplitConfig:
        if self.validation + (self.test or 0) >= 0.9:
            raise ValueError(
                f"validation + test = {self.validation + (self.test or 0):g} leaves too few rows for "
                "training (expected a sum below 0.9)"
            )
        return self


class OptimizerConfig(BaseModel):
    """`name` plus the optimizer's own constructor arguments (checked against Keras at build time)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field("adam", description="A keras.optimizers name, any case; its arguments sit beside it.")


LayerSpec = dict[str, dict[str, Any] | None]


class BackboneConfig(Strict):
    """A pretrained feature extractor from keras.applications, without its classifier top."""

    name: str = Field(description="A keras.applications model: MobileNetV2, ResNet50, EfficientNetB0, …")
    weights: str | None = Field(
        "imagenet",
        description="imagenet (downloaded once by Keras, hash-checked; read from $DLCLI_DATA_DIR/<Keras' "
        "file name> first), a weights file (relative to the config), or null for random weights.",
    )
    trainable: bool = Field(False, description="Train the backbone's weights with the head (usually not).")
    pooling: Literal["avg", "max"] | None = Field(
        "avg", description="How the feature map becomes a vector; null keeps the map for the head."
    )
    arguments: dict[str, Any] = Field(
        {}, description="More constructor arguments of the application (e.g. alpha for MobileNetV2)."
    )


class ModelConfig(Strict):
    input_shape: list[Annotated[int, Field(gt=0)]] | None = Field(
        None, description="Default: the shape of one row of the data."
    )
    backbone: BackboneConfig | None = Field(
        None,
        description="A keras.applications model between the input and model.layers (which are then "
        "the head), its preprocess_input inside the model.",
    )
    branches: dict[str, list[LayerSpec]] | None = Field(
        None,
        description="Layers of their own for some inputs before they join: `features` (the numeric and "
        "categorical columns) and each text column by name, e.g. {Name: [{Embedding: {output_dim: 8}}, "
        "{GlobalAveragePooling1D: {}}]}. An input without a branch joins as it is.",
    )
    combine: Literal["concatenate", "add", "average"] = Field(
        "concatenate",
        description="How the inputs (after their branches) join before model.layers: side by side, or "
        "added or averaged (the same width each).",
    )
    layers: list[LayerSpec] = Field(
        min_length=1,
        description="`- ClassName: {kwargs}`, Keras names; a layer may take a `name` and `inputs: [name, "
        "...]` (input: what enters the list), and `- block: {name, repeat, layers}` repeats a few.",
    )
    heads: dict[str, list[LayerSpec]] | None = Field(
        None,
        description="Several targets: per target, the layers after model.layers that end in its output "
        "(e.g. {price: [{Dense: {units: 1}}]}).",
    )
