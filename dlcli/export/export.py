"""`dlcli export`: the run's model with every fitted transformation inside one graph, written as a
SavedModel, a TFLite flatbuffer or an ONNX file, checked in its own runtime before it is kept.

The graph takes the raw inputs (one tensor per column: numbers with NaN for missing, categories and
text as strings; the raw window of a series; pixels; encoded image files) and returns `prediction`
(in the target's own units, or the class label) and `probabilities` (classification). Imputing,
scaling and one-hot are built from preprocessing.json with ops every runtime has: `x != x` for NaN,
a static hash table for categories (TFLite's HASHTABLE ops, ONNX's CategoryMapper). Text vectorizing
(regular expressions, splitting, n-grams) and image decoding have no TFLite builtin or ONNX op: those
runs export as SavedModel only, refused up front for the others.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tensorflow as tf

from dlcli.artifacts import runtime
from dlcli.artifacts.saved import load_preprocessing
from dlcli.datasets import pipeline, scoring
from dlcli.evaluation import with_tensorflow
from dlcli.export import converters
from dlcli.io import data as data_mod
from dlcli.io.images import resizer
from dlcli.metrics.tallies import ClassTally, RegressionTally
from dlcli.preprocessing.text import input_name
from dlcli.runs import record
from dlcli.runs import runs as runs_mod
from dlcli.utils import formats
from dlcli.utils.errors import DataError, RunError
from dlcli.utils.files import check_destination, commit, run_directory_of, sha256_of, write_atomic

if TYPE_CHECKING:
    from dlcli.evaluation.with_tensorflow import LoadedRun
    from dlcli.preprocessing.base import Preprocessor

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZE = ("float16", "int8")
#: Largest difference allowed between the artifact's and dlcli's predictions on the test rows (float32):
#: absolute for probabilities; for regression, relative to the prediction or, where it is smaller, to
#: the target's scale (its standard deviation, range or IQR as `preprocessing.target.scale` says).
TOLERANCE = 1e-5
#: Train rows int8 quantizing calibrates on (each tensor's range): plenty for a range, quick to run.
CALIBRATION_ROWS = 200


def refusal(prep: Preprocessor, fmt: str, quantize: str | None) -> str | None:
    """Why `fmt` cannot hold this run's model, or None."""
    if quantize and fmt == "saved_model":
        return "a SavedModel is written in float32; quantizing is for --format tflite or onnx"
    if fmt == "saved_model":
        return None
    reason = lacking(prep, fmt)
    if reason is None:
        return None
    return f"{reason}; --format saved_model holds {'them' if prep.text is not None else 'it'}"


def lacking(prep: Preprocessor, runtimes: str) -> str | None:
    """What the model does inside that `runtimes` (tflite, onnx: builtin operations only) have no
    operation for, or None."""
    if prep.text is not None:
        return (
            f"text columns ({', '.join(prep.text.columns)}) are vectorized inside the model with "
            f"regular expressions, splitting and n-grams, which {runtimes} has no operation for"
        )
    if prep.decodes_files:
        return (
            f"the model takes encoded image files (JPEG, PNG, GIF, BMP), and decoding them has no "
            f"{runtimes} operation"
        )
    return None


def unsupported(prep: Preprocessor) -> str | None:
    """What no format can take yet, or None."""
    if prep.differenced:
        return (
            "the series is differenced (preprocessing.series.difference): each window needs the value "
            "before it, which an exported model does not take yet; predict with dlcli"
        )
    return None


# ---- the graph --------------------------------------------------------------------------------------
class RawInputs(tf.Module):
    """The run's model behind its fitted preprocessing: `serve` maps the raw inputs (`batch` rows, any
    number if None) to the named outputs. Every table and variable the graph reads is tracked here."""

    def __init__(self, prep: Preprocessor, model, specs: list[runtime.InputSpec], batch: int | None = None):
        super().__init__()
        self.model = model
        self.tables = []
        # tracked here: Keras' Resizing keeps a seed generator's state
        self.resize = resizer(prep.image) if prep.decodes_files else None
        # every tf.Variable the graph reads, augmentation layers' seed states too (as Keras'
        # ExportArchive tracks them): otherwise saving refuses a capture "not reachable from root"
        layers = [model, *([self.resize] if self.resize is not None else [])]
        self.keras_variables = [getattr(v, "value", v) for layer in layers for v in layer.variables]
        if prep.categorical is not None:
            for categories, fill in zip(prep.categorical.categories_, prep.categorical.fill_, strict=True):
                keys = [str(c) for c in categories]
                # a missing category (the empty string) is the imputed one, or unseen when it is new
                values = list(range(len(keys))) + [keys.index(fill) if fill in keys else -1]
                init = tf.lookup.KeyValueTensorInitializer(
                    tf.constant([*keys, ""]), tf.constant(values, tf.int64)
                )
                self.tables.append(tf.lookup.StaticHashTable(init, default_value=-1))

        def serve(inputs):  # prep and specs stay Python values of the closure, never tracked state
            if prep.reads_files:
                x = _decoded(prep, inputs["image"], self.resize)
            else:
                x = _model_input(prep, inputs, specs, self.tables, self.resize)
            return _outputs(prep, self.model(x, training=False))

        # no autograph: the branches above are on Python values, and Keras' layers need none (its own
        # train and test functions are `do_not_convert`); converting this code took 40 % of an export
        self.serve = tf.function(
            serve, input_signature=[{s.name: s.tensor_spec(batch) for s in specs}], autograph=False
        )


