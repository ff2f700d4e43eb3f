"""Checks of the config's inputs that need no data: text columns against the model they feed, image
options and backbones against the kind of data (image files, image arrays or a table).

    >>> problems(raw, images="files")
    [(("model", "backbone", "name"), "'MobileNetv2' is not a keras.applications model; ...")]
"""

from __future__ import annotations

from dlcli.config import catalog, graph
from dlcli.config.checks import Problem, get_path, suggest

#: Application arguments dlcli sets itself.
BACKBONE_OWN_ARGS = ("include_top", "weights", "input_shape", "input_tensor", "pooling", "classes")


def problems(raw: dict, images: str | None) -> list[Problem]:
    return [*_text(raw), *_branches(raw), *image_problems(raw, images)]


def _branches(raw: dict) -> list[Problem]:
    """model.branches against the inputs there are (`features`, each text column and a column of image
    files) and what each input must become before the join."""
    branches, key = get_path(raw, "model", "branches"), ("model", "branches")
    if not isinstance(branches, dict):
        return []
    columns = get_path(raw, "preprocessing", "text", "columns")
    columns = [c for c in columns if isinstance(c, str)] if isinstance(columns, list) else []
    image = get_path(raw, "preprocessing", "image", "column")
    image = [image] if isinstance(image, str) else []
    if not columns and not image:
        return [
            (
                key,
                "branches give each input its own layers, and this model has one input (its numeric and "
                "categorical columns; text columns would be others, in preprocessing.text, and a column "
                "of image files another, in preprocessing.image.column): put those layers in model.layers",
            )
        ]
    inputs = ["features", *columns, *image]
    problems: list[Problem] = [
        (
            (*key, name),
            f"no input is named {name!r} (this model's: {', '.join(inputs)}){suggest(str(name), inputs)}",
        )
        for name in branches
        if name not in inputs
    ]
    problems += _image_branch(raw, branches, image) + _int_text_branches(raw, branches, columns)
    return problems + _combine(raw, branches, inputs)


def _image_branch(raw: dict, branches: dict, image: list[str]) -> list[Problem]:
    """A column of image files beside the others reaches the join as a vector: through its branch,
    or a backbone's pooling."""
    pooled = get_path(raw, "model", "backbone", "pooling") in ("avg", "max")
    if not image or image[0] in branches or pooled:
        return []
    return [
        (
            ("model", "branches"),
            f"the image column {image[0]!r} joins the table's other columns as a vector: give it a "
            f"branch (model.branches.{image[0]}) that ends flat, e.g. `[{{Conv2D: {{filters: 8, "
            "kernel_size: 3}}, {GlobalAveragePooling2D: {}}]`, or a model.backbone with pooling: avg",
        )
    ]


def _int_text_branches(raw: dict, branches: dict, columns: list[str]) -> list[Problem]:
    """Int text is a sequence of token numbers: its branch starts with an Embedding."""
    if get_path(raw, "preprocessing", "text", "output_mode") not in ("int", None):
        return []
    problems: list[Problem] = []
    for column in columns:
        first = get_path(branches, column, 0)
        first = next(iter(first)) if isinstance(first, dict) and first else None
        if first != "Embedding":
            problems.append(
                (
                    ("model", "branches", column)
                    if first is None
                    else ("model", "branches", column, 0, first),
                    f"output_mode int gives {column!r} as a sequence of token numbers, which must become "
                    "a vector before it joins the other inputs: give it a branch that starts with `- "
                    "Embedding: {output_dim: 16}` and pools the sequence (GlobalAveragePooling1D)",
                )
            )
    return problems


def _combine(raw: dict, branches: dict, inputs: list[str]) -> list[Problem]:
    combine = get_path(raw, "model", "combine")
    if combine not in ("add", "average"):
        return []
    widths = {name: graph.output_width(branches.get(name)) for name in inputs}
    if None in widths.values() or len(set(widths.values())) > 1:
        shown = ", ".join(f"{n}: {w if w is not None else 'not stated'}" for n, w in widths.items())
        return [
            (
                ("model", "combine"),
                f"{combine} needs every input at the same width, stated by the last layer of its branch "
                f"({shown}): end each branch with a Dense of the same units, or combine: concatenate",
            )
        ]
    return []


