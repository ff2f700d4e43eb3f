"""Keras' public names — layers with their constructor arguments, optimizers, learning-rate
schedules, losses, metrics, activations and keras.applications models — readable without importing
Keras, so `dlcli validate` checks them instantly.

`dlcli/keras_catalog.json` is generated from the Keras version named inside it:

    python -m dlcli.config.catalog        # regenerate after upgrading Keras

When a different Keras is installed, the catalog is rebuilt from it once (this imports Keras) and
kept in the dlcli cache; tests/test_catalog.py fails when the committed file is stale.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from dlcli.utils.files import cache_dir, write_atomic

CATALOG_FILE = Path(__file__).parents[1] / "keras_catalog.json"  # dlcli/keras_catalog.json
#: Arguments every layer takes through `**kwargs` (keras.layers.Layer.__init__).
BASE_LAYER_ARGS = ["activity_regularizer", "trainable", "dtype", "autocast", "name"]
#: Strings `compile()` resolves itself besides what keras.metrics.get knows.
COMPILE_METRIC_ALIASES = ["accuracy", "acc", "crossentropy", "ce"]
#: Short names `get()` accepts that `dir()` does not list; kept where the installed Keras agrees.
ALIASES = [
    "mse",
    "mae",
    "mape",
    "msle",
    "kld",
    "logcosh",
    "huber_loss",
    "auc",
    "precision",
    "recall",
    "r2_score",
    "root_mean_squared_error",
    "f1_score",
    "rmse",
    "MSE",
    "MAE",
]


def build() -> dict[str, Any]:
    """Introspect the installed Keras."""
    import keras

    layers = {}
    for name in sorted(dir(keras.layers)):
        cls = getattr(keras.layers, name)
        if isinstance(cls, type) and issubclass(cls, keras.layers.Layer):
            layers[name] = _arguments(cls, BASE_LAYER_ARGS)
    optimizers = {}
    for name in sorted(dir(keras.optimizers)):
        cls = getattr(keras.optimizers, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, keras.optimizers.Optimizer)
            and name not in ("Optimizer", "LossScaleOptimizer")
        ):
            optimizers[name.lower()] = {"class": name, **_arguments(cls, [])}
    schedules = {}
    for name in sorted(dir(keras.optimizers.schedules)):
        cls = getattr(keras.optimizers.schedules, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, keras.optimizers.schedules.LearningRateSchedule)
            and cls is not keras.optimizers.schedules.LearningRateSchedule
        ):
            schedules[name] = _arguments(cls, [])
    applications = {}
    for name in sorted(dir(keras.applications)):
        fn = getattr(keras.applications, name)
        if name[:1].isupper() and callable(fn) and "include_top" in inspect.signature(fn).parameters:
            applications[name] = _arguments(fn, [])
    return {
        "keras": keras.__version__,
        "applications": applications,
        "schedules": schedules,
        "layers": layers,
        "optimizers": optimizers,
        "losses": _gettable(keras.losses),
        "metrics": sorted(set(_gettable(keras.metrics)) | set(COMPILE_METRIC_ALIASES)),
        "activations": [n for n in _gettable(keras.activations) if n.islower()],
    }


def _arguments(cls: type, via_kwargs: list[str]) -> dict[str, Any]:
    """Named constructor arguments, plus `via_kwargs` when the constructor takes **kwargs."""
    params = inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters.values()
    named = [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [
        p.name
        for p in params
        if p.name != "self" and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    return {
        "args": named + [a for a in via_kwargs if takes_kwargs and a not in named],
        "required": required,
    }


def _gettable(module) -> list[str]:
    names = []
    for name in sorted(set(dir(module)) | set(ALIASES)):
        if name.startswith("_") or name in ("get", "serialize", "deserialize"):
            continue
        try:
            module.get(name)
        except Exception:  # noqa: BLE001, S112 - anything `get` refuses is not a name
            continue
        names.append(name)
    return names


@cache
def load() -> dict[str, Any]:
    """The catalog for the installed Keras, without importing it when the committed file matches."""
    try:
        installed = metadata.version("keras")
    except metadata.PackageNotFoundError:
        installed = None
    committed = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    if installed in (None, committed["keras"]):
        return committed

    cached = cache_dir() / f"keras-catalog-{installed}.json"
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    built = build()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, json.dumps(built))
    except OSError:
        pass  # a read-only home only costs the rebuild next time
    return built


if __name__ == "__main__":
    CATALOG_FILE.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {CATALOG_FILE}")