def _numeric(prep: Preprocessor, x, i: int):

    state = prep.numeric
    missing = tf.not_equal(x, x)  # NaN (ONNX: IsNaN; TFLite: NOT_EQUAL)
    if state.non_finite == "missing":
        missing = tf.logical_or(missing, tf.equal(tf.abs(x), float("inf")))
    if state.statistics_[i] is not None:
        x = tf.where(missing, tf.constant(state.statistics_[i], x.dtype), x)
    scaled = (x - tf.constant(state.center_[i], x.dtype)) / tf.constant(state.scale_[i], x.dtype)
    return tf.cast(scaled, tf.float32)  # as dlcli scales: in the input's precision, then float32


def _categorical(prep: Preprocessor, x, i: int, table):
    """One categorical column's block of the feature vector: its one-hot columns, or one value."""

    index = table.lookup(x)  # -1: a category not seen in training
    n = len(prep.categorical.categories_[i])
    encode = prep.categorical.encode
    if encode == "embedding":
        return tf.expand_dims(tf.cast(index + 1, tf.float32), -1)
    if encode == "ordinal":
        return tf.expand_dims(tf.cast(index + 1, tf.float32) / float(n), -1)
    hot = tf.equal(tf.expand_dims(index, -1), tf.range(n, dtype=tf.int64))
    return tf.cast(hot, tf.float32)


def _model_input(prep: Preprocessor, inputs: dict, specs: list[runtime.InputSpec], tables: list, resize=None):
    """The model's input from the raw ones: the feature vector, and where the model has named inputs
    the text columns' strings and the decoded images of a column of image files too."""
    if prep.images:
        (spec,) = specs
        return inputs[spec.name]
    by_column = {s.column: inputs[s.name] for s in specs}
    blocks = [tf.expand_dims(_numeric(prep, by_column[c], i), -1) for i, c in enumerate(prep.numeric.columns)]
    blocks += [_categorical(prep, by_column[c], i, tables[i]) for i, c in enumerate(prep.categorical.columns)]
    features = tf.concat(blocks, axis=-1) if blocks else None
    if prep.text is None and prep.image_input is None:
        return features
    named = {"features": features} if prep.feature_width else {}
    if prep.text is not None:
        named.update({input_name(c): tf.reshape(by_column[c], [-1, 1]) for c in prep.text.columns})
    if prep.image_input is not None:
        column = prep.image["column"]
        named[input_name(column)] = _decoded(prep, by_column[column], resize)
    return named


def _decoded(prep: Preprocessor, encoded, resize):
    """Encoded image files → pixels at the trained size, as dlcli's loader makes them."""

    channels = prep.image["channels"]

    def one(data):
        image = tf.image.decode_image(data, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        return resize(tf.cast(image, "float32"))

    size = prep.image["size"]
    return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec([*size, channels], tf.float32))


def _outputs(prep: Preprocessor, y) -> dict:
    """The graph's named outputs: `prediction` (and `probabilities`); several targets: each target's,
    its output's name after them (`prediction_price`, `probabilities_city`)."""
    if prep.outputs is not None:
        return {
            f"{k}_{name}": v
            for name, view in prep.outputs.items()
            for k, v in _outputs(view, y[name]).items()
        }
    y = tf.cast(y, tf.float32)
    target = prep.target_encoder
    if prep.task == "regression":
        flat = tf.reshape(y, [tf.shape(y)[0], -1])[:, 0]
        return {
            "prediction": flat * tf.constant(target.scale_, tf.float32)
            + tf.constant(target.center_, tf.float32)
        }
    if prep.label_mode == "binary":
        p1 = tf.reshape(y, [-1, 1])
        probs = tf.concat([1.0 - p1, p1], axis=1)
    else:
        probs = y
    classes = target.classes_
    labels = (
        tf.constant([int(c) for c in classes], tf.int64)
        if all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        else tf.constant([str(c) for c in classes])
    )
    return {"prediction": tf.gather(labels, tf.argmax(probs, axis=1)), "probabilities": probs}


