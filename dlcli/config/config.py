"""The config: pydantic models (unknown keys refused), YAML with line marks, `-o` overrides.

This module is the single source of truth for every option; the CLI, `config show` and the JSON
Schema derive from it. It imports neither TensorFlow nor pandas, so `dlcli validate` starts instantly.

    >>> cfg = load_config("configs/iris.yaml", ["train.epochs=3"])
    >>> cfg.train.epochs
    3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from dlcli.config import input_checks
from dlcli.config import outputs as outputs_mod
from dlcli.config.checks import CLASSIFICATION_LOSSES, static_problems
from dlcli.config.config_sections import (  # noqa: F401 - re-exported: the config's models live here too
    DEFAULT_TEST,
    AugmentConfig,
    BackboneConfig,
    CategoricalConfig,
    Fraction,
    ImageConfig,
    LayerSpec,
    ModelConfig,
    NumericConfig,
    OptimizerConfig,
    PreprocessingConfig,
    SearchConfig,
    SeriesConfig,
    SplitConfig,
    Strict,
    TargetConfig,
    TextConfig,
    WindowConfig,
)
from dlcli.config.keypaths import apply_overrides, locate, merge_union_branches, nearest_mark
from dlcli.utils import formats
from dlcli.utils.errors import ConfigError
from dlcli.utils.idx import is_idx
from dlcli.utils.yamlio import Marks, load_marked

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10")
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")


#: The target column of the scikit-learn datasets (and of data.target when not given).
DATASET_TARGET = "target"
#: The label column of a folder of class subfolders (the subfolder's name).
FOLDER_TARGET = "label"


class DataConfig(Strict):
    """Where the data comes from: exactly one of `path`, `url` (with `sha256`) or `dataset`."""

    path: str | None = Field(
        None,
        description="CSV, TSV, Parquet, JSON lines or NPZ, or a folder with one subfolder of images or "
        "text files per class; relative to the config (or found in $DLCLI_DATA_DIR).",
    )
    url: str | None = Field(
        None, description="Downloaded once into the cache (or read from $DLCLI_DATA_DIR/<file name>)."
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="The file's sha256, checked on every read of a url."
    )
    dataset: Literal[KERAS_DATASETS + SKLEARN_DATASETS] | None = Field(  # type: ignore[valid-type]
        None, description="A built-in dataset: Keras' (mnist, fashion_mnist, cifar10) or scikit-learn's."
    )
    target: str | list[str] | None = Field(
        None,
        description="The column to predict (required for a table; default 'target' for datasets, "
        "'label', the subfolder's name, for a folder), or a list of columns: one output each, with "
        "its own loss, metrics and model.heads entry.",
    )
    time_column: str | None = Field(None, description="Sorted on and left out of the features.")
    series_id: str | None = Field(
        None,
        description="Time series: the column naming which series each row belongs to, when one file "
        "holds several (stores, sensors). Windows never cross from one series into another, each series "
        "is split in time order by data.split's fractions, and the column is not a feature.",
    )
    test_path: str | None = Field(
        None, description="A separate labelled file (or folder of class subfolders) used as the test split."
    )
    labels: str | None = Field(
        None,
        description="The labels file of an IDX images file given as data.path (…-labels-idx1-ubyte[.gz], "
        "as MNIST and Fashion-MNIST ship); a folder of the four IDX files needs none.",
    )
    split: SplitConfig = Field(
        SplitConfig(), description="Fractions for validation and test, or a split column."
    )
    header: bool | Literal["auto"] = Field(
        "auto",
        description="Whether the first row of a text file names the columns. auto: it does unless it "
        "holds numbers (or data.columns is given and it differs from them).",
    )
    columns: list[str] | None = Field(
        None, description="Column names for a file without a header row (default column_1, column_2, …)."
    )
    sep: str | None = Field(
        None,
        description="What separates values: ',', '\\t', ';', '|' or whitespace (any run of spaces). "
        "Default: ',' for .csv, tab for .tsv/.tab, sniffed from the file otherwise.",
    )
    quoting: Literal["minimal", "none"] = Field(
        "minimal",
        description="minimal: a field in double quotes may hold separators and newlines; none: quotes "
        "are ordinary characters (for text with stray quotes, like the SMS Spam Collection).",
    )
    na_values: list[str] = Field(
        ["?"],
        description="Values read as missing, besides pandas' own (empty, NA, NaN, null, …); compared "
        "after stripping spaces.",
    )
    strip: bool = Field(
        True,
        description="Strip spaces around column names, values and labels (' <=50K' is '<=50K'), "
        "as scikit-learn's OpenML loader does.",
    )
    drop: list[str] = Field(
        [], description="Columns to ignore (ids, names, free text): neither features nor checked."
    )
    skip_rows: Annotated[int, Field(ge=0)] = Field(
        0,
        description="Lines at the top of a text file to skip before the header or the first row (a "
        "title, a licence, UCI's '|1x3 Cross validator'), as pandas' skiprows.",
    )
    comment: str | None = Field(
        None,
        min_length=1,
        description="Lines of a text file starting with this are skipped (only at a line's start, so a "
        "value may still hold it), e.g. '#'.",
    )
    stream: bool | Literal["auto"] = Field(
        "auto",
        description="Read the table in pieces (CSV, TSV, JSON lines, Parquet; a file, a folder or a glob) "
        "at bounded memory, in two passes: statistics, then training. auto: when the files take more "
        "than a quarter of the memory available.",
    )
    shuffle_buffer: Annotated[int, Field(gt=0)] = Field(
        200_000,
        description="Streamed training: rows shuffled together (besides the order of the pieces, which "
        "every epoch draws afresh from the seed).",
    )
    skip_bad_files: bool = Field(
        False,
        description="Folders of files: skip a file that cannot be decoded (counted in run.json) "
        "instead of stopping with its name.",
    )

    @property
    def target_column(self) -> str:
        """The target; with several, the first (the one a stratified split keeps balanced)."""
        if isinstance(self.target, list):
            return self.target[0]
        if self.target is None and self.folder:
            return FOLDER_TARGET
        return self.target or DATASET_TARGET

    @property
    def targets(self) -> list[str]:
        return list(self.target) if isinstance(self.target, list) else [self.target_column]

    @property
    def folder(self) -> bool:
        """Whether data.path is a folder of class subfolders (images or text files)."""
        return (
            self.path is not None
            and Path(self.path).is_dir()
            and not formats.is_table_folder(self.path)
            and not _idx_folder(Path(self.path))
        )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [k for k in ("path", "url", "dataset") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one data source (got {', '.join(given) or 'none'}; expected one of "
                "path, url or dataset)"
            )
        if self.url is not None and self.sha256 is None:
            raise ValueError(
                "url needs sha256 so the download can be verified (compute it with `sha256sum FILE`)"
            )
        if self.labels is not None and not _is_idx(self.path):
            raise ValueError(
                "labels is the labels file of an IDX images file (data.path: …-images-idx3-ubyte[.gz]); "
                f"data.path {self.path!r} is not one: remove data.labels"
            )
        return self


def _is_npz(path: str | None) -> bool:
    return path is not None and path.lower().endswith(formats.ARRAYS[0])


def _is_idx(path: str | None) -> bool:
    return path is not None and is_idx(path)


def _idx_folder(path: Path) -> bool:
    """A folder holding IDX files (MNIST's family as it ships): arrays, not class subfolders."""
    return path.is_dir() and any(is_idx(p) for p in path.iterdir())


MODE_HELP = "auto: Keras' rule (loss and errors down; accuracy, AUC, cosine similarity up), or min/max."


class EarlyStoppingConfig(Strict):
    monitor: str = Field("val_loss", description="The quantity watched: loss, a metric, or val_ + either.")
    patience: int = Field(10, ge=0, description="Epochs without improvement before training stops.")
    min_delta: float = Field(0.0, ge=0, description="The smallest change that counts as an improvement.")
    mode: Literal["auto", "min", "max"] = Field("auto", description=MODE_HELP)


class CheckpointConfig(Strict):
    monitor: str | None = Field(None, description="Default val_loss, or loss without a validation split.")
    mode: Literal["auto", "min", "max"] = Field("auto", description=MODE_HELP)


class ReduceLROnPlateauConfig(Strict):
    """keras.callbacks.ReduceLROnPlateau: multiply the learning rate by `factor` when the monitored
    quantity has not improved for `patience` epochs."""

    monitor: str | None = Field(None, description="Default: the checkpoint's monitor (val_loss, else loss).")
    factor: float = Field(0.1, gt=0, lt=1, description="The learning rate is multiplied by this.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before it is lowered.")
    min_delta: float = Field(1e-4, ge=0, description="The smallest change that counts as an improvement.")
    min_lr: float = Field(0.0, ge=0, description="It is never lowered below this.")
    mode: Literal["auto", "min", "max"] = Field("auto", description=MODE_HELP)


class DistributionConfig(Strict):
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = Field(
        "auto",
        description="one_device: the first visible GPU, else the CPU. mirrored: every GPU of this "
        "machine (tf.distribute.MirroredStrategy). multi_worker: several machines, the cluster read "
        "from TF_CONFIG or Slurm (tf.distribute.MultiWorkerMirroredStrategy). auto: mirrored when "
        "more than one GPU is visible (or devices > 1), else one_device.",
    )
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Devices of this machine to mirror over: the first N visible GPUs; on a machine "
        "without GPUs, N logical CPU devices sharing its cores (to try a mirrored config on a "
        "laptop; no faster). auto: every visible GPU, else one CPU device.",
    )


