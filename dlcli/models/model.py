"""The layer list → a compiled `keras.Model`; optimizer, loss and metrics by their Keras names.

>>> model = build(config, input_shape=[4], input_dtype="float32", n_classes=3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from unittest import mock

import keras
import tensorflow as tf

from dlcli.config import graph
from dlcli.config.checks import REFUSED_LAYERS, label_mode, layer_lists, suggest
from dlcli.config.config import Config
from dlcli.io.images import augmentation as layers
from dlcli.models import backbones
from dlcli.preprocessing.text import input_name
from dlcli.utils.errors import ConfigError

if TYPE_CHECKING:
    from dlcli.preprocessing.text import TextVectorizer


def layer_class(name: str, where: str) -> type:
    if name in REFUSED_LAYERS:
        raise ConfigError(f"{where}: the layer {name} is not allowed: {REFUSED_LAYERS[name]}")
    found = getattr(keras.layers, name, None)
    if not (isinstance(found, type) and issubclass(found, keras.layers.Layer)):
        names = [n for n in dir(keras.layers) if isinstance(getattr(keras.layers, n), type)]
        raise ConfigError(f"{where}: {name!r} is not a Keras layer{suggest(name, names)}")
    return found


def check_layer_arguments(config: Config) -> None:
    """Construct every layer once, before any data is loaded: Keras checks each argument's value.

    Without starting TensorFlow's runtime, after which its threads (train.intra_op_threads) and a
    multi-worker strategy can no longer be set up: in a throwaway graph, as layers with state
    (Dropout's seed) would otherwise start it; and with the GPU question LSTM and GRU ask (for cuDNN)
    answered from the visible physical devices, as listing logical ones starts it too.
    """

    def visible(device_type=None):
        return tf.config.get_visible_devices(device_type)

    problems = []
    lists = layer_lists(config.model.model_dump())
    for key, name, kwargs in (item for at, specs in lists for item in graph.layer_items(specs, at)):
        where = config.where(*key)
        kwargs = {k: v for k, v in kwargs.items() if k != "inputs"}
        try:
            with tf.Graph().as_default(), mock.patch.object(tf.config, "list_logical_devices", visible):
                layer_class(name, where)(**_with_placeholders(config, name, kwargs))
        except ConfigError as exc:
            problems.extend(exc.problems)
        except Exception as exc:  # noqa: BLE001 - a constructor may raise anything on a bad value
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
    if problems:
        raise ConfigError(problems)


def _with_placeholders(config: Config, name: str, kwargs: dict) -> dict:
    """An Embedding on int text sequences takes its input_dim from the vocabulary, known only once
    the data is read: checked with a stand-in value."""
    text = config.preprocessing.text
    if name == "Embedding" and "input_dim" not in kwargs and text is not None and text.output_mode == "int":
        return {**kwargs, "input_dim": 2}
    return kwargs


def build(
    config: Config,
    input_shape: list[int],
    input_dtype: str,
    n_classes: int | None,
    rescale: float | None = None,
    embeddings: list[tuple[str, int, int]] = (),
    text: TextVectorizer | None = None,
    image: dict | None = None,
) -> keras.Model:
    """A functional model: Input (shape and dtype from the data) → optional rescale/reshape → layers.
    With text columns or a column of image files beside the others (`image`: its state) the inputs
    are named: `features` (numeric and categorical, when there are any), one string input per text
    column, vectorized inside the model, and the decoded images.

    With `train.mixed_precision` every layer but the last computes in 16 bits; the global dtype policy
    is restored afterwards, so nothing else in the process is affected.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.mixed_precision or "float32")
    try:
        return _build(config, input_shape, input_dtype, n_classes, rescale, embeddings, text, image)
    finally:
        keras.config.set_dtype_policy(previous)


def _build(config, input_shape, input_dtype, n_classes, rescale, embeddings=(), text=None, image=None):
    if text is not None or image is not None:
        width = input_shape[0] - (text.width if text is not None else 0)
        inputs, x = _named_inputs(config, width, embeddings, text, image)
        return _stack(config, inputs, x, n_classes, text)
    inputs = keras.Input(shape=tuple(input_shape), dtype=input_dtype, name="inputs")
    x = _embedded(inputs, embeddings) if embeddings else inputs
    x = _pixels(config, x, rescale, input_dtype)
    wanted = config.model.input_shape
    if wanted is not None and list(wanted) != list(input_shape):
        if _size(wanted) != _size(input_shape):
            raise ConfigError(
                f"{config.where('model', 'input_shape')}: {list(wanted)} does not match the data, whose "
                f"items have shape {list(input_shape)} (expected the same number of values, "
                f"{_size(input_shape)})"
            )
        x = keras.layers.Reshape(tuple(wanted), name="reshape")(x)
    if config.model.backbone is not None:
        x = backbones.attach(config, x)
    return _stack(config, inputs, x, n_classes)


