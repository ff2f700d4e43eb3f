"""The layer list → a compiled `keras.Model`; optimizer, loss and metrics by their Keras names.

>>> model = build(config, input_shape=[4], input_dtype="float32", n_classes=3)
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from dlcli.config import CLASSIFICATION_LOSSES, Config
from dlcli.errors import ConfigError

if TYPE_CHECKING:
    import keras

#: Layers that would run code from the config, or that dlcli adds itself.
REFUSED_LAYERS = {
    "Lambda": "it runs arbitrary Python code",
    "TFSMLayer": "it loads code from disk",
    "Input": "dlcli creates the input from the data",
    "InputLayer": "dlcli creates the input",
}


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def layer_class(name: str, where: str) -> type:
    import keras

    if name in REFUSED_LAYERS:
        raise ConfigError(f"{where}: the layer {name} is not allowed: {REFUSED_LAYERS[name]}")
    found = getattr(keras.layers, name, None)
    if not (isinstance(found, type) and issubclass(found, keras.layers.Layer)):
        names = [n for n in dir(keras.layers) if isinstance(getattr(keras.layers, n), type)]
        raise ConfigError(f"{where}: {name!r} is not a Keras layer{_suggest(name, names)}")
    return found


def build(
    config: Config,
    input_shape: list[int],
    input_dtype: str,
    n_classes: int | None,
    rescale: float | None = None,
) -> keras.Model:
    """A functional model: Input (shape and dtype from the data) → optional rescale/reshape → layers."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), dtype=input_dtype, name="inputs")
    x = inputs
    if rescale is not None or input_dtype not in ("float32", "float64"):
        # Pixels stay uint8 in memory; the model casts and rescales them itself.
        x = keras.layers.Rescaling(rescale if rescale is not None else 1.0, name="rescale")(x)
    wanted = config.model.input_shape
    if wanted is not None and list(wanted) != list(input_shape):
        if _size(wanted) != _size(input_shape):
            raise ConfigError(
                f"{config.where('model', 'input_shape')}: {list(wanted)} does not match the data, whose "
                f"items have shape {list(input_shape)} (expected the same number of values, "
                f"{_size(input_shape)})"
            )
        x = keras.layers.Reshape(tuple(wanted), name="reshape")(x)
    for i, spec in enumerate(config.model.layers):
        ((name, kwargs),) = spec.items()
        where = config.where("model", "layers", i, name)
        cls = layer_class(name, where)
        try:
            x = cls(**(kwargs or {}))(x)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    model = keras.Model(inputs, x, name=config.name)
    _check_output(config, model, n_classes)
    return model


def _size(shape) -> int:
    out = 1
    for dim in shape:
        out *= dim
    return out


def _check_output(config: Config, model: keras.Model, n_classes: int | None) -> None:
    units = model.output_shape[-1]
    last = len(config.model.layers) - 1
    where = config.where("model", "layers", last)
    mode = CLASSIFICATION_LOSSES.get(config.loss)
    expected = 1 if mode == "binary" or n_classes is None else n_classes
    if len(model.output_shape) != 2 or units != expected:
        what = f"{n_classes} classes" if n_classes else "one target value"
        if mode == "binary":
            what = "binary_crossentropy (one sigmoid unit)"
        raise ConfigError(
            f"{where}: the model's output has shape {list(model.output_shape[1:])} but the data needs "
            f"{expected} output unit(s) for {what}: end with `- Dense: {{units: {expected}}}`"
        )


def optimizer(config: Config):
    import keras

    options = dict(config.optimizer.model_extra or {})
    name = config.optimizer.name
    classes = {
        n.lower(): getattr(keras.optimizers, n)
        for n in dir(keras.optimizers)
        if isinstance(getattr(keras.optimizers, n), type)
        and issubclass(getattr(keras.optimizers, n), keras.optimizers.Optimizer)
        and n not in ("Optimizer", "LossScaleOptimizer")
    }
    cls = classes.get(name.lower())
    if cls is None:
        raise ConfigError(
            f"{config.where('optimizer', 'name')}: unknown optimizer {name!r}"
            f"{_suggest(name.lower(), list(classes))} (known: {', '.join(sorted(classes))})"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{config.where('optimizer')}: {exc}") from None


def check_names(config: Config) -> None:
    """Loss and metric names must be Keras' own."""
    import keras

    try:
        keras.losses.get(config.loss)
    except (ValueError, TypeError):
        known = [n for n in dir(keras.losses) if n.islower() and not n.startswith("_")]
        raise ConfigError(
            f"{config.where('loss')}: unknown loss {config.loss!r}{_suggest(config.loss, known)}"
        ) from None
    for i, name in enumerate(config.metrics):
        try:
            keras.metrics.get(name)
        except (ValueError, TypeError):
            known = [n for n in dir(keras.metrics) if n.islower() and not n.startswith("_")]
            raise ConfigError(
                f"{config.where('metrics', i)}: unknown metric {name!r}{_suggest(name, known)}"
            ) from None


def compile_model(model: keras.Model, config: Config, steps_per_execution: int) -> None:
    check_names(config)
    model.compile(
        optimizer=optimizer(config),
        loss=config.loss,
        metrics=list(config.metrics),
        steps_per_execution=steps_per_execution,
        jit_compile=False,
    )