def _text(raw: dict) -> list[Problem]:
    """preprocessing.text against the rest of the config: what its output feeds, and where it can be."""
    text = get_path(raw, "preprocessing", "text")
    if not isinstance(text, dict):
        return []
    problems: list[Problem] = []
    key = ("preprocessing", "text")
    mode = text.get("output_mode", "int")
    first = get_path(raw, "model", "layers", 0)
    first = next(iter(first)) if isinstance(first, dict) and first else None
    if get_path(raw, "preprocessing", "window") is not None:
        problems.append((key, "text columns are for tables; a series (preprocessing.window) reads numbers"))
    arrays = get_path(raw, "data", "dataset") in ("mnist", "fashion_mnist", "cifar10")
    if arrays or str(get_path(raw, "data", "path")).lower().endswith(".npz"):
        problems.append((key, "text columns need a table (CSV, TSV, Parquet, JSON lines), not image arrays"))
    branched = isinstance(get_path(raw, "model", "branches"), dict)  # each text column its own layers
    if mode == "int" and first is not None and first != "Embedding" and not branched:
        problems.append(
            (
                ("model", "layers", 0, first),
                "output_mode int (preprocessing.text) gives sequences of token numbers, which an "
                "Embedding turns into vectors: start model.layers with `- Embedding: {output_dim: 64}` "
                "(input_dim comes from the vocabulary), or set preprocessing.text.output_mode to "
                "tf_idf, multi_hot or count for Dense layers",
            )
        )
    columns = text.get("columns")
    if mode == "int" and isinstance(columns, list) and len(columns) > 1 and not branched:
        problems.append(
            (
                (*key, "columns"),
                f"output_mode int feeds one column's sequence to the Embedding (got {len(columns)} "
                "columns): join the texts into one column, or use output_mode tf_idf, multi_hot or count",
            )
        )
    if mode != "int" and text.get("output_sequence_length") is not None:
        problems.append(
            ((*key, "output_sequence_length"), f"applies to output_mode int (this is {mode}): remove it")
        )
    if get_path(raw, "model", "input_shape") is not None:
        problems.append(
            (("model", "input_shape"), "with text columns the inputs are named columns: remove input_shape")
        )
    return problems


def image_problems(raw: dict, images: str | None) -> list[Problem]:
    """preprocessing.image and model.backbone against the data: `images` is 'files' (a folder of
    images, or preprocessing.image.column), 'arrays' (NPZ, a Keras dataset) or None (a table)."""
    image = get_path(raw, "preprocessing", "image")
    image = image if isinstance(image, dict) else {}
    key = ("preprocessing", "image")
    problems: list[Problem] = []
    if images is None:
        for option in ("augment", "size", "crop_to_aspect_ratio", "pad_to_aspect_ratio"):
            if image.get(option) not in (None, False):
                problems.append(
                    (
                        (*key, option),
                        f"{option} is for images, and this data is a table: name a folder of class "
                        "subfolders as data.path, or a column of image file paths as "
                        "preprocessing.image.column; else remove it",
                    )
                )
    if images == "arrays":
        for option in ("size", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "column"):
            if image.get(option) not in (None, False):
                problems.append(
                    ((*key, option), f"{option} is for image files; image arrays keep their own shape")
                )
    if image.get("column") is not None and get_path(raw, "preprocessing", "window") is not None:
        problems.append(
            (
                (*key, "column"),
                "a column of image files gives each row a picture; a series (preprocessing.window) reads "
                "windows of numbers: remove one of them",
            )
        )
    if image.get("crop_to_aspect_ratio") and image.get("pad_to_aspect_ratio"):
        problems.append(((*key, "pad_to_aspect_ratio"), "choose crop_to_aspect_ratio or pad_to_aspect_ratio"))
    return problems + _backbone(raw, images)


def _backbone(raw: dict, images: str | None) -> list[Problem]:
    backbone = get_path(raw, "model", "backbone")
    fine_tune = get_path(raw, "train", "fine_tune") is not None
    if fine_tune and not isinstance(backbone, dict):
        return [(("train", "fine_tune"), "fine-tuning unfreezes a backbone's layers: add model.backbone")]
    if not isinstance(backbone, dict):
        return []
    key = ("model", "backbone")
    name = backbone.get("name")
    known = catalog.load().get("applications", {})
    problems: list[Problem] = []
    if images is None:
        problems.append((key, "a backbone reads images, and this data is a table: remove model.backbone"))
    if isinstance(name, str) and name not in known:
        problems.append(
            ((*key, "name"), f"{name!r} is not a keras.applications model{suggest(name, list(known), n=2)}")
        )
    elif isinstance(name, str):
        for arg in backbone.get("arguments") or {}:
            if arg in BACKBONE_OWN_ARGS:
                problems.append(((*key, "arguments", arg), f"dlcli sets {arg} itself: remove it"))
            elif arg not in known[name]["args"]:
                choices = [a for a in known[name]["args"] if a not in BACKBONE_OWN_ARGS]
                problems.append(
                    ((*key, "arguments", arg), f"{name} has no argument {arg!r}{suggest(arg, choices)}")
                )
    if fine_tune and backbone.get("trainable") is True:
        problems.append(
            (("model", "backbone", "trainable"), "with train.fine_tune it first stays frozen: remove it")
        )
    if get_path(raw, "preprocessing", "image", "rescale") is not None:
        problems.append(
            (
                ("preprocessing", "image", "rescale"),
                "the backbone scales pixels itself (its preprocess_input, inside the model): remove rescale",
            )
        )
    return problems
