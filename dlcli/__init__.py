"""dlcli: train, evaluate and predict with Keras 3 models described by YAML files.

>>> from dlcli import load_config, train
>>> result = train(load_config("configs/iris.yaml"))
"""

from __future__ import annotations

from typing import Any

from dlcli.utils.about import STARTED_AT, __version__  # noqa: F401 - the package's own names

__all__ = ["evaluate", "load_config", "predict", "train"]


def __getattr__(name: str) -> Any:
    # Resolved on first use so that `import dlcli` stays instant.
    if name == "load_config":
        from dlcli.config.config import load_config

        return load_config
    if name == "train":
        from dlcli.devices.compute import import_tensorflow

        import_tensorflow()
        from dlcli import api

        return api.train
    if name == "predict":
        from dlcli.evaluation import inference

        return inference.predict
    if name == "evaluate":
        from dlcli.evaluation import inference

        return inference.tensorflow_path().evaluate
    raise AttributeError(f"module 'dlcli' has no attribute {name!r}")
