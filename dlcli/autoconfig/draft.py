"""The text of a first config for a profiled file: the task and loss from the target, each column's role
with its reason beside it, class weights for unbalanced classes, a network, batch size and split sized
to the rows, early stopping. Every choice is a key of the config, and the reasons are its comments.

    >>> text = draft(profile.read(Path("titanic.csv")), "Survived", Path("titanic.yaml"))
    >>> print(text)            # data.drop: [PassengerId, Ticket, Cabin], each with why; ...
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from dlcli.autoconfig import profile as profile_mod
from dlcli.autoconfig.profile import MAX_CLASS_CODES, MAX_CLASSES, Column, Profile
from dlcli.config.checks import suggest
from dlcli.config.config import Config, load_config_text
from dlcli.config.templates import write_new
from dlcli.preprocessing import tokens
from dlcli.utils.errors import DataError

#: The minority class's share under which the classes are weighted (class_weight: balanced).
UNBALANCED = 0.2
#: Free text of at least this many words on average is read as TF-IDF of words and pairs of words.
LONG_TEXT_WORDS = 8
#: Where comments start on a line of the written config.
COMMENT_AT = 40


@dataclass
class Task:
    """What the target asks for: `kind` (classification, regression or series) and why."""

    kind: str
    reason: str
    classes: list = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # rows per class

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


def candidates(profile: Profile) -> list[str]:
    """`column: what it would be as a target`, for every column that could be one."""
    rows = []
    for column in profile.columns.values():
        if column.role not in ("drop", "text", "image", "time"):
            rows.append(f"{column.name} ({task_of(profile, column.name).reason})")
    return rows


def task_of(profile: Profile, target: str) -> Task:
    values = profile.frame[target].dropna()
    counts = values.value_counts()
    whole = values.dtype.kind in "biu" or (
        values.dtype.kind == "f" and bool((values == values.round()).all())
    )
    if values.dtype.kind not in "biuf" or (whole and len(counts) <= MAX_CLASS_CODES):
        if len(counts) > MAX_CLASSES:
            return Task("regression", f"{len(counts)} distinct values of text: too many to be classes")
        classes = sorted(counts.index.tolist(), key=str)
        shown = ", ".join(f"{c} ({counts[c]} row{'' if counts[c] == 1 else 's'})" for c in classes[:6]) + (
            ", …" if len(classes) > 6 else ""
        )
        return Task(
            "classification", f"{len(classes)} classes: {shown}", classes, [int(counts[c]) for c in classes]
        )
    if any(c.role == "time" for c in profile.columns.values()):
        return Task(
            "series", f"numbers over time ({len(counts)} distinct values): a forecast of the next one"
        )
    return Task(
        "regression", f"numbers, {len(counts)} distinct values from {values.min():g} to {values.max():g}"
    )


def draft(
    profile: Profile,
    target: str | None,
    config_path: Path,
    data_path: str | None = None,
    command: str = "init",
) -> str:
    """The config text. DataError without a target (listing the candidates) or with an unknown one.
    `command`: init (`dlcli init --data`, written to `config_path`) or train (`dlcli train DATA`)."""
    _check_target(profile, target)
    task = task_of(profile, target)
    roles = _roles(profile, target, task)
    size = Size.of(profile, target, task, roles)
    name = config_name(profile.path)
    where = data_path if data_path is not None else _relative(profile.path, config_path.parent)
    made = (
        f"dlcli init --data {profile.path.name}" if command == "init" else f"dlcli train {profile.path.name}"
    )
    again = config_path.name if command == "init" else "RUN/init.yaml (its data.path is absolute)"
    lines = [
        f"# Written by `{made} --target {target}` from {profile.rows} rows",
        f"# and {len(profile.columns)} columns. Every choice is a key you can change; the comments say why.",
        f"#   dlcli train {again}",
        f"name: {name}",
        "seed: 42",
        *_data(profile, target, task, roles, where, size),
        *_preprocessing(profile, task, roles, size),
        *_model(profile, task, size),
        *_training(task, size),
    ]
    return "\n".join(lines) + "\n"


def _check_target(profile: Profile, target: str | None) -> None:
    names = list(profile.columns)
    if target is None:
        listed = "\n".join(f"  {row}" for row in candidates(profile))
        raise DataError(
            f"{profile.path}: which column should the model predict? Give it with --target COLUMN; "
            f"the candidates:\n{listed}"
        )
    if target not in names:
        raise DataError(
            f"--target: {profile.path} has no column {target!r}{suggest(target, names)} "
            f"(it has {', '.join(names)})"
        )


def _roles(profile: Profile, target: str, task: Task) -> dict[str, Column]:
    """Each column but the target by role; a time column is dropped unless the task is a series."""
    roles = {c.name: c for c in profile.columns.values() if c.name != target}
    for name, column in roles.items():
        if column.role == "time" and task.kind != "series":
            why = f"{column.reason.split(':')[0]}: a time column orders a series; not a feature of a table"
            roles[name] = replace(column, role="drop", reason=why)
    return roles


@dataclass
class Size:
    """The network, batch and split for this many rows and inputs."""

    rows: int
    inputs: int
    long_text: bool  # free text of LONG_TEXT_WORDS words or more a value: TF-IDF, one Dense layer
    units: int
    layers: int
    batch: int
    learning_rate: float
    epochs: int
    patience: int
    test: float

    @classmethod
    def of(cls, profile: Profile, target: str, task: Task, roles: dict[str, Column]) -> Size:
        rows = int(profile.frame[target].notna().sum())
        inputs = sum(
            c.distinct if c.role == "categorical" else 1
            for c in roles.values()
            if c.role in ("numeric", "categorical")
        )
        small, words = rows < 2000, _long_text(profile)  # words: thousands of inputs already
        return cls(
            rows=rows,
            inputs=inputs,
            long_text=words,
            units=32 if words else 16 if rows < 1000 else 32 if rows < 5000 else 64,
            layers=1 if words else 2,
            batch=16 if rows < 500 else 32 if rows < 5000 else 64,
            learning_rate=0.003 if small else 0.001,
            epochs=50 if task.kind == "series" else 300 if small else 200,
            patience=5 if task.kind == "series" else 20 if small else 10,
            test=0.2 if small else 0.15,
        )


def _scalar(value) -> str:
    """`value` as a YAML scalar: plain where it reads back as the same string, else JSON-quoted."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z_./][A-Za-z0-9_./-]*", text) and text.lower() not in {
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "none",
    }:  # fmt: skip
        return text
    return json.dumps(text, ensure_ascii=False)


