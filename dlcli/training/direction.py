"""Whether a monitored quantity should go up or down: Keras' own rule, asked of Keras.

Keras' `MonitorCallback` (the base of EarlyStopping and ModelCheckpoint) decides `mode="auto"` from
the compiled metric objects: `loss` goes down, every metric the way it declares (accuracy, AUC, R²
and cosine similarity up; errors down). dlcli's best checkpoint and `dlcli tune`'s study both ask
an EarlyStopping, so neither keeps a table of names of its own that could disagree with Keras.

    >>> monitor_direction(model, "val_auc", "auto", logs)      # the trained model, after an epoch
    'max'
    >>> configured_direction("val_r2_score")  # before any model is built
    'max'
"""

from __future__ import annotations

import keras
import numpy as np

from dlcli.utils.errors import ConfigError

#: Stand-in outputs and labels a metric may score: one probability, two classes as integers or one-hot.
_STAND_INS = (
    (1, "sigmoid", "mse", np.array([[0.0], [1.0]])),
    (2, "softmax", "sparse_categorical_crossentropy", np.array([0, 1])),
    (2, "softmax", "categorical_crossentropy", np.eye(2)),
)


def monitor_direction(model, monitor: str, mode: str, logs: dict) -> str:
    """`min` or `max` for `monitor` of a compiled model whose metrics are built: `mode` when given,
    else what a public Keras EarlyStopping decides from the model's metrics (Keras decides then too)."""
    if mode in ("min", "max"):
        return mode
    oracle = keras.callbacks.EarlyStopping(monitor=monitor, mode="auto", patience=1 << 30, verbose=0)
    oracle.set_model(model)
    oracle.on_train_begin()
    oracle.on_epoch_end(0, logs)
    return "max" if oracle.monitor_op is keras.ops.greater else "min"


def mode_for(config, monitor: str, mode: str) -> str:
    """`mode` as configured, except `auto` for one output's quantity of several (`val_<output>_<metric>`),
    whose name Keras cannot judge: that metric's direction, as `configured_direction` finds it."""
    if mode != "auto" or not config.several:
        return mode
    return configured_direction(metric_of(config, monitor), config.where("train"))


def metric_of(config, monitor: str) -> str:
    """The metric a monitored quantity names: with several targets, without `val_` and its output's
    name (`val_city_accuracy` → `accuracy`; the weighted total `loss` stays); else `monitor` itself."""
    if not config.several:
        return monitor
    name = monitor.removeprefix("val_")
    for output in sorted(config.outputs, key=lambda o: -len(o.name)):  # the longest name that fits
        if name.startswith(f"{output.name}_"):
            return name[len(output.name) + 1 :]
    return name


def configured_direction(monitor: str, where: str = "search.metric") -> str:
    """`min` or `max` for `monitor` ('loss' or a configured metric, either with `val_`; validate checked
    which) before the model exists: that metric compiled on a two-row stand-in and scored once, then
    Keras is asked as `monitor_direction` asks it."""
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    for units, activation, loss, labels in _STAND_INS:
        stand_in = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units, activation=activation)])
        stand_in.compile(loss=loss, metrics=[name])
        try:
            logs = stand_in.evaluate(np.ones((2, 2), "float32"), labels, verbose=0, return_dict=True)
            return monitor_direction(stand_in, monitor, "auto", {monitor: logs.get(name, 0.0)})
        except Exception:  # noqa: BLE001, S112 - TensorFlow's shape errors are of many kinds: try the next
            continue
    raise ConfigError(
        f"{where}: Keras cannot tell whether {monitor} should go up or down; set search.direction to "
        "maximize or minimize"
    )
