"""The preprocessing factory: which kind fits the data (tabular.py: tables and series; pixels.py: image
arrays and image files), fitted on the train split, or read back from its JSON state. The one place
that switches on a kind.

    >>> prep = preprocessing.fit(config, loaded.splits["train"], loaded.source, loaded.columns)
    >>> x, y = prep.features(frame), prep.encode_target(prep.raw_target(frame))
    >>> preprocessing.from_json(prep.to_json()).features(frame)
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from dlcli.config import checks
from dlcli.config.config import Config
from dlcli.io import columns as columns_mod
from dlcli.io.images import DEFAULT_SIZE
from dlcli.preprocessing.base import Preprocessor
from dlcli.preprocessing.pixels import ImageFilesPreprocessor, ImagePreprocessor
from dlcli.preprocessing.state_schema import PreprocessingState
from dlcli.preprocessing.tabular import SeriesPreprocessor, TablePreprocessor
from dlcli.preprocessing.text import TextVectorizer
from dlcli.preprocessing.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder
from dlcli.utils.errors import ConfigError, DataError, RunError

#: The state's `kind` → the class that reads it back.
KINDS: dict[str, type[Preprocessor]] = {
    kind.KIND: kind
    for kind in (TablePreprocessor, SeriesPreprocessor, ImagePreprocessor, ImageFilesPreprocessor)
}


def fit(
    config: Config, train: Any, source: str = "", cols: columns_mod.Columns | None = None
) -> Preprocessor:
    """Fitted on the train split; `cols` as data.load resolved them on the whole file."""
    if config.several:
        return _fit_several(config, train, source, cols)
    target = TargetEncoder(config.data.target_column, config.task, config.preprocessing.target.scale)
    if isinstance(train, tuple):  # image arrays
        x, y = train
        rescale = config.preprocessing.image.rescale
        image = {"shape": list(x.shape[1:]), "dtype": str(x.dtype), "rescale": rescale}
        prep = ImagePreprocessor(config.task, checks.label_mode(config.loss), target.fit(y), image=image)
    elif cols is not None and cols.image and not config.model.branches:  # image files only
        prep = _fit_image_files(config, train, source, cols, target)
    else:
        prep = _fit_table(config, train, source, cols or columns_mod.resolve(config, train, source), target)
    check_two_classes(prep, config.loss)
    return prep


def _fit_several(config: Config, train, source: str, cols) -> TablePreprocessor:
    """Several targets: the feature columns fitted once with the first target, then each other
    target's encoder."""
    if isinstance(train, tuple) or (cols is not None and cols.image and not config.model.branches):
        raise ConfigError(
            f"{config.where('data', 'target')}: several targets are columns of a table, and this data is "
            "images: give one target"
        )
    first, *others = config.outputs
    target = TargetEncoder(first.column, first.task, config.preprocessing.target.scale)
    prep = _fit_table(
        config, train, source, cols or columns_mod.resolve(config, train, source), target, first
    )
    targets = [prep.target_encoder]
    for output in others:
        encoder = TargetEncoder(output.column, output.task, config.preprocessing.target.scale)
        targets.append(encoder.fit(columns_mod.target_values(train, output.column, output.task, source)))
    return per_output(config, prep, targets)


def per_output(config: Config, features: TablePreprocessor, targets: list[TargetEncoder]) -> Preprocessor:
    """Several targets: `features` (the fitted feature transformers) as the features of one
    preprocessor per output, each with its fitted target encoder (in config.outputs' order) and
    checked; the in-memory fit and the streamed statistics pass alike. One target: `features`."""
    if not config.several:
        check_two_classes(features, config.loss)
        return features
    views = {}
    for output, target in zip(config.outputs, targets, strict=True):
        view = of_columns(
            config, target, features.numeric, features.categorical, features.text, output, features.image
        )
        check_two_classes(view, output.loss)
        views[output.name] = view
    return features.with_outputs(views)


def check_two_classes(prep: Preprocessor, loss: str) -> None:
    """A binary loss (one sigmoid unit) needs a target of exactly two classes."""
    if prep.label_mode == "binary" and len(prep.target_encoder.classes_) != 2:
        raise DataError(
            f"loss {loss} needs exactly 2 classes, but target {prep.target_encoder.column!r} has "
            f"{len(prep.target_encoder.classes_)}: use sparse_categorical_crossentropy"
        )