def _pixels(config: Config, x, rescale: float | None, dtype: str):
    """Augmentation (training only), then rescaling: pixels stay uint8 in memory, and the model casts
    and rescales them itself."""
    for layer in augmentation(config.preprocessing.image.augment, config.seed):
        x = layer(x)  # before rescaling: RandomContrast expects pixels 0–255
    if rescale is not None or dtype not in ("float32", "float64"):
        x = keras.layers.Rescaling(rescale if rescale is not None else 1.0, name="rescale")(x)
    return x


def _stack(config, inputs, x, n_classes, text=None) -> keras.Model:
    """The configured layers on `x` (a stack, or a graph of named layers and blocks: config/graph.py),
    checked against the task. An Embedding without `input_dim` on int text sequences gets the
    vocabulary's size."""
    plan = _plan(config, config.model.layers, ("model", "layers"))
    vocabulary = text.vocabulary_size(0) if text is not None else None
    x = _apply(config, plan, x, vocabulary, output=not config.several)
    if config.several:  # a head per target after the shared layers, each ending in its output
        heads = {}
        for output in config.outputs:
            key = ("model", "heads", output.column)
            head = _plan(config, config.model.heads[output.column], key)
            heads[output.name] = (_apply(config, head, x, None, output=True), head.last)
        x = {name: tensor for name, (tensor, _) in heads.items()}
    try:
        model = keras.Model(inputs, x, name=config.name)
    except ValueError as exc:  # two layers of one name (a layer named like a block's repetition)
        raise ConfigError(f"{config.where('model', 'layers')}: {exc}") from None
    if config.several:
        for output in config.outputs:
            tensor, last = heads[output.name]
            _check_output(config, tuple(tensor.shape), output.loss, n_classes[output.name], last)
    else:
        _check_output(config, model.output_shape, config.loss, n_classes, plan.last)
    return model


def _apply(config: Config, plan: graph.Plan, x, vocabulary: int | None, output: bool = False):
    """The planned layers on `x`; `vocabulary`: an Embedding's input_dim when the config leaves it
    out; `output`: the plan ends the model (kept in float32 under mixed precision)."""
    outputs = {graph.INPUT: x}
    for node in plan.nodes:
        where = config.where(*node.key)
        cls = layer_class(node.layer, where)
        kwargs = dict(node.kwargs)
        if output and node.id == plan.output and config.train.mixed_precision:
            kwargs.setdefault("dtype", "float32")  # softmax and the loss stay in float32
        if node.layer == "Embedding" and "input_dim" not in kwargs and vocabulary is not None:
            kwargs["input_dim"] = vocabulary
        reads = [outputs[i] for i in node.inputs]
        try:
            outputs[node.id] = cls(**kwargs)(reads if node.merges else reads[0])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}{_merge_hint(node)}") from None
    return outputs[plan.output]


def _merge_hint(node: graph.Node) -> str:
    if not node.merges:
        return ""
    joined = ", ".join(node.reads)
    same = "every axis but the last" if node.layer == "Concatenate" else "the same shape"
    return (
        f" ({node.layer} joins {joined}, which must agree on {same}: `padding: same` keeps a "
        "convolution's height and width, or give the shortcut a Conv2D of kernel_size 1 and the same strides)"
    )


def _plan(config: Config, layers: list, key: tuple) -> graph.Plan:
    plan, problems = graph.plan(layers, key)
    if problems:  # validate reports them first; here for a config built in code
        raise ConfigError([f"{config.where(*key)}: {message}" for key, message in problems])
    return plan


def augmentation(augment, seed: int) -> list:

    return layers(augment.model_dump(exclude_none=True) if augment is not None else None, seed)


def _named_inputs(config: Config, width: int, embeddings, text: TextVectorizer | None, image: dict | None):
    """Named inputs (`features` when there are feature columns, one string input per text column,
    the decoded images of a column of image files) and what model.layers reads: each input through
    its branch (model.branches) where it has one, then joined (model.combine), or the int sequence of
    the one text column."""
    inputs, parts = {}, {}
    if width:
        features = keras.Input(shape=(width,), dtype="float32", name="features")
        inputs["features"] = features
        parts["features"] = (_embedded(features, embeddings) if embeddings else features, None)
    vectorizers = zip(text.columns, text.layers(), strict=True) if text is not None else []
    for i, (column, (name, layer)) in enumerate(vectorizers):
        raw = keras.Input(shape=(), dtype="string", name=name)
        inputs[name] = raw
        parts[column] = (layer(raw), text.vocabulary_size(i))
    if image is not None:
        name = input_name(image["column"])
        inputs[name] = keras.Input(shape=tuple(image["shape"]), dtype="float32", name=name)
        x = _pixels(config, inputs[name], image["rescale"], "float32")
        parts[image["column"]] = (backbones.attach(config, x) if config.model.backbone else x, None)
    branches = config.model.branches or {}
    missing = [name for name in branches if name not in parts]
    if missing:  # validate knows the text and image columns; whether there are feature columns, only the data
        raise ConfigError(
            f"{config.where('model', 'branches', missing[0])}: this model has no numeric or categorical "
            f"columns, only {', '.join(parts)}: remove the features branch"
        )
    joined = []
    for name, (x, vocabulary) in parts.items():  # vocabulary: a text column's, an Embedding's input_dim
        key = ("model", "branches", name)
        if name in branches:
            x = _apply(config, _plan(config, branches[name], key), x, vocabulary)
        if len(x.shape) != 2 and len(parts) > 1:
            raise ConfigError(
                f"{config.where(*key[: 3 if name in branches else 2])}: the input {name!r} reaches the join "
                f"at shape {list(x.shape[1:])}, and inputs join as vectors: end its branch with "
                "GlobalAveragePooling2D (images), GlobalAveragePooling1D (sequences) or Flatten"
            )
        joined.append(x)
    return inputs, _combine(config, joined)