# ---- checking --------------------------------------------------------------------------------------
def _test_rows(loaded_run: LoadedRun) -> tuple[str, Any, Any, Any]:
    """`(split, rows, truth, train)`: the run's test rows as dlcli reads them (a table, with the rows
    before it that a series' first window reads; or an array of pixels), their true targets (for a
    series, of each window that has one), and the first train rows (int8's calibration)."""

    prep = loaded_run.prep
    loaded = data_mod.load(loaded_run.need_config())
    split = next(s for s in ("test", "validation", "train") if s in loaded.splits)
    part = loaded.splits[split]
    train = loaded.splits["train"]
    if prep.arrays:
        return split, part[0], prep.raw_target(part, split), train[0][:CALIBRATION_ROWS]
    train = train.iloc[: CALIBRATION_ROWS + prep.context]
    if not prep.windowed:
        return split, part, prep.raw_target(part, split), train
    earlier = [
        loaded.splits[s] for s in data_mod.SPLITS[: data_mod.SPLITS.index(split)] if s in loaded.splits
    ]
    frame = pd.concat([pd.concat(earlier).tail(prep.context), part]) if earlier else part
    length, horizon = prep.window["length"], prep.window["horizon"]
    return split, frame, prep.raw_target(frame, split)[length - 1 + horizon :], train


def _reference(loaded_run: LoadedRun, rows, split: str) -> tuple[Any, Any] | dict[str, tuple[Any, Any]]:
    """dlcli predict's (predictions, probabilities) for the rows; several targets: by output name."""
    prep = loaded_run.prep
    ex = scoring.examples(prep, rows, source=f"the {split} rows", labelled=False)
    outputs = pipeline.forward(loaded_run.model, ex.dataset(prep, loaded_run.forward_batch))
    if prep.outputs is not None:
        return {name: view.decode(outputs[name]) for name, view in prep.outputs.items()}
    return prep.decode(outputs)


def _checked(prep: Preprocessor, split: str, expected, got: dict, truth) -> dict:
    """The artifact against dlcli predict on the rows, and each one's test metric; several targets:
    each target's (under `outputs`), the largest difference and every label mismatch summed at the top,
    the metrics of the first target at the top (what --max-drop judges)."""
    if prep.outputs is None:
        checked = {"split": split, **compare(prep, expected, got)}
        n = len(truth)
        name, ours = metric(prep, truth, expected[0][:n])
        _, theirs = metric(prep, truth, runtime.labels(got["prediction"][:n]))
        return {**checked, "metric": name, "dlcli_metric": ours, "artifact_metric": theirs}
    each = {}
    for name, view in prep.outputs.items():
        own = {k: got[f"{k}_{name}"] for k in ("prediction", "probabilities") if f"{k}_{name}" in got}
        each[name] = _checked(view, split, expected[name], own, truth[name])
    first = next(iter(each.values()))
    return {
        "split": split,
        "rows": first["rows"],
        "max_difference": max(c["max_difference"] for c in each.values()),
        "label_mismatches": sum(c.get("label_mismatches", 0) for c in each.values()),
        "metric": f"{next(iter(each))}.{first['metric']}",
        "dlcli_metric": first["dlcli_metric"],
        "artifact_metric": first["artifact_metric"],
        "outputs": each,
    }


def compare(prep: Preprocessor, expected: tuple, got: dict) -> dict:
    """Differences between dlcli's (predictions, probabilities) and an artifact's outputs."""

    predictions, probs = expected
    out = {"rows": int(len(predictions))}
    if prep.task == "regression":
        reference = np.asarray(predictions, dtype="float64")
        values = np.asarray(got["prediction"], dtype="float64").reshape(-1)
        # relative to the prediction, or to the target's spread where a prediction is near zero: the
        # graph undoes the target's scaling in float32, whose rounding is relative to the values summed
        spread = abs(prep.target_encoder.scale_) if prep.target_encoder.scale != "none" else 1.0
        scale = np.maximum(max(1.0, spread), np.abs(reference))
        out["max_difference"] = float(np.max(np.abs(values - reference) / scale)) if len(values) else 0.0
        return out
    values = np.asarray(got["probabilities"], dtype="float64")
    out["max_difference"] = float(np.max(np.abs(values - probs))) if len(values) else 0.0
    labels = runtime.labels(got["prediction"])
    out["label_mismatches"] = int(sum(str(a) != str(b) for a, b in zip(labels, predictions, strict=True)))
    return out