class FineTuneConfig(Strict):
    """A second phase after the head has trained: the backbone's top layers learn too, slowly
    (Keras' transfer-learning guide). Its BatchNormalization layers stay frozen, in inference mode."""

    unfreeze: Annotated[int, Field(gt=0)] | Literal["all"] = Field(
        description="How many of the backbone's last layers (keras.Model.layers, from the top) to "
        "train, or all."
    )
    epochs: int = Field(gt=0, description="Epochs of this phase, after train.epochs (or early stopping).")
    learning_rate: float = Field(
        1e-5, gt=0, description="The optimizer's learning rate in this phase (a fresh optimizer)."
    )


class TrainConfig(Strict):
    epochs: int = Field(
        10, gt=0, description="Passes over the training rows (fewer if early stopping stops)."
    )
    batch_size: int = Field(
        32,
        gt=0,
        description="The global batch: with several devices or workers each step splits it "
        "between them, so results stay comparable whatever the hardware.",
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="Stop when the monitored quantity stops improving; model.keras is the best epoch."
    )
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = Field(
        None,
        description="Lower the learning rate when the monitored quantity stops improving ({} for defaults).",
    )
    class_weight: Literal["balanced"] | dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None,
        description="Classification: weight each training row's loss by its class. balanced: "
        "n_rows / (n_classes * rows of the class), as scikit-learn computes it; or {label: weight} "
        "(labels not named weigh 1).",
    )
    fine_tune: FineTuneConfig | None = Field(
        None,
        description="With model.backbone: then unfreeze its top layers and train on at a lower "
        "learning rate; history.csv's phase column tells the phases apart.",
    )
    checkpoint: CheckpointConfig = Field(
        CheckpointConfig(), description="Which epoch's weights are kept as the best (checkpoints/best.keras)."
    )
    steps_per_execution: int | Literal["auto"] = Field(
        "auto",
        description="Steps run per call into TensorFlow; auto is 32, which removes per-step Python "
        "overhead without changing results, and 1 for a model on a backbone (its steps are long; Keras "
        "traces a loop of steps twice); 1 with more than one device or worker, where Keras "
        "3.15 cannot run more (keras-team/keras issue 19246).",
    )
    jit_compile: bool | Literal["auto"] = Field(
        "auto",
        description="XLA compilation; auto (Keras' rule) turns it on only with a GPU, when every layer "
        "supports it and op determinism is off. On a CPU it made every model tried slower.",
    )
    intra_op_threads: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="CPU threads TensorFlow uses inside one operation; 0 is all cores. auto: 1 for a "
        "small model of Dense layers (too little work per step to split: faster epochs, same "
        "results), all cores otherwise.",
    )
    mixed_precision: Literal["mixed_float16", "mixed_bfloat16"] | None = Field(
        None,
        description="Compute in 16-bit floats with float32 weights; the output layer stays float32. "
        "For GPUs (float16) and CPUs or TPUs with bfloat16 units; slower on other CPUs.",
    )
    light_model: Literal["auto", "onnx", "tflite", "off"] | None = Field(
        None,
        description="At the end of training, the model as one small file that takes raw inputs "
        "(export/model.onnx or model.tflite), checked against TensorFlow on the test rows as `dlcli "
        "export` checks it: predict and serve then answer without TensorFlow. auto: ONNX, else TFLite, "
        "where the export extra is installed and the model converts (text and image-file models stay "
        "on TensorFlow, with the reason); off: none. Default: the DLCLI_LIGHT_MODEL environment "
        "variable, else auto. Not written by tune trials and cross-validation folds.",
    )

    @field_validator("light_model", mode="before")
    @classmethod
    def _light_model_switch(cls, value):
        """`light_model: off` is YAML 1.1's false (and `on` its true): read as the words they are."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value

    tensorboard: bool = Field(True, description="TensorBoard logs in the run's tensorboard/ folder.")
    plots: bool = Field(
        True,
        description="PNGs in the run's plots/ folder: learning curves, and a confusion matrix or "
        "predicted against actual, residuals and (time series) the forecast.",
    )
    deterministic: bool | Literal["auto"] = Field(
        "auto", description="TensorFlow op determinism; auto turns it on where no GPU is used."
    )
    distribution: DistributionConfig = Field(
        DistributionConfig(), description="One device, every GPU of a machine, or several machines."
    )
    folds: Annotated[int, Field(ge=2, le=100)] | None = Field(
        None,
        description="Cross-validation (or `dlcli train --folds K`): K runs in one folder, each validating "
        "on one K-th of the rows outside the test split (stratified by class; groups of "
        "data.split.key kept together; for a series, each fold trains on the past and validates on "
        "the next block). data.split.validation is then unused; the test split stays out of every fold.",
    )
    fold: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Which fold of train.folds this run is (1 to folds): set in each fold's run by "
        "`dlcli train --folds`; given by hand, trains that fold alone.",
    )


class MlflowConfig(Strict):
    tracking_uri: str | None = Field(
        None,
        description="Where MLflow keeps runs: a folder, file:///path, sqlite:///mlflow.db or "
        "http://host:5000; default: MLFLOW_TRACKING_URI, else MLflow's own default.",
    )
    experiment: str | None = Field(None, description="The MLflow experiment; default: the config's name.")


class TrackingConfig(Strict):
    mlflow: MlflowConfig | None = Field(
        None,
        description="Log params, per-epoch metrics and the run directory to MLflow "
        "(needs pip install 'dlcli[mlflow]').",
    )


class Config(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Runs go to runs/<name>/.")
    seed: int = Field(42, description="Seeds the split, the weights, dropout and the order of batches.")
    data: DataConfig = Field(description="Where the data comes from and how it is split.")
    preprocessing: PreprocessingConfig = Field(
        PreprocessingConfig(), description="Fitted on the train split only, saved as JSON in the run."
    )
    model: ModelConfig = Field(description="Keras layers by name; the input comes from the data.")
    optimizer: OptimizerConfig = Field(OptimizerConfig(), description="A Keras optimizer and its arguments.")
    loss: str | dict[str, str] = Field(
        description="A Keras loss name; a crossentropy loss means classification, any other regression. "
        "Several targets: one per target, {target: loss}."
    )
    metrics: list[str] | dict[str, list[str]] = Field(
        [],
        description="Keras metric names reported per epoch and in metrics.json; several targets: a list "
        "for every output, or {target: [names]}.",
    )
    loss_weights: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="Several targets: each one's weight in the total loss (default 1)."
    )
    train: TrainConfig = Field(TrainConfig(), description="Epochs, batches, early stopping, devices.")
    tracking: TrackingConfig = Field(TrackingConfig(), description="Experiment tracking (MLflow).")
    search: SearchConfig | None = Field(
        None, description="`dlcli tune`: distributions over config keys; `dlcli train` leaves it aside."
    )

    _source: Path | None = PrivateAttr(None)
    _marks: Marks = PrivateAttr(default_factory=dict)
    _written: str | None = PrivateAttr(None)  # the text `dlcli train DATA --target` wrote (init.yaml)

    @property
    def written(self) -> str | None:
        """The config's text when `dlcli train DATA --target COL` wrote it from the data (the run keeps
        it as init.yaml, comments and all), else None."""
        return self._written

    def keep_written(self, text: str) -> None:
        self._written = text

    def where(self, *path: str | int) -> str:
        """`FILE:LINE:COL: key.path` for messages about a key, as precisely as the marks allow."""
        return locate(tuple(path), self._marks, None if self._source is None else str(self._source))

    @property
    def task(self) -> Literal["classification", "regression", "multitask"]:
        if isinstance(self.loss, dict):
            return "multitask"
        return "classification" if self.loss in CLASSIFICATION_LOSSES else "regression"

    @property
    def outputs(self) -> list[outputs_mod.Output]:
        """One per target, in data.target's order (one, named after the target, for a single one)."""
        return outputs_mod.outputs(self.loss, self.metrics, self.loss_weights, self.data.targets)

    @property
    def several(self) -> bool:
        return len(self.data.targets) > 1

    @property
    def stratify_column(self) -> str | None:
        """The column a split keeps the proportions of: the first classification target's."""
        return next((o.column for o in self.outputs if o.task == "classification"), None)

    @property
    def shuffles(self) -> bool:
        """Whether rows are shuffled before splitting: never for windows of a series."""
        shuffle = self.data.split.shuffle
        return (self.preprocessing.window is None) if shuffle is None else shuffle

    @property
    def has_validation(self) -> bool:
        split = self.data.split
        return split.column is not None or split.validation > 0

    def checkpoint_monitor(self) -> str:
        if self.train.checkpoint.monitor:
            return self.train.checkpoint.monitor
        if self.train.early_stopping is not None:
            return self.train.early_stopping.monitor
        return "val_loss" if self.has_validation else "loss"

    def to_yaml_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=False)


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of the config file, for editors' YAML language servers."""
    schema = Config.model_json_schema()
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "dlcli config"}


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, override and validate a config file; every problem is reported in one ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (resolved to {path.resolve()})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    return load_config_text(text, path, overrides)


