"""Config checks that go beyond types, all without importing Keras: layer names and arguments,
optimizer, loss, metric and activation names (against `catalog`), the output layer against the loss,
and monitors against what the model reports.

They read the raw YAML values, so they run even when other keys fail validation: a user sees every
problem of a file at once. Each problem is `(key path, message)`; `config.py` adds file and line.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from typing import Any

from dlcli.config import catalog, graph
from dlcli.config.config_sections import OptimizerConfig, SeriesConfig, SplitConfig

Problem = tuple[tuple, str]

#: Layers that would run code from the config, or that dlcli adds itself.
REFUSED_LAYERS = {
    "Lambda": "it runs arbitrary Python code",
    "TFSMLayer": "it loads code from disk",
    "Input": "dlcli creates the input from the data (set model.input_shape to reshape it)",
    "InputLayer": "dlcli creates the input from the data (set model.input_shape to reshape it)",
}
#: The classification losses: how each wants its labels (integer codes, one-hot rows, or 0/1) and the
#: output activation that gives the probabilities it expects. Every other loss means regression.
#: The one table: config.task, the label encoding, the output checks and the model's checks read it.
CLASSIFICATION_LOSSES: dict[str, tuple[str, str]] = {
    "sparse_categorical_crossentropy": ("sparse", "softmax"),
    "categorical_crossentropy": ("one_hot", "softmax"),
    "categorical_focal_crossentropy": ("one_hot", "softmax"),
    "binary_crossentropy": ("binary", "sigmoid"),
    "binary_focal_crossentropy": ("binary", "sigmoid"),
}


def label_mode(loss: str) -> str | None:
    """sparse, one_hot or binary for a classification loss; None for regression."""
    return CLASSIFICATION_LOSSES[loss][0] if isinstance(loss, str) and loss in CLASSIFICATION_LOSSES else None


ACTIVATION_ARGS = ("activation", "recurrent_activation")
#: Old or common spellings that string similarity does not catch.
KNOWN_RENAMES = {
    "lr": "learning_rate",
    "decay": "weight_decay",
    "nb_filter": "filters",
    "output_dim": "units",
}


def suggest(word: str, choices: list[str], n: int = 1) -> str:
    """ "; did you mean 'x'?" for the closest of `choices`, or nothing."""
    if KNOWN_RENAMES.get(word) in choices:
        return f"; did you mean {KNOWN_RENAMES[word]!r}?"
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def get_path(raw: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
        else:
            raw = raw.get(part) if isinstance(raw, dict) else None
    return raw


def static_problems(raw: dict) -> list[Problem]:
    return [
        *_non_finite(raw),
        *_layers(raw),
        *_optimizer(raw),
        *_loss_and_metrics(raw),
        *_output(raw),
        *_monitors(raw),
        *_compute(raw),
        *_tracking(raw),
        *_series(raw),
        *streamed_series(raw),
        *_schedule(raw),
        *_binary_metrics(raw),
        *_folds(raw),
    ]


def _folds(raw: dict) -> list[Problem]:
    """train.folds and train.fold: a fold within the folds, and a split the folds can divide."""
    folds, fold = get_path(raw, "train", "folds"), get_path(raw, "train", "fold")
    if not isinstance(fold, int) and not isinstance(folds, int):
        return []
    if isinstance(fold, int) and not (isinstance(folds, int) and fold <= folds):
        what = "without train.folds" if not isinstance(folds, int) else f"above train.folds ({folds})"
        return [(("train", "fold"), f"fold {fold} {what}: expected a fold from 1 to train.folds")]
    why = None
    if get_path(raw, "data", "split", "column") is not None:
        why = (
            "data.split.column fixes each row's split, so there is nothing to fold: remove it, or use "
            "data.split.key to keep groups of rows together"
        )
    elif get_path(raw, "data", "stream") is True:
        why = "cross-validation reads the table in memory: set data.stream: false, or remove train.folds"
    elif get_path(raw, "train", "distribution", "strategy") == "multi_worker":
        why = "folds are runs of their own; train them on one machine (--jobs runs several at once)"
    return [(("train", "folds"), why)] if why else []


def _series(raw: dict) -> list[Problem]:
    windowed = get_path(raw, "preprocessing", "window") is not None
    problems: list[Problem] = []
    series = get_path(raw, "preprocessing", "series")
    defaults = {k: f.default for k, f in SeriesConfig.model_fields.items()}
    asked = isinstance(series, dict) and any(series.get(k, v) != v for k, v in defaults.items())
    if asked and not windowed:
        problems.append(
            (
                ("preprocessing", "series"),
                "series options apply to a time series: add preprocessing.window (length, horizon), or "
                "remove preprocessing.series",
            )
        )
    if get_path(raw, "data", "series_id") is not None and not windowed:
        problems.append(
            (
                ("data", "series_id"),
                "series_id names the series of each row of a time series: add preprocessing.window "
                "(length, horizon), or remove data.series_id",
            )
        )
    if get_path(raw, "data", "series_id") is not None and get_path(raw, "data", "split", "key") is not None:
        problems.append(
            (
                ("data", "split", "key"),
                "a time series is split in time order, each series on its own (data.series_id): remove "
                "data.split.key",
            )
        )
    loss, differenced = raw.get("loss"), get_path(raw, "preprocessing", "series", "difference") == 1
    if windowed and differenced and label_mode(loss) is not None:
        problems.append(
            (
                ("preprocessing", "series", "difference"),
                f"difference: 1 forecasts a change of a number; {loss} means classification: use a "
                "regression loss (mse, mae, huber) or difference: 0",
            )
        )
    if windowed and get_path(raw, "preprocessing", "categorical", "encode") == "embedding":
        problems.append(
            (
                ("preprocessing", "categorical", "encode"),
                "embedding encodes the categories of a table's rows; a window of a series is read as "
                "one_hot or ordinal",
            )
        )
    if not windowed or get_path(raw, "data", "split", "shuffle") is not True:
        return problems
    return problems + [
        (
            ("data", "split", "shuffle"),
            "a time series (preprocessing.window) is split in time order: shuffling rows before cutting "
            "windows would mix the future into the past. Remove shuffle (windows are already shuffled "
            "between epochs) or set it to false",
        )
    ]


def streamed_series(raw: dict) -> list[Problem]:
    """What a streamed series (data.stream: true with preprocessing.window) cannot take: each needs
    the whole series at once (seriesstream.py says the same when auto decides to stream)."""
    if get_path(raw, "preprocessing", "window") is None or get_path(raw, "data", "stream") is not True:
        return []
    problems: list[Problem] = []
    for key, given, why in (
        (("preprocessing", "series", "missing"), "error", "fills gaps along the whole series"),
        (("preprocessing", "series", "difference"), 0, "differences the whole series"),
        (("data", "split", "key"), None, "would scatter a series' steps"),
        (("data", "split", "column"), None, "would scatter a series' steps"),
    ):
        if get_path(raw, *key) not in (given, None):
            problems.append(
                (
                    key,
                    "a streamed series (data.stream with preprocessing.window) is split in time order, and "
                    f"{'.'.join(key)} {why}; remove it, or set data.stream: false to read the series whole",
                )
            )
    if get_path(raw, "train", "distribution", "strategy") == "multi_worker":
        problems.append(
            (
                ("data", "stream"),
                "a streamed series (preprocessing.window) is read in file order by one process; under "
                "multi_worker set data.stream: false (each worker then holds the series, its windows made "
                "by index)",
            )
        )
    return problems


def _schedule(raw: dict) -> list[Problem]:
    """`optimizer.learning_rate: {ExponentialDecay: {...}}`: a keras.optimizers.schedules class and
    its arguments."""
    rate = get_path(raw, "optimizer", "learning_rate")
    if not isinstance(rate, dict):
        return []
    if get_path(raw, "train", "reduce_lr_on_plateau") is not None:
        return [
            (
                ("train", "reduce_lr_on_plateau"),
                "reduce_lr_on_plateau sets the learning rate, which optimizer.learning_rate's schedule "
                "already decides step by step: use one of the two",
            )
        ]
    known = catalog.load()["schedules"]
    where = ("optimizer", "learning_rate")
    example = "e.g. {ExponentialDecay: {initial_learning_rate: 0.01, decay_steps: 1000, decay_rate: 0.9}}"
    if len(rate) != 1:
        return [(where, f"a learning-rate schedule is one `ClassName: {{arguments}}` mapping ({example})")]
    ((name, kwargs),) = rate.items()
    spec = known.get(name)
    if spec is None:
        hint = suggest(str(name), list(known), n=2) or f" (known: {', '.join(known)})"
        return [((*where, name), f"{name!r} is not a Keras learning-rate schedule{hint}")]
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    problems: list[Problem] = [
        (
            (*where, name, arg),
            f"{name} has no argument {arg!r}{suggest(str(arg), spec['args']) or ''} "
            f"(it takes {', '.join(spec['args'])})",
        )
        for arg in kwargs
        if arg not in spec["args"]
    ]
    missing = [a for a in spec["required"] if a not in kwargs]
    if missing:
        problems.append(((*where, name), f"{name} needs {', '.join(map(repr, missing))} ({example})"))
    return problems


#: Metrics that compare one probability per row with 0/1 labels.
BINARY_METRICS = {"auc", "AUC", "precision", "Precision", "recall", "Recall"}


def _binary_metrics(raw: dict) -> list[Problem]:
    loss, metrics = raw.get("loss"), raw.get("metrics")
    if not isinstance(loss, str) or label_mode(loss) != "sparse":
        return []
    return [
        (
            ("metrics", i),
            f"{metric} scores one probability per row against 0/1 labels, but {loss} gives one "
            "probability per class and integer labels: for two classes use loss binary_crossentropy with "
            "a last layer `Dense: {units: 1, activation: sigmoid}`, or categorical_crossentropy (one-hot "
            "labels, scored class by class), or drop the metric (f1_macro and the per-class "
            "report are in metrics.json anyway)",
        )
        for i, metric in enumerate(metrics if isinstance(metrics, list) else [])
        if metric in BINARY_METRICS
    ]


def _non_finite(value: Any, path: tuple = ()) -> list[Problem]:
    """`.inf`, `.nan` or `1e999` anywhere: no option means infinity (pydantic and the optimizer's own
    arguments would take it)."""

    if isinstance(value, float) and not math.isfinite(value):
        return [(path, f"expected a finite number (got {value}, which YAML reads from .inf, .nan or 1e999)")]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _non_finite(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _non_finite(item, (*path, i))]
    return []


def mlflow_installed() -> bool:

    return importlib.util.find_spec("mlflow") is not None


def _tracking(raw: dict) -> list[Problem]:
    if get_path(raw, "tracking", "mlflow") is None or mlflow_installed():
        return []
    return [
        (
            ("tracking", "mlflow"),
            "MLflow tracking is asked for, but mlflow is not installed: pip install 'dlcli[mlflow]' "
            "(or remove tracking.mlflow)",
        )
    ]


def steps_per_call_problem(steps: int) -> str:
    """Why steps_per_execution > 1 is refused under a tf.distribute strategy (here and at train time)."""
    return (
        f"{steps} steps per call cannot run on more than one device or worker with Keras 3.15 (its "
        "multi-step loop fails under tf.distribute, keras-team/keras issue 19246): set "
        "steps_per_execution: auto (1 there) or 1"
    )


def _compute(raw: dict) -> list[Problem]:
    problems: list[Problem] = []
    if get_path(raw, "train", "jit_compile") is True and get_path(raw, "train", "deterministic") is True:
        problems.append(
            (
                ("train", "jit_compile"),
                "XLA cannot run under TensorFlow op determinism (Keras would turn it off without a word): "
                "set train.deterministic: false (or auto, which gives way to jit_compile: true), or "
                "drop jit_compile",
            )
        )
    strategy = get_path(raw, "train", "distribution", "strategy")
    devices = get_path(raw, "train", "distribution", "devices")
    if strategy == "one_device" and isinstance(devices, int) and devices > 1:
        problems.append(
            (
                ("train", "distribution", "devices"),
                f"strategy one_device trains on one device, not {devices}: set strategy: mirrored "
                "(or auto), or drop devices",
            )
        )
    steps = get_path(raw, "train", "steps_per_execution")
    several = strategy in ("mirrored", "multi_worker") or (isinstance(devices, int) and devices > 1)
    if several and isinstance(steps, int) and steps > 1:
        problems.append(
            (
                ("train", "steps_per_execution"),
                steps_per_call_problem(steps),
            )
        )
    return problems


def layer_lists(model: Any) -> list[tuple[tuple, Any]]:
    """(key path, list) of every list of layers of the model section: model.layers, each of
    model.branches and of model.heads."""
    lists = [(("model", "layers"), get_path(model, "layers"))]
    for part in ("branches", "heads"):
        named = get_path(model, part)
        lists += [
            (("model", part, name), layers)
            for name, layers in (named.items() if isinstance(named, dict) else [])
        ]
    return lists


def _layers(raw: dict) -> list[Problem]:
    """Each list of layers: each layer's class and arguments (a block's layers too), then the graph."""
    problems: list[Problem] = []
    for key, layers in layer_lists(get_path(raw, "model")):
        problems += graph.plan(layers, key)[1] + _layer_items(raw, graph.layer_items(layers, key))
    return problems


def _layer_items(raw: dict, items) -> list[Problem]:
    known = catalog.load()
    problems: list[Problem] = []
    for where, name, kwargs in items:
        if name in REFUSED_LAYERS:
            problems.append((where, f"the layer {name} is not allowed: {REFUSED_LAYERS[name]}"))
            continue
        spec = known["layers"].get(name)
        if spec is None:
            problems.append(
                (where, f"{name!r} is not a Keras layer{suggest(name, list(known['layers']), n=2)}")
            )
            continue
        kwargs = {k: v for k, v in kwargs.items() if k != "inputs"}
        for arg, value in kwargs.items():
            if arg not in spec["args"]:
                hint = suggest(arg, spec["args"]) or f" ({name} takes {', '.join(spec['args'])})"
                if arg in ("input_shape", "input_dim"):
                    hint = "; the input comes from the data: set model.input_shape instead"
                problems.append(((*where, arg), f"{name} has no argument {arg!r}{hint}"))
            elif arg in ACTIVATION_ARGS and isinstance(value, str) and value not in known["activations"]:
                problems.append(
                    ((*where, arg), f"unknown activation {value!r}{suggest(value, known['activations'])}")
                )
            elif _bad_value(arg, value):
                problems.append(((*where, arg), f"{name}: {_bad_value(arg, value)}"))
        missing = [a for a in spec["required"] if a not in kwargs]
        if name == "Embedding" and "input_dim" in missing:
            missing.remove("input_dim")
            if not _int_text(raw):  # else the vocabulary's size
                problems.append(
                    (
                        where,
                        "Embedding needs input_dim, the number of distinct token numbers it reads; "
                        "with preprocessing.text (output_mode: int) it is the vocabulary's size and "
                        "may be left out",
                    )
                )
        if missing:
            problems.append(
                (
                    where,
                    f"{name} needs {', '.join(map(repr, missing))} (e.g. `- {name}: {{{missing[0]}: ...}}`)",
                )
            )
    return problems


#: Layer arguments whose values Keras checks only when the layer is built (TensorFlow loaded): the
#: same rule here, so `validate` and a search's every choice refuse them before anything trains.
POSITIVE_INTS = {
    "units",
    "filters",
    "output_dim",
    "input_dim",
    "num_heads",
    "key_dim",
    "kernel_size",
    "strides",
    "pool_size",
    "size",
    "depth_multiplier",
    "groups",
    "dilation_rate",
    "n",
}
RATES = {"rate", "dropout", "recurrent_dropout"}  # a fraction in [0, 1)


def _bad_value(arg: str, value: Any) -> str | None:
    """What is wrong with a layer argument's value, or None (its type is Keras' to check)."""
    numbers = value if isinstance(value, list) else [value]
    if arg in POSITIVE_INTS and all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        if any(v <= 0 for v in numbers):
            return f"{arg} must be a positive integer (received {arg}={value}); use a number of 1 or more"
    if arg in RATES and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value < 1:
            return f"{arg} is a fraction in [0, 1) (received {arg}={value})"
    return None


def _int_text(raw: dict) -> bool:
    text = get_path(raw, "preprocessing", "text")
    return isinstance(text, dict) and text.get("output_mode", "int") == "int"


def _optimizer(raw: dict) -> list[Problem]:
    optimizer = get_path(raw, "optimizer")
    if not isinstance(optimizer, dict):
        return []
    name = optimizer.get("name", OptimizerConfig.model_fields["name"].default)
    if not isinstance(name, str):
        return []
    known = catalog.load()["optimizers"]
    spec = known.get(name.lower())
    if spec is None:
        hint = suggest(name.lower(), list(known), n=2)
        return [(("optimizer", "name"), f"unknown optimizer {name!r}{hint} (known: {', '.join(known)})")]
    takes = f" (it takes {', '.join(spec['args'])})"
    return [
        (("optimizer", arg), f"{spec['class']} has no argument {arg!r}{suggest(arg, spec['args']) or takes}")
        for arg in optimizer
        if arg != "name" and arg not in spec["args"]
    ]


def several_targets(raw: dict) -> list[str] | None:
    """The target columns when data.target lists several (config/outputs.py checks them), else None."""
    target = get_path(raw, "data", "target")
    return [str(t) for t in target] if isinstance(target, list) and len(target) > 1 else None


def _loss_and_metrics(raw: dict) -> list[Problem]:
    """Every loss and metric name, given once or per target (`loss: {price: mse}`)."""
    known = catalog.load()
    problems: list[Problem] = []
    for key, loss in _per_target(raw.get("loss")):
        if isinstance(loss, str) and loss not in known["losses"]:
            names = [n for n in known["losses"] if n.islower()]
            problems.append((("loss", *key), f"unknown loss {loss!r}{suggest(loss, names, n=2)}"))
    for key, metrics in _per_target(raw.get("metrics")):
        for i, metric in enumerate(metrics if isinstance(metrics, list) else []):
            if isinstance(metric, str) and metric not in known["metrics"]:
                names = [n for n in known["metrics"] if n.islower()]
                problems.append(
                    (("metrics", *key, i), f"unknown metric {metric!r}{suggest(metric, names, n=2)}")
                )
    return problems


def _per_target(value: Any) -> list[tuple[tuple, Any]]:
    """(key path below the key, value): the value itself, or each target's of a per-target mapping."""
    return [((name,), item) for name, item in value.items()] if isinstance(value, dict) else [((), value)]