def _fit_image_files(config: Config, train, source: str, cols, target) -> ImageFilesPreprocessor:
    image = _image_state(config, cols.image[0])
    y = columns_mod.target_values(train, target.column, config.task, source)
    return ImageFilesPreprocessor(config.task, checks.label_mode(config.loss), target.fit(y), image=image)


def _image_state(config: Config, column: str) -> dict:
    """How the image files of `column` are decoded and resized, as the state records it."""
    pre = config.preprocessing
    size = list(pre.image.size or DEFAULT_SIZE)
    return {
        **pre.image.model_dump(include={"rescale", "channels", "interpolation"}),
        **pre.image.model_dump(include={"crop_to_aspect_ratio", "pad_to_aspect_ratio"}),
        "column": column,
        "size": size,
        "shape": [*size, pre.image.channels],
        "dtype": "float32",
    }


def of_columns(
    config: Config, target, numeric, categorical, text=None, output=None, image=None
) -> TablePreprocessor:
    """A table's or a series' preprocessor from its (fitted or to-be-fitted) column transformers:
    a series (preprocessing.window) with its windows as the state records them. Used by the
    in-memory fit and the streamed statistics pass alike. `output`: the target's, of several;
    `image`: a column of image files beside the others (model.branches), its state."""
    pre = config.preprocessing
    output = output or config.outputs[0]
    label_mode = output.label_mode
    if pre.window is None:
        return TablePreprocessor(
            output.task, label_mode, target, numeric, categorical, image=image, text=text
        )
    window = {
        **pre.window.model_dump(),
        "difference": pre.series.difference,
        "series_id": config.data.series_id,
    }
    return SeriesPreprocessor(
        output.task,
        label_mode,
        target,
        numeric,
        categorical,
        window,
        time_column=config.data.time_column,
        text=text,
    )


def _fit_table(config: Config, train, source: str, cols, target, output=None) -> TablePreprocessor:
    """A table or a series: numeric, categorical and text columns, and the target."""
    pre = config.preprocessing
    numeric = NumericTransformer(
        cols.numeric,
        pre.numeric.impute,
        pre.numeric.fill_value,
        pre.numeric.scale,
        pre.numeric.non_finite,
    )
    categorical = CategoricalEncoder(
        cols.categorical, pre.categorical.impute, pre.categorical.fill_value, pre.categorical.encode
    )
    text = None
    if pre.text is not None:
        text = TextVectorizer(cols.text, **pre.text.model_dump(exclude={"columns"}))
    image = _image_state(config, cols.image[0]) if cols.image else None
    prep = of_columns(config, target, numeric, categorical, text, output, image)
    try:
        numeric.fit(prep.series_input(train))
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    categorical.fit(train)
    if text is not None:
        text.fit(train, source)
    y = columns_mod.target_values(train, target.column, prep.task, source)
    if prep.differenced:  # the target is the change over `horizon` steps
        horizon = pre.window.horizon
        y = y[horizon:] - y[:-horizon]
    target.fit(y)
    return prep


def from_json(text: str, source: str = "preprocessing.json") -> Preprocessor:
    """Rebuild from JSON checked against `state_schema` (typed fields, nothing extra)."""
    try:
        state = PreprocessingState.model_validate_json(text).model_dump()
    except ValidationError as exc:
        # pydantic's own words (a state file is not hand-written), one per key: a union
        # (float | int) fails once per branch
        problems = {}
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"] if p not in ("float", "int", "str", "bool"))
            problems.setdefault(loc, f"{loc}: {e['msg']}")
        problems = "; ".join(list(problems.values())[:5])
        raise RunError(f"{source}: not a valid dlcli preprocessing state ({problems})") from None
    kind = KINDS[state["kind"]]
    numeric = NumericTransformer.from_state(state["numeric"]) if state["numeric"] else None
    categorical = CategoricalEncoder.from_state(state["categorical"]) if state["categorical"] else None
    text = TextVectorizer.from_state(state["text"]) if state["text"] else None
    features = (numeric, categorical, state["window"], state["image"], state["time_column"], text)
    prep = kind(state["task"], state["label_mode"], TargetEncoder.from_state(state["target"]), *features)
    if not state.get("outputs"):
        return prep
    return prep.with_outputs(
        {
            o["name"]: kind(
                o["target"]["task"], o["label_mode"], TargetEncoder.from_state(o["target"]), *features
            )
            for o in state["outputs"]
        }
    )