def load_config_text(text: str, path: Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A config's text, as if read from `path` (its line marks, and the folder relative paths start in)."""
    raw, marks = load_marked(text, str(path))
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; start from a template with `dlcli init`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level (got {type(raw).__name__})")
    apply_overrides(raw, marks, overrides)
    return validate(raw, marks, path)


def validate(raw: dict, marks: Marks, path: Path) -> Config:
    """Type errors and the checks of `dlcli.config.checks`, all reported together in line order."""
    problems = merge_union_branches(_pydantic_errors(raw), Config)
    problems += static_problems(raw) + outputs_mod.problems(raw)
    problems += _folders(raw, path.parent)
    problems += input_checks.problems(raw, _images(raw, path.parent))
    if problems:
        problems.sort(key=lambda p: nearest_mark(p[0], marks) or (1 << 30, 0))
        raise ConfigError([f"{locate(loc, marks, str(path))}: {msg}" for loc, msg in problems])
    if "search" in raw:  # each searched key with its extreme values in place (dlcli.config.search)
        from dlcli.config import search

        found = search.problems(raw, marks, path, validate)
        if found:
            raise ConfigError(found)
    config = Config.model_validate(raw)
    config._source, config._marks = path, marks
    _resolve_paths(config, path.parent)
    return config


def _folders(raw: dict, base: Path) -> list[tuple[tuple, str]]:
    """A folder as data.path or data.test_path holds a subfolder per class; a file source other than
    NPZ names its target column."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    problems = []
    folder = False
    for key in ("path", "test_path"):
        value = data.get(key)
        if isinstance(value, str) and "://" not in value:
            resolved = _resolve(base, value)
            if resolved.is_dir() and not formats.is_table_folder(resolved) and not _idx_folder(resolved):
                folder = folder or key == "path"
                problem = formats.class_folder_problem(resolved)
                if problem:
                    problems.append((("data", key), problem))
    sources = [data.get(k) for k in ("path", "url") if isinstance(data.get(k), str)]
    path = data.get("path")
    if isinstance(path, str) and not Path(path).suffix and not _resolve(base, path).exists():
        sources = []  # a folder not there yet (no DLCLI_DATA_DIR): train says it is missing
    arrays = (
        _is_npz(sources[0]) or _is_idx(sources[0]) or _idx_folder(_resolve(base, sources[0]))
        if sources
        else False
    )
    if sources and not folder and data.get("target") is None and not arrays:
        problems.append((("data",), "target is required for a path or url: name the column to predict"))
    return problems


def _images(raw: dict, base: Path) -> str | None:
    """What kind of images the data holds: 'files', 'arrays', None (a table) or 'unknown' (a
    data.path not there yet)."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    path = data.get("path") if isinstance(data.get("path"), str) else None
    if data.get("dataset") in KERAS_DATASETS or (path is not None and (_is_npz(path) or _is_idx(path))):
        return "arrays"
    if path is not None and "://" not in path and _idx_folder(_resolve(base, path)):
        return "arrays"
    image = (
        (raw.get("preprocessing") or {}).get("image") if isinstance(raw.get("preprocessing"), dict) else None
    )
    if isinstance(image, dict) and image.get("column") is not None:
        return "files"
    if path is not None and "://" not in path and _resolve(base, path).is_dir():
        return None if formats.is_table_folder(_resolve(base, path)) else "files"
    if path is not None and "://" not in path and not _resolve(base, path).exists():
        return "unknown"
    return None


def _resolve(base: Path, value: str) -> Path:
    """A relative path is the config folder's; one that is not there but is in the offline mirror
    ($DLCLI_DATA_DIR, as for data.url) is read from the mirror."""

    resolved = (base / Path(value).expanduser()).resolve()
    mirror = os.environ.get("DLCLI_DATA_DIR")
    if not resolved.exists() and mirror and not Path(value).expanduser().is_absolute():
        mirrored = (Path(mirror).expanduser() / value).resolve()
        return mirrored if mirrored.exists() else resolved
    return resolved


def _pydantic_errors(raw: dict) -> list[dict]:
    try:
        Config.model_validate(raw)
    except ValidationError as exc:
        return exc.errors()
    return []


def _resolve_paths(config: Config, base: Path) -> None:
    for key in ("path", "test_path", "labels"):
        value = getattr(config.data, key)
        if value is not None and "://" not in value:
            setattr(config.data, key, str(_resolve(base, value)))
    backbone = config.model.backbone
    if backbone is not None and backbone.weights not in (None, "imagenet"):
        backbone.weights = str((base / Path(backbone.weights).expanduser()).resolve())