def _combine(config: Config, parts: list):
    if len(parts) == 1:
        return parts[0]
    if config.model.combine == "concatenate":
        return keras.layers.Concatenate(name="features_and_text")(parts)
    merge = keras.layers.Add if config.model.combine == "add" else keras.layers.Average
    try:
        return merge(name=f"combine_{config.model.combine}")(parts)
    except ValueError as exc:
        raise ConfigError(
            f"{config.where('model', 'combine')}: {exc} ({config.model.combine} needs every input at the "
            "same shape: end each branch with a Dense of the same units, or combine: concatenate)"
        ) from None


def _embedded(inputs, embeddings):
    """The feature vector with each embedded column's category number replaced by its learned vector.

    Built from keras.ops slicing and standard layers, so the model still loads with safe_mode=True.
    """
    first = embeddings[0][1]  # the embedded columns end the vector, after the numeric ones
    parts = [inputs[:, :first]] if first else []
    for column, position, rows in embeddings:
        codes = keras.ops.cast(inputs[:, position], "int32")
        width = min(50, round(1.6 * rows**0.56))
        safe = "".join(c if c.isalnum() else "_" for c in column)
        parts.append(keras.layers.Embedding(rows, width, name=f"embedding_{position}_{safe}")(codes))
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="embedded")(parts)


def _size(shape) -> int:
    out = 1
    for dim in shape:
        out *= dim
    return out


def _check_output(config: Config, shape: tuple, loss: str, n_classes: int | None, last: graph.Node) -> None:
    units = shape[-1]
    where = config.where(*last.key[:-1])
    mode = label_mode(loss)
    expected = 1 if mode == "binary" or n_classes is None else n_classes
    if len(shape) != 2 or units != expected:
        what = f"{n_classes} classes" if n_classes else "one target value"
        if mode == "binary":
            what = "binary_crossentropy (one sigmoid unit)"
        raise ConfigError(
            f"{where}: the model's output has shape {list(shape[1:])} but the data needs "
            f"{expected} output unit(s) for {what}: end with `- Dense: {{units: {expected}}}`"
        )


def optimizer(config: Config, learning_rate: float | None = None):
    """The configured optimizer; `learning_rate` replaces the configured one (fine-tuning)."""
    options = dict(config.optimizer.model_extra or {})
    if learning_rate is not None:
        options["learning_rate"] = learning_rate
    if isinstance(options.get("learning_rate"), dict):  # {ScheduleName: {arguments}} (checked by validate)
        ((schedule, arguments),) = options["learning_rate"].items()
        try:
            options["learning_rate"] = getattr(keras.optimizers.schedules, schedule)(**(arguments or {}))
        except (AttributeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{config.where('optimizer', 'learning_rate', schedule)}: {exc}") from None
    if isinstance(options.get("learning_rate"), int) and not isinstance(options["learning_rate"], bool):
        options["learning_rate"] = float(options["learning_rate"])  # Keras refuses `learning_rate: 1`
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
            f"{suggest(name.lower(), list(classes))} (known: {', '.join(sorted(classes))})"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{config.where('optimizer')}: {exc}") from None


def losses_and_metrics(config: Config) -> dict:
    """compile()'s loss and metrics (and loss_weights): by output name with several targets."""
    if not config.several:
        return {"loss": config.loss, "metrics": list(config.metrics)}
    return {
        "loss": {o.name: o.loss for o in config.outputs},
        "metrics": {o.name: list(o.metrics) for o in config.outputs},
        "loss_weights": {o.name: o.weight for o in config.outputs},
    }


def compile_model(
    model: keras.Model, config: Config, steps_per_execution: int, learning_rate: float | None = None
) -> None:
    """Compile; with mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer itself."""
    model.compile(
        optimizer=optimizer(config, learning_rate),
        **losses_and_metrics(config),
        steps_per_execution=steps_per_execution,
        jit_compile=config.train.jit_compile,
    )
