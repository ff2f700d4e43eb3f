"""Pretrained backbones: a keras.applications model without its classifier top, between the image
input and the configured layers (the head), with the application's own `preprocess_input` inside the
model as standard layers, so `model.keras` takes raw pixels and loads with `safe_mode=True`.

`weights: imagenet` goes through Keras' own download (its cache, its hash where Keras has one), which
reads the file under Keras' name from `$DLCLI_DATA_DIR` when it is there, for offline machines.

    >>> x = attach(config, pixels)        # pixels: a KerasTensor [None, 224, 224, 3], 0-255
"""

from __future__ import annotations

import contextlib
import email.message
import hashlib
import importlib
import os
import urllib.request
import urllib.response
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import keras
import numpy as np

from dlcli.config.checks import suggest
from dlcli.utils.errors import ConfigError, DataError

if TYPE_CHECKING:
    from dlcli.config.config import Config

#: ImageNet statistics used by the applications' preprocess_input (keras.applications.imagenet_utils).
CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def application(name: str, where: str):
    fn = getattr(keras.applications, name, None)
    if fn is None or not name[:1].isupper() or not callable(fn):
        names = [n for n in dir(keras.applications) if n[:1].isupper()]
        raise ConfigError(f"{where}: {name!r} is not a keras.applications model{suggest(name, names, n=2)}")
    return fn


def _candidates(channels: int) -> dict[str, list]:
    """Keras layers for each way an application's preprocess_input may scale pixels."""
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
    with mirrored_downloads() as downloads:
        try:
            base = fn(
                include_top=False,
                weights=weights,
                input_shape=tuple(int(d) for d in x.shape[1:]),
                pooling=spec.pooling,
                **spec.arguments,
            )
        except Exception as exc:  # noqa: BLE001 - urllib and Keras raise many kinds
            if downloads.requested is not None:
                raise download_failure(downloads, spec.name, exc) from None
            if not isinstance(exc, (ValueError, TypeError)):
                raise
            raise ConfigError(f"{config.where('model', 'backbone')}: {spec.name}: {exc}") from None
    base.trainable = spec.trainable
    x = _apply(steps, x)
    return base(x, training=False) if weights is not None else base(x)


class MirrorHandler(urllib.request.BaseHandler):
    """A urllib handler that answers a request from `folder` when a file of the URL's name is there,
    before any proxy or the network is tried; other URLs go on to the network. It remembers the URL
    asked for and the file it served, for the messages."""

    handler_order = 50  # ahead of ProxyHandler (100) and the network handlers (500)

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.requested: str | None = None
        self.served: Path | None = None
        self.handles: list = []

    def http_open(self, request):
        self.requested = request.full_url
        name = PurePosixPath(urlsplit(request.full_url).path).name
        local = self.folder / name if self.folder is not None and name else None
        if local is None or not local.is_file():
            return None
        self.served = local
        headers = email.message.Message()
        headers["Content-Length"] = str(local.stat().st_size)
        handle = open(local, "rb")  # noqa: SIM115 - closed when the application is built
        self.handles.append(handle)
        response = urllib.response.addinfourl(handle, headers, request.full_url, 200)
        response.msg = "OK"  # read by urllib's HTTPErrorProcessor, as on a network response
        return response

    https_open = http_open


@contextlib.contextmanager
def mirrored_downloads():
    """While an application is built, the files Keras downloads (its weights) come from
    $DLCLI_DATA_DIR when a file of that name is there: Keras' own `get_file` still caches and checks
    the file against the hash Keras publishes. Public APIs only: urllib's `install_opener`, which
    Keras' download reads through `urlopen`."""
    mirror = os.environ.get("DLCLI_DATA_DIR")
    handler = MirrorHandler(Path(mirror).expanduser() if mirror else None)
    urllib.request.install_opener(urllib.request.build_opener(handler))
    try:
        yield handler
    finally:
        urllib.request.install_opener(None)
        for handle in handler.handles:
            handle.close()


def download_failure(handler: MirrorHandler, name: str, exc: Exception) -> DataError:
    """What went wrong fetching `name`'s imagenet weights, and how to work offline."""
    fname = PurePosixPath(urlsplit(handler.requested or "").path).name
    if handler.served is not None:
        with open(handler.served, "rb") as handle:
            md5 = hashlib.file_digest(handle, "md5").hexdigest()
        return DataError(
            f"{handler.served}: Keras refused it as {name}'s imagenet weights ({exc} Its md5 is {md5}): "
            "replace it with Keras' file, or remove it to download"
        )
    folder = handler.folder
    tried = f"{folder / fname} (not there)" if folder is not None else "$DLCLI_DATA_DIR (not set)"
    return DataError(
        f"model.backbone: {name}'s imagenet weights could not be downloaded ({exc}). Tried {tried}, "
        f"Keras' cache, then {handler.requested}. To work offline, save that file as {fname} in a folder "
        "and set DLCLI_DATA_DIR to it"
    )