def metric(prep: Preprocessor, truth, predictions) -> tuple[str, float]:
    """The test metric a quantized artifact is judged on: accuracy or r2."""

    if prep.task == "regression":
        tally = RegressionTally()
        tally.update_state(truth, predictions)
        return "r2", tally.result()["r2"]
    # the artifact's labels come back as text (ONNX and TFLite string tensors): compared as text
    tally = ClassTally([str(c) for c in prep.target_encoder.classes_])
    tally.update_state([str(t) for t in truth], [str(p) for p in predictions])
    return "accuracy", tally.result()["accuracy"]


# ---- the command ------------------------------------------------------------------------------------
def default_path(run_dir: Path, fmt: str, quantize: str | None) -> Path:
    suffix = f".{quantize}" if quantize else ""
    return (
        run_dir
        / "export"
        / {"saved_model": "saved_model", "tflite": f"model{suffix}.tflite", "onnx": f"model{suffix}.onnx"}[
            fmt
        ]
    )


def _checked_request(run_dir: Path, fmt: str, quantize: str | None) -> Preprocessor:
    """The run's preprocessing state, once the format, the quantizing and the extra are known good."""

    if fmt not in FORMATS:
        raise DataError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise DataError(f"--quantize {quantize}: expected {' or '.join(QUANTIZE)}")
    prep = load_preprocessing(run_dir)
    reason = unsupported(prep) or refusal(prep, fmt, quantize)
    if reason:
        formats = [f for f in FORMATS if not refusal(prep, f, None)] if not unsupported(prep) else []
        can = f" (this run exports as: {', '.join(formats)})" if formats and fmt not in formats else ""
        raise DataError(f"--format {fmt}: {reason}{can}")
    needed = {"tflite": ["ai_edge_litert"], "onnx": ["tf2onnx", "onnx", "onnxruntime"]}.get(fmt, [])
    for module in needed:
        runtime.need(module, "export")
    return prep


def export(
    run: str | Path,
    fmt: str,
    output: str | Path | None = None,
    quantize: str | None = None,
    max_drop: float = 0.01,
    runs_dir: Path | str = runs_mod.DEFAULT_RUNS_DIR,
) -> dict:
    """Write the run's raw-input model as `fmt`, after checking it on the test rows in its runtime.
    Returns the metadata written beside it (and, for ONNX, inside it)."""

    run_dir = runs_mod.resolve(run, Path(runs_dir))
    prep = _checked_request(run_dir, fmt, quantize)
    path = destination(run_dir, fmt, output, quantize)
    loaded_run = with_tensorflow.load_run(run_dir, runs_dir, device="cpu")
    specs = runtime.input_specs(prep, fmt)
    meta = runtime.metadata(prep, specs, fmt, quantize, run_dir)
    split, rows, truth, train = _test_rows(loaded_run)
    if fmt == "tflite" and prep.numeric is not None:  # its numbers are float32: dlcli's on the same values
        rows = rows.copy()
        for column in prep.numeric.columns:
            rows[column] = rows[column].astype("float32").astype("float64")
    expected = _reference(loaded_run, rows, split)
    module = RawInputs(prep, loaded_run.model, specs)
    path.parent.mkdir(parents=True, exist_ok=True)
    # beside the destination (one file system: the artifact is renamed into place, never copied)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent) as tmp:
        tmp = Path(tmp)
        saved_model = tmp / "saved_model"
        converters.write_saved_model(module, saved_model)
        artifact = saved_model if fmt == "saved_model" else tmp / path.name
        if fmt == "tflite":
            converters.write_tflite(
                saved_model,
                artifact,
                quantize,
                lambda: RawInputs(prep, loaded_run.model, specs, batch=1),
                _calibration(runtime.inputs_of(meta, train, "the train rows"))
                if quantize == "int8"
                else None,
            )
        elif fmt == "onnx":
            converters.write_onnx(saved_model, artifact, quantize, meta)
        runner = runtime.open_artifact(artifact, fmt)
        got = runtime.run_batched(runner, runtime.inputs_of(meta, rows, f"the {split} rows"))
        checked = _checked(prep, split, expected, got, truth)
        _judge(checked, quantize, max_drop, fmt)
        meta["checked"] = checked
        if quantize == "int8":
            meta["int8_tensors"] = _quantized(artifact, fmt)
        _place(artifact, path, meta, fmt)
    return {**meta, "path": str(path)}