def _line(text: str, comment: str = "") -> str:
    return f"{text:<{COMMENT_AT - 1}} # {comment}" if comment else text


def _listed(indent: str, columns: list[Column]) -> list[str]:
    return [_line(f"{indent}- {_scalar(c.name)}", c.reason) for c in columns]


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def _data(profile, target, task, roles, where, size) -> list[str]:
    lines = ["data:", _line(f"  path: {_scalar(where)}", "beside this config, else in $DLCLI_DATA_DIR")]
    for key, value in profile.reading.items():
        lines.append(_line(f"  {key}: {json.dumps(value)}", profile.why[key]))
    lines.append(_line(f"  target: {_scalar(target)}", f"{task.kind}: {task.reason}"))
    time = [c for c in roles.values() if c.role == "time"]
    if time:
        lines.append(_line(f"  time_column: {_scalar(time[0].name)}", time[0].reason))
    dropped = [c for c in roles.values() if c.role == "drop"]
    if dropped:
        lines += ["  drop:", *_listed("    ", dropped)]
    why = {
        "classification": "stratified by class",
        "regression": "shuffled",
        "series": "in time order, never shuffled",
    }[task.kind]
    order = ", shuffle: false" if task.kind == "series" else ""
    lines.append(
        _line(f"  split: {{validation: 0.15, test: {size.test}{order}}}", f"{why}; {size.rows} rows")
    )
    return lines