def _output(raw: dict) -> list[Problem]:
    """The last layer must produce what the loss expects (probabilities of the right kind); with
    several targets each head's (config/outputs.py)."""
    loss = raw.get("loss")
    if not isinstance(loss, str):
        return []
    return output_problems(loss, get_path(raw, "model", "layers"), ("model", "layers"))


def output_problems(loss: str, layers: Any, key: tuple) -> list[Problem]:
    """The last layer of `layers` (at `key`) against `loss`."""
    plan, _ = graph.plan(layers, key)
    if not (loss in catalog.load()["losses"] and plan is not None):
        return []
    name, kwargs, where = plan.last.layer, plan.last.kwargs, plan.last.key
    if name in REFUSED_LAYERS or name not in catalog.load()["layers"]:
        return []  # already reported
    activation = "softmax" if name == "Softmax" else kwargs.get("activation") or "linear"
    wanted = CLASSIFICATION_LOSSES[loss][1] if loss in CLASSIFICATION_LOSSES else None
    units = kwargs.get("units") if name == "Dense" else None
    problems: list[Problem] = []  # every way the output is wrong, at once
    if wanted is not None and activation != wanted:
        problems.append(
            (
                where,
                f"the output activation is {activation!r} but {loss} expects "
                f"{'class probabilities' if wanted == 'softmax' else 'a probability'}: "
                f"set `activation: {wanted}` on the last layer",
            )
        )
    if wanted == "sigmoid" and isinstance(units, int) and units != 1:
        problems.append(
            (
                (*where, "units"),
                f"{loss} needs exactly 1 output unit (got {units}); for more than two "
                "classes use sparse_categorical_crossentropy with softmax",
            )
        )
    if wanted == "softmax" and units == 1:
        problems.append(
            (
                (*where, "units"),
                f"{loss} needs one output unit per class (got 1); for two classes "
                "use binary_crossentropy with 1 sigmoid unit",
            )
        )
    if wanted is None and activation == "softmax":
        problems.append(
            (
                where,
                f"a softmax output sums to 1, which {loss} (regression) cannot fit: remove the "
                "activation, or use a classification loss",
            )
        )
    return problems


