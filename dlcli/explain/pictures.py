"""Occlusion maps (Zeiler and Fergus, 2014) of an image model: a grey square slides over the image, and
each pixel's value is how much the predicted class's log-odds drop, on average, while a square covers
it. Drawn over the image as RUN/explain/map_<n>.png.

    >>> maps = occlusion_maps(loaded_run, test_split, 4, run_dir / "explain")
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dlcli.utils.files import write_atomic

#: The square is this share of the image's shorter side; it moves by half of itself.
PATCH_SHARE = 1 / 7
#: Occluded images sent to the model at once.
BATCH = 256


def log_scorer(model, prep):
    """`(head, to_log_probabilities)`: the model up to its output layer's sum and the function that
    turns head's outputs into each class's log-probability, computed in float64 from the output
    Dense layer's weights, so a confident prediction (a sigmoid of 0.99999994 in float32) still
    shows how much a word or a patch moves it. Another output layer: the model, and the log of the
    probabilities `prep.decode` gives."""
    import keras

    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if isinstance(last, keras.layers.Dense) and activation in ("sigmoid", "softmax"):
        head = keras.Model(model.input, last.input)  # the same structure of inputs (one, or named)
        kernel, bias = (np.asarray(w, dtype="float64") for w in last.get_weights())

        def to_log(features) -> np.ndarray:
            z = np.asarray(features, dtype="float64") @ kernel + bias
            if activation == "sigmoid":
                z = z.reshape(-1)
                return np.stack([-np.logaddexp(0, z), -np.logaddexp(0, -z)], axis=1)
            return z - np.logaddexp.reduce(z, axis=1, keepdims=True)

        return head, to_log
    return model, lambda outputs: np.log(np.clip(prep.decode(outputs)[1].astype("float64"), 1e-300, 1.0))


def log_odds(logs: np.ndarray, label: int) -> np.ndarray:
    """Each row's log-odds of class `label` against all the others, from log-probabilities: it keeps
    moving where the probability itself has saturated (0.99995 against 0.9999995)."""
    others = np.delete(logs, label, axis=1)
    return logs[:, label] - np.logaddexp.reduce(others, axis=1)


def occlusion_maps(loaded_run, part, rows: int, folder: Path) -> list[dict]:
    """A map for each of the first `rows` images of `part` (arrays, or a table of image paths)."""
    prep = loaded_run.prep
    classes = prep.target_encoder.classes_ if prep.target_encoder is not None else None
    scorer = log_scorer(loaded_run.model, prep)
    out = []
    for i, (name, pixels) in enumerate(_images(prep, part, rows), start=1):
        heat, label, probability = occlusion(scorer, pixels)
        shown = str(classes[label]) if classes is not None else str(label)
        path = folder / f"map_{i}.png"
        draw(pixels, heat, path, f"{name}: {shown} (p {probability:.3f})")
        out.append(
            {
                "image": name,
                "prediction": shown,
                "probability": probability,
                "map": str(path),
                "largest_drop": float(heat.max()),
            }
        )
    return out


def _images(prep, part, rows: int) -> list[tuple[str, np.ndarray]]:
    """`(name, pixels as the model takes them)` of the first `rows` images."""
    if prep.arrays:
        x = part[0] if isinstance(part, tuple) else part
        return [(f"image {i + 1}", np.asarray(x[i])) for i in range(min(rows, len(x)))]
    column = prep.image["column"]
    load = prep.loader()
    paths = [str(p) for p in part[column].head(rows)]
    return [(Path(p).name, load(p).numpy()) for p in paths]


def occlusion(scorer, pixels: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The drop map (height × width) of the predicted class's log-odds, the class and its
    probability. `scorer`: log_scorer's pair."""
    head, to_log = scorer
    image = pixels if pixels.ndim == 3 else pixels[..., None]
    height, width = image.shape[:2]
    patch = max(2, round(min(height, width) * PATCH_SHARE))
    stride = max(1, patch // 2)
    fill = image.reshape(-1, image.shape[-1]).mean(axis=0)
    corners = [
        (y, x)
        for y in range(0, max(1, height - patch + 1), stride)
        for x in range(0, max(1, width - patch + 1), stride)
    ]
    variants = np.repeat(image[None], len(corners) + 1, axis=0).astype("float32")
    for k, (y, x) in enumerate(corners, start=1):
        variants[k, y : y + patch, x : x + patch] = fill
    shaped = variants.reshape((len(variants), *pixels.shape)).astype(head.inputs[0].dtype)
    logs = np.concatenate(
        [to_log(head(shaped[i : i + BATCH], training=False)) for i in range(0, len(shaped), BATCH)]
    )
    label = int(np.argmax(logs[0]))
    odds = log_odds(logs, label)
    drops = odds[0] - odds[1:]
    heat, count = np.zeros((height, width)), np.zeros((height, width))
    for drop, (y, x) in zip(drops, corners, strict=True):
        heat[y : y + patch, x : x + patch] += drop
        count[y : y + patch, x : x + patch] += 1
    return heat / np.maximum(count, 1), label, float(np.exp(logs[0, label]))


def draw(pixels: np.ndarray, heat: np.ndarray, path: Path, title: str) -> None:
    """The image as the model saw it, and beside it the map over the image in grey: red where covering
    the image lowers the predicted class's log-odds, blue where it raises them."""
    image = pixels.astype("float64")
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-9)
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    fig = Figure(figsize=(7.0, 3.4))
    left, right = fig.subplots(1, 2)
    left.imshow(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image, cmap="gray")
    left.set_title(title, fontsize="small")
    right.imshow(grey, cmap="gray")
    reach = max(float(np.abs(heat).max()), 1e-9)
    shown = right.imshow(heat, cmap="RdBu_r", alpha=0.6, vmin=-reach, vmax=reach)
    fig.colorbar(shown, ax=right, label="drop in log-odds when covered")
    right.set_title("occlusion map", fontsize="small")
    for ax in (left, right):
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