def _preprocessing(profile, task, roles, size) -> list[str]:
    lines = ["preprocessing:"]
    numeric = [c for c in roles.values() if c.role == "numeric"]
    if numeric or task.kind == "series":
        lines += ["  numeric:", _line("    impute: median", "robust to outliers"), "    scale: standard"]
        if numeric:
            lines += ["    columns:", *_listed("      ", numeric)]
    categorical = [c for c in roles.values() if c.role == "categorical"]
    if categorical:
        lines += ["  categorical:", "    encode: one_hot", "    columns:", *_listed("      ", categorical)]
    text = [c for c in roles.values() if c.role == "text"]
    if text:
        lines += _text(profile, text, size)
    image = [c for c in roles.values() if c.role == "image"]
    if image:
        lines += _image(profile, image[0])
    if task.kind == "regression":
        lines.append(_line("  target: {scale: standard}", "undone on every reported number"))
    if task.kind == "series":
        length = 30 if size.rows >= 1500 else max(4, size.rows // 50)
        lines.append(
            _line(f"  window: {{length: {length}, horizon: 1}}", f"the last {length} steps forecast the next")
        )
    return lines if len(lines) > 1 else []


def _text_values(profile: Profile) -> pd.Series:
    text = [c.name for c in profile.columns.values() if c.role == "text"]
    return (
        pd.concat([profile.frame[c].dropna().astype(str) for c in text]) if text else pd.Series([], dtype=str)
    )


def _long_text(profile: Profile) -> bool:
    values = _text_values(profile)
    return not values.empty and values.str.split().str.len().mean() >= LONG_TEXT_WORDS


def _text(profile: Profile, text: list[Column], size: Size) -> list[str]:
    values = _text_values(profile)
    words = values.str.split().str.len().mean()
    lines = ["  text:", "    columns:", *_listed("      ", text)]
    if size.long_text:
        why = f"{words:.0f} words a value: TF-IDF of words and pairs of words"
        return [*lines, _line("    output_mode: tf_idf", why), "    max_tokens: 20000", "    ngrams: 2"]
    seen = max(5, size.rows // 100)
    counts = values.map(tokens.words).explode().value_counts()  # words as the model's vectorizer sees them
    kept = max(8, min(20000, int((counts >= seen).sum())))
    why = f"the {kept} words found in at least {seen} rows"
    return [
        *lines,
        _line("    output_mode: multi_hot", "which words a value holds"),
        _line(f"    max_tokens: {kept}", why),
    ]


def _image(profile: Profile, column: Column) -> list[str]:
    side = 64
    return [
        "  image:",
        _line(f"    size: [{side}, {side}]", "every image resized as it is read"),
        "    crop_to_aspect_ratio: true",
        _line("    rescale: 0.00392156862745098", "1/255: pixels from 0 to 1"),
        _line("    augment: {flip: horizontal, rotation: 0.1, zoom: 0.1}", "training only"),
        *([] if profile.folder else [f"    column: {_scalar(column.name)}"]),
    ]


def _model(profile: Profile, task: Task, size: Size) -> list[str]:
    image = any(c.role == "image" for c in profile.columns.values())
    lines = ["model:", "  layers:"]
    if image:
        lines += [
            _line("    - Conv2D: {filters: 16, kernel_size: 3, activation: relu}", "a small convnet; or"),
            _line("    - MaxPooling2D: {pool_size: 2}", "model.backbone: {name: MobileNetV2,"),
            _line(
                "    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}",
                "weights: imagenet} (a download)",
            ),
            "    - MaxPooling2D: {pool_size: 2}",
            "    - Conv2D: {filters: 64, kernel_size: 3, activation: relu}",
            "    - GlobalAveragePooling2D: {}",
            "    - Dropout: {rate: 0.3}",
        ]
    elif task.kind == "series":
        lines.append(_line("    - LSTM: {units: 32}", "reads the window step by step"))
    else:
        why = f"sized to {size.rows} rows" + (f" and about {size.inputs} inputs" if size.inputs else "")
        if size.long_text:
            lines.append(_line("    - Dropout: {rate: 0.5}", "many word features: drop half"))
        for i in range(size.layers):
            lines.append(
                _line(f"    - Dense: {{units: {size.units}, activation: relu}}", why if i == 0 else "")
            )
    lines.append(_output(task))
    return lines


def _output(task: Task) -> str:
    if task.kind != "classification":
        return _line("    - Dense: {units: 1}", "the predicted value")
    if task.binary:
        return _line("    - Dense: {units: 1, activation: sigmoid}", "the probability of the second class")
    return _line(f"    - Dense: {{units: {len(task.classes)}, activation: softmax}}", "one unit per class")


def _training(task: Task, size: Size) -> list[str]:
    loss = {"regression": "mse", "series": "mse"}.get(
        task.kind, "binary_crossentropy" if task.binary else "sparse_categorical_crossentropy"
    )
    metrics = "[accuracy]" if task.kind == "classification" else "[mae]"
    lines = [
        f"optimizer: {{name: adam, learning_rate: {size.learning_rate}}}",
        f"loss: {loss}",
        f"metrics: {metrics}",
        "train:",
        _line(f"  epochs: {size.epochs}", "an upper bound: early stopping ends the run"),
        _line(f"  batch_size: {size.batch}", f"{size.rows} rows"),
        _line(
            f"  early_stopping: {{monitor: val_loss, patience: {size.patience}}}",
            "restores the best epoch's weights",
        ),
    ]
    rarest = min(task.counts) if task.counts else 0
    if task.counts and rarest < UNBALANCED * sum(task.counts):
        name = task.classes[task.counts.index(rarest)]
        share = f"{rarest / sum(task.counts):.0%}"
        lines.append(_line("  class_weight: balanced", f"unbalanced: class {name} is {share} of the rows"))
    return lines


def write(data: Path, target: str | None, path: Path | None, force: bool = False) -> Path:
    """`dlcli init --data`: the config for `data` written to `path` (default `<name>.yaml` here), never
    over an existing file unless `force`."""
    data = Path(data)
    found = profile_mod.read(data)
    path = Path(path) if path is not None else Path(f"{config_name(data)}.yaml")
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise DataError(
            f"init: {path}: a config's name ends in .yaml; name it {path.with_suffix('.yaml').name}"
        )
    return write_new(path, draft(found, target, path), force)


def for_training(data: Path, target: str | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """`dlcli train DATA --target COL`: the config `dlcli init --data` would write, with the data's
    absolute path, validated as if it lay beside the data; its text is kept for the run's init.yaml."""
    data = Path(data)
    found = profile_mod.read(data)
    path = data.resolve().parent / f"{config_name(data)}.yaml"
    text = draft(found, target, path, str(data.resolve()), command="train")
    config = load_config_text(text, path, overrides)
    config.keep_written(text)
    return config


def config_name(data: Path) -> str:
    """The run name for a data file or folder: its name, with its parent's for a generic one (train)."""
    stem = data.resolve().stem if data.is_dir() else data.stem
    if stem.lower() in GENERIC and data.resolve().parent.name:
        stem = f"{data.resolve().parent.name}-{stem}"
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "model"


#: Folder names that say nothing of the data in them.
GENERIC = {"train", "training", "data", "images", "photos", "dataset"}
