"""Image files: decoded and resized as batches stream through tf.data (never all in memory), checked
once before training so that a file that cannot be decoded is named, and augmented inside the model
by Keras' random preprocessing layers (active in training only).

    >>> load = loader({"size": [224, 224], "channels": 3, ...})
    >>> tf.data.Dataset.from_tensor_slices(paths).map(load)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    import numpy as np

#: The [height, width] image files are resized to when preprocessing.image.size is not given.
DEFAULT_SIZE = (224, 224)


def parallel_calls() -> int:
    """Images decoded at once: one per core (tf.data's autotuning is off in dlcli's pipelines)."""
    return max(1, os.cpu_count() or 1)


def paths(frame, column: str) -> np.ndarray:
    """A table's column of image file paths as the model's input takes them (read as batches stream)."""
    return frame[column].astype(str).to_numpy(dtype=object)


def _decode(path, channels: int):
    import tensorflow as tf

    image = tf.image.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def resizer(state: dict):
    """Keras' Resizing layer for the fitted image state (size, interpolation, crop or pad)."""
    import keras

    return keras.layers.Resizing(
        *state["size"],
        interpolation=state["interpolation"],
        crop_to_aspect_ratio=state["crop_to_aspect_ratio"],
        pad_to_aspect_ratio=state["pad_to_aspect_ratio"],
        dtype="float32",
    )


def loader(state: dict):
    """`path → float32 pixels [height, width, channels]` (0–255), for tf.data's map."""
    resize = resizer(state)

    def load(path):
        import tensorflow as tf

        return resize(tf.cast(_decode(path, state["channels"]), "float32"))

    return load


def undecodable(paths: np.ndarray, channels: int) -> list[int]:
    """Positions of the files TensorFlow cannot read or decode, found in one parallel pass that keeps
    only each image's shape (memory does not grow with the number of images)."""
    import tensorflow as tf

    def shape(i, path):
        return i, tf.shape(_decode(path, channels))

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), tf.constant(paths)))
    ds = ds.map(shape, num_parallel_calls=parallel_calls()).ignore_errors().batch(1024)
    good = set()
    for indices, _ in ds:
        good.update(indices.numpy().tolist())
    return [i for i in range(len(paths)) if i not in good]


def check_files(paths: np.ndarray, channels: int, source: str, skip: bool) -> tuple[list[int], list[str]]:
    """The positions of undecodable files and their paths; a DataError naming them unless `skip`."""
    missing = [i for i, p in enumerate(paths) if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(str(paths[i]) for i in missing[:3])
        raise DataError(
            f"{source}: {len(missing)} image file(s) not found ({shown}{', …' if len(missing) > 3 else ''})"
        )
    bad = undecodable(paths, channels)
    if bad and not skip:
        shown = ", ".join(str(paths[i]) for i in bad[:3])
        raise DataError(
            f"{source}: {len(bad)} of {len(paths)} image file(s) cannot be decoded as JPEG, PNG, GIF or "
            f"BMP ({shown}{', …' if len(bad) > 3 else ''}): fix or remove them, or set "
            "data.skip_bad_files: true to leave them out"
        )
    return bad, [str(paths[i]) for i in bad]


def augmentation(augment: dict | None, seed: int) -> list:
    """Keras random preprocessing layers for `preprocessing.image.augment`, in a fixed order."""
    import keras

    if not augment:
        return []
    layers = []
    if augment.get("flip"):
        layers.append(keras.layers.RandomFlip(augment["flip"], seed=seed, name="augment_flip"))
    if augment.get("rotation"):
        layers.append(keras.layers.RandomRotation(augment["rotation"], seed=seed, name="augment_rotation"))
    if augment.get("zoom"):
        layers.append(keras.layers.RandomZoom(augment["zoom"], seed=seed, name="augment_zoom"))
    if augment.get("translation"):
        t = augment["translation"]
        layers.append(keras.layers.RandomTranslation(t, t, seed=seed, name="augment_translation"))
    if augment.get("contrast"):
        layers.append(keras.layers.RandomContrast(augment["contrast"], seed=seed, name="augment_contrast"))
    return layers
