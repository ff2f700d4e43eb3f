"""Pretrained backbones: a keras.applications model without its classifier top, between the image
input and the configured layers (the head), with the application's own `preprocess_input` inside the
model as standard layers, so `model.keras` takes raw pixels and loads with `safe_mode=True`.

`weights: imagenet` goes through Keras' own download (its cache, its hash where Keras has one), after
looking for the file under Keras' name in `$DLCLI_DATA_DIR`, for offline machines.

    >>> x = attach(config, pixels)        # pixels: a KerasTensor [None, 224, 224, 3], 0-255
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import numpy as np

from dlcli.config.checks import suggest
from dlcli.utils.errors import ConfigError, DataError

if TYPE_CHECKING:
    from dlcli.config.config import Config

#: ImageNet statistics used by the applications' preprocess_input (keras.applications.imagenet_utils).
CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def application(name: str, where: str):
    import keras

    fn = getattr(keras.applications, name, None)
    if fn is None or not name[:1].isupper() or not callable(fn):
        names = [n for n in dir(keras.applications) if n[:1].isupper()]
        raise ConfigError(f"{where}: {name!r} is not a keras.applications model{suggest(name, names, n=2)}")
    return fn


def _candidates(channels: int) -> dict[str, list]:
    """Keras layers for each way an application's preprocess_input may scale pixels."""
    import keras

    out = {
        "none": [],
        "tf": [keras.layers.Rescaling(1 / 127.5, offset=-1.0)],
    }
    if channels == 3:
        out["torch"] = [
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Normalization(mean=TORCH_MEAN, variance=[s * s for s in TORCH_STD]),
        ]
        out["caffe"] = ["bgr", keras.layers.Normalization(mean=CAFFE_MEAN, variance=[1.0, 1.0, 1.0])]
    return out


def _apply(steps: list, x):
    import keras

    for step in steps:
        x = keras.ops.flip(x, axis=-1) if step == "bgr" else step(x)  # RGB → BGR: an op, not a Lambda
    return x


def preprocessing(name: str, channels: int, where: str) -> tuple[str, list]:
    """The mode of the application's own preprocess_input ('none', 'tf', 'torch' or 'caffe') and
    the layers that do the same, found by running it on random pixels: a new Keras that changes a
    rule is noticed here, not in a user's accuracy."""

    fn = application(name, where)
    own = importlib.import_module(fn.__module__).preprocess_input
    probe = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, channels)).astype("float32")
    expected = np.asarray(own(probe.copy()))
    for mode, steps in _candidates(channels).items():
        got = np.asarray(_apply(steps, probe.copy()))
        if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-5, atol=1e-4):
            return mode, steps
    raise ConfigError(
        f"{where}: {name}'s preprocess_input is none of the known ImageNet rules (tf, torch, caffe), so "
        "dlcli cannot put it inside the model; choose another backbone"
    )


def attach(config: Config, x):
    """The backbone on `x` (raw pixels, 0-255): its preprocessing, then the application, frozen
    unless `trainable`. Pretrained weights run their BatchNormalization in inference mode, also
    when fine-tuned (Keras' transfer-learning guide: `base(x, training=False)`)."""
    spec = config.model.backbone
    where = config.where("model", "backbone", "name")
    channels = int(x.shape[-1])
    _, steps = preprocessing(spec.name, channels, where)
    fn = application(spec.name, where)
    weights = spec.weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ConfigError(f"{config.where('model', 'backbone', 'weights')}: {weights}: no such weights file")
    try:
        with _mirrored_weights(spec.name):
            base = fn(
                include_top=False,
                weights=weights,
                input_shape=tuple(int(d) for d in x.shape[1:]),
                pooling=spec.pooling,
                **spec.arguments,
            )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{config.where('model', 'backbone')}: {spec.name}: {exc}") from None
    base.trainable = spec.trainable
    x = _apply(steps, x)
    return base(x, training=False) if weights is not None else base(x)


@contextlib.contextmanager
def _mirrored_weights(name: str):
    """While an application is built: Keras' weight downloads look in $DLCLI_DATA_DIR first (under
    Keras' own file name, hash-checked where Keras gives a hash), and a failed download is a
    DataError that says how to work offline.

    Applications fetch through `keras.src.utils.file_utils.get_file` (tests/test_private_apis.py
    fails, naming it, when Keras moves that)."""

    from keras.src.utils import file_utils

    original = file_utils.get_file

    def get_file(fname=None, origin=None, *args, file_hash=None, **kwargs):
        mirror = os.environ.get("DLCLI_DATA_DIR")
        local = Path(mirror).expanduser() / str(fname) if mirror and fname else None
        if local is not None and local.is_file():
            _check_hash(local, file_hash, name)
            return str(local)
        try:
            return original(fname, origin, *args, file_hash=file_hash, **kwargs)
        except Exception as exc:  # noqa: BLE001 - urllib and Keras raise many kinds
            tried = f"{local} (not there)" if local is not None else "$DLCLI_DATA_DIR (not set)"
            raise DataError(
                f"model.backbone: {name}'s imagenet weights could not be downloaded ({exc}). Tried "
                f"{tried}, Keras' cache, then {origin}. To work offline, save that file as {fname} in "
                "a folder and set DLCLI_DATA_DIR to it"
            ) from None

    with mock.patch.object(file_utils, "get_file", get_file):
        yield


def _check_hash(path: Path, expected: str | None, name: str) -> None:
    if not expected:
        return
    algorithm = "sha256" if len(expected) == 64 else "md5"
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise DataError(
            f"{path}: its {algorithm} is {digest.hexdigest()}, not the {expected} Keras publishes for "
            f"{name}'s imagenet weights: replace it with Keras' file, or remove it to download"
        )