def _calibration(inputs: dict):
    """int8's representative dataset: the train rows' raw inputs, one row per example."""

    def examples():
        for i in range(len(next(iter(inputs.values())))):
            yield {
                k: (v[i : i + 1].astype(bytes) if v.dtype == object else v[i : i + 1])
                for k, v in inputs.items()
            }

    return examples


def _quantized(artifact: Path, fmt: str) -> int:
    """The int8 tensors the artifact holds; none means the converter kept the model in float32,
    and a file that says int8 would mislead: refused."""
    count = converters.int8_tensors(artifact, fmt)
    if not count:
        raise RunError(
            f"--quantize int8: the {fmt} converter quantized none of this model's tensors (it is kept in "
            "float32 whole), so nothing is written; export without --quantize, or with float16"
        )
    return count


def _judge(checked: dict, quantize: str | None, max_drop: float, fmt: str) -> None:
    if quantize:
        if "metric" in checked and checked["dlcli_metric"] - checked["artifact_metric"] > max_drop:
            raise RunError(
                f"the {quantize} {fmt} model's test {checked['metric']} is {checked['artifact_metric']:.4f} "
                f"against {checked['dlcli_metric']:.4f} unquantized, a drop of more than {max_drop} "
                "(--max-drop): nothing is written; export without --quantize, or allow more"
            )
        return
    if checked["max_difference"] > TOLERANCE or checked.get("label_mismatches"):
        labels = checked.get("label_mismatches")
        raise RunError(
            f"the {fmt} model's predictions on the {checked['split']} rows differ from dlcli predict's by up "
            f"to {checked['max_difference']:.3g} (allowed {TOLERANCE:g}"
            f"{f', {labels} labels differ' if labels else ''}"
            "): nothing is written. Report this with the run's config"
        )


def destination(run_dir: Path, fmt: str, output: str | Path | None, quantize: str | None) -> Path:
    """Where the export goes, checked before any work (files.check_destination): never the run's own
    files, a folder or file that is not an earlier export of this format, or a name of another format."""
    path = Path(output) if output else default_path(run_dir, fmt, quantize)
    suffixes = () if fmt == "saved_model" else (f".{fmt}",)
    if fmt == "saved_model" and path.suffix.lower() in formats.NOT_FOLDERS:
        raise DataError(
            f"--output {path}: a SavedModel is a folder, and {path.suffix!r} names a file of another "
            f"kind; name the folder {path.with_suffix('').name}"
        )

    def earlier(existing: Path) -> bool:
        try:
            return runtime.read_metadata(existing, verify=False).get("artifact") == fmt
        except RunError:
            return False

    kind = {"saved_model": "SavedModels (folders)", "tflite": "TFLite models", "onnx": "ONNX models"}[fmt]
    path = check_destination(
        path,
        "--output",
        kind=kind,
        suffixes=suffixes,
        folder=fmt == "saved_model",
        replaceable=earlier,
        inside_run="export",
    )
    beside = runtime.metadata_path(path) if fmt != "saved_model" else None
    if beside is not None and beside.exists() and not (path.exists() and earlier(path)):
        raise DataError(
            f"--output {path}: its metadata would go to {beside}, which exists and is not an earlier "
            "export's: remove it yourself, or choose a new name"
        )
    return path


def _place(artifact: Path, path: Path, meta: dict, fmt: str) -> None:
    """The artifact and its metadata (`<path>.json`, or dlcli.json inside a SavedModel) renamed into
    place from the temporary folder beside `path`: an earlier export of the same name is replaced
    whole (destination() checked that it is one)."""
    try:
        if fmt == "saved_model":
            write_atomic(artifact / "dlcli.json", json.dumps(meta, indent=2))
            if path.exists():  # the earlier export steps aside into the temporary folder, removed with it
                os.replace(path, artifact.parent / "earlier")
            commit(artifact, path)
            return
        meta["artifact_sha256"] = sha256_of(artifact)
        commit(artifact, path)
        write_atomic(runtime.metadata_path(path), json.dumps(meta, indent=2))
        run_dir = run_directory_of(path.resolve())
        if run_dir is not None:  # the run's own export/: its digests join the run's
            names = [str(p.resolve().relative_to(run_dir)) for p in (path, runtime.metadata_path(path))]
            record.seal_file(run_dir, *names)
    except OSError as exc:
        raise DataError(f"--output {path}: cannot be written ({exc.strerror or exc})") from None