def _monitors(raw: dict) -> list[Problem]:
    if several_targets(raw):
        return []  # config/outputs.py: each output's names
    metrics = raw.get("metrics") if isinstance(raw.get("metrics"), list) else []
    return monitors(raw, ["loss", *[m for m in metrics if isinstance(m, str)]])


def monitors(raw: dict, names: list[str]) -> list[Problem]:
    """Every monitor against `names`, what the model reports per epoch (val_ + each with validation)."""
    split = get_path(raw, "data", "split") if isinstance(get_path(raw, "data", "split"), dict) else {}
    validation = split.get("validation", SplitConfig.model_fields["validation"].default)
    has_validation = split.get("column") is not None or (
        isinstance(validation, int | float) and validation > 0
    )
    reported = names + [f"val_{n}" for n in names] if has_validation else names
    problems: list[Problem] = []
    for key in (
        ("train", "early_stopping", "monitor"),
        ("train", "checkpoint", "monitor"),
        ("train", "reduce_lr_on_plateau", "monitor"),
        ("search", "metric"),
    ):
        value = get_path(raw, *key)
        if isinstance(value, str) and value not in reported:
            problems.append(
                (
                    key,
                    f"{value!r} is not a quantity this model reports (expected one of "
                    f"{', '.join(reported)}){suggest(value, reported)}",
                )
            )
    return problems
