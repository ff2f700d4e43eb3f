"""Exported models run without TensorFlow: the metadata an export writes beside its artifact, raw
inputs made from a table or records by it, and the ONNX Runtime and LiteRT sessions.

Nothing here imports TensorFlow (a SavedModel is opened with it, lazily, for `export` and `serve`).
pandas is used only by `inputs_of` for tables; records (`serve`) need NumPy alone.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import math
import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlcli.io.reading import not_a_number, row_where
from dlcli.preprocessing.preprocessing import KINDS
from dlcli.runs.record import check_sealed
from dlcli.utils.about import __version__
from dlcli.utils.arrays import check_pixels
from dlcli.utils.errors import DataError, RunError
from dlcli.utils.files import run_directory_of, sha256_of

if TYPE_CHECKING:
    from dlcli.preprocessing.base import Preprocessor

FORMAT = "dlcli.export/1"
#: Rows run through an artifact at once (bounded memory for a large input).
BATCH = 1024
#: The package each runtime module comes from, for the "install it" message.
PACKAGES = {
    "onnxruntime": "onnxruntime",
    "ai_edge_litert": "ai-edge-litert",
    "tf2onnx": "tf2onnx",
    "onnx": "onnx",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
}


def need(module: str, extra: str) -> None:

    try:
        found = importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: made unimportable
        found = False
    if not found:
        raise DataError(
            f"{PACKAGES.get(module, module)} is not installed; it comes with the {extra!r} extra: "
            f"pip install 'dlcli[{extra}]'"
        )


class BadInput(DataError):
    """An input value the model cannot take, with where it is: the column and the row (from 1, or
    the file's line) for the server's 422 answers."""

    def __init__(self, message: str, column: str | None = None, row=None):
        super().__init__(message)
        self.column, self.row = column, row


@dataclass
class InputSpec:
    """One input of an exported model: `name` (a valid tensor name), the `column` it reads,
    `role` (numeric, categorical, text, pixels, image), `dtype` and per-example `shape`."""

    name: str
    column: str
    role: str
    dtype: str
    shape: list[int]

    def tensor_spec(self, batch: int | None = None):
        import tensorflow as tf

        return tf.TensorSpec([batch, *self.shape], tf.as_dtype(self.dtype), name=self.name)


def _tensor_name(column: str, taken: set[str]) -> str:
    # lower case: tf2onnx names an ONNX input after the SavedModel's lower-cased signature key
    name = re.sub(r"[^a-z0-9_]", "_", column.lower()).strip("_") or "input"
    if name[0].isdigit():
        name = f"x_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):  # a tf.function argument: `is`, `in`
        name = f"{name}_"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def input_specs(prep: Preprocessor, fmt: str = "saved_model") -> list[InputSpec]:
    """The raw inputs of the exported graph. Numbers are float64 (a longitude in float32 is off by
    4e-6 before any arithmetic), but in TFLite, whose builtin operations are float32."""
    if prep.arrays:
        return [InputSpec("pixels", "pixels", "pixels", prep.image["dtype"], list(prep.image["shape"]))]
    if prep.reads_files:
        return [InputSpec("image", prep.image["column"], "image", "string", [])]
    per_example = [prep.window["length"]] if prep.windowed else []
    taken: set[str] = set()
    number = "float32" if fmt == "tflite" else "float64"
    specs = [
        InputSpec(_tensor_name(c, taken), c, "numeric", number, per_example) for c in prep.numeric.columns
    ]
    specs += [
        InputSpec(_tensor_name(c, taken), c, "categorical", "string", per_example)
        for c in prep.categorical.columns
    ]
    if prep.text is not None:
        specs += [InputSpec(_tensor_name(c, taken), c, "text", "string", []) for c in prep.text.columns]
    if prep.image_input is not None:  # a column of image files beside the others: their bytes
        column = prep.image["column"]
        specs.append(InputSpec(_tensor_name(column, taken), column, "image", "string", []))
    return specs


def metadata(
    prep: Preprocessor, specs: list[InputSpec], fmt: str, quantize: str | None, run_dir: Path
) -> dict:
    """What an export's runtime needs besides the artifact; several targets: `targets`, each with the
    names of its output tensors (`prediction_<output>`, `probabilities_<output>`)."""
    views = prep.outputs or {"": prep}
    outputs, targets = {}, []
    for name, view in views.items():
        suffix = f"_{name}" if name else ""
        classes = view.target_encoder.classes_
        task = view.task
        outputs[f"prediction{suffix}"] = (
            "float32" if task == "regression" else ("int64" if _ints(classes) else "string")
        )
        if task == "classification":
            outputs[f"probabilities{suffix}"] = "float32"
        targets.append(
            {"column": view.target_encoder.column, "task": task, "classes": classes, "suffix": suffix}
        )
    first = targets[0]
    return {
        "format": FORMAT,
        "artifact": fmt,
        "quantize": quantize,
        "task": prep.task,
        "kind": prep.kind,
        "target": None if prep.outputs else first["column"],
        **({"targets": targets} if prep.outputs else {}),
        "inputs": [asdict(s) for s in specs],
        "outputs": outputs,
        "classes": None if prep.outputs else first["classes"],
        "window": prep.window,
        # how a number column's gaps and ±inf are read, as dlcli predict reads them
        "impute": prep.numeric.impute if prep.numeric else None,
        "non_finite": prep.numeric.non_finite if prep.numeric else "error",
        # each category column's known values, so the light runtimes warn of unseen ones as dlcli does
        "categories": _categories(prep),
        "encode": prep.categorical.encode if prep.categorical is not None else None,
        "run": str(run_dir),
        # the model.keras it was made from: a run resumed since has another, and its export is stale
        "model_sha256": sha256_of(run_dir / "model.keras") if (run_dir / "model.keras").is_file() else None,
        "dlcli": __version__,
    }


def _categories(prep: Preprocessor) -> dict[str, list[str]]:
    encoder = prep.categorical
    if encoder is None or not encoder.columns:
        return {}
    return {c: [str(v) for v in known] for c, known in zip(encoder.columns, encoder.categories_, strict=True)}


def _ints(classes) -> bool:
    return bool(classes) and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)


def stale(run_dir: Path, meta: dict) -> bool:
    """Whether the run's model.keras changed since the artifact was exported (a resumed run)."""
    recorded = meta.get("model_sha256")
    model = run_dir / "model.keras"
    return bool(recorded) and model.is_file() and sha256_of(model) != recorded


def metadata_path(artifact: Path) -> Path:
    """Where an artifact's metadata lies: beside a file (`model.onnx.json`), inside a SavedModel."""
    return artifact / "dlcli.json" if artifact.is_dir() else artifact.with_name(artifact.name + ".json")


def read_metadata(artifact: Path, verify: bool = True) -> dict:
    """The export's metadata; with `verify`, refused if it or the artifact changed since export."""
    path = metadata_path(artifact)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; export the model again with dlcli export") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunError(f"{path}: not a dlcli export's metadata (expected format {FORMAT})")
    if verify:
        _check_unchanged(artifact, path, meta)
    return meta


def _check_unchanged(artifact: Path, meta_path: Path, meta: dict) -> None:
    """Refuse an artifact or metadata changed since export wrote them: the artifact's sha256 is in its
    metadata, and both are in run.json for an export inside its run (export/)."""
    run_dir = run_directory_of(artifact.resolve())
    if run_dir is not None:
        name = str(artifact.resolve().relative_to(run_dir))
        if name in check_sealed(run_dir, name, str(meta_path.resolve().relative_to(run_dir))):
            return  # run.json's digest covered the artifact: not hashed twice
    recorded = meta.get("artifact_sha256")
    if recorded and artifact.is_file() and sha256_of(artifact) != recorded:
        raise RunError(
            f"{artifact}: not the file this metadata ({meta_path}) was written for (its sha256 differs "
            "from the one recorded there): export the model again with dlcli export"
        )


# ---- raw inputs -------------------------------------------------------------------------------------
def kind_of(meta: dict) -> type[Preprocessor]:
    """The preprocessing class of the artifact's `kind`, to ask what its inputs are (windowed, arrays,
    reads_files, images) as dlcli predict asks the run's preprocessor."""
    return KINDS[meta["kind"]]


def inputs_of(meta: dict, part: Any, source: str) -> dict[str, np.ndarray]:
    """The artifact's inputs for a table (DataFrame) or an array of pixels, checked: a missing column,
    text in a number column or a wrong image shape is a DataError naming it."""

    specs = [InputSpec(**s) for s in meta["inputs"]]
    kind = kind_of(meta)
    if kind.arrays:
        (spec,) = specs
        return {spec.name: check_pixels(part, spec.shape, spec.dtype, source).astype(spec.dtype)}
    if kind.reads_files:
        (spec,) = specs
        return {spec.name: np.asarray([_read_bytes(p, source) for p in part[spec.column]], dtype=object)}
    missing = [s.column for s in specs if s.column not in part.columns]
    if missing:
        raise BadInput(
            f"{source}: missing input column(s) {', '.join(map(repr, missing))} (the model takes "
            f"{', '.join(s.column for s in specs)})"
        )
    rows = part.index.tolist()
    columns = {
        s.name: np.asarray([_read_bytes(p, source) for p in part[s.column]], dtype=object)
        if s.role == "image"
        else column_values(meta, s, part[s.column].tolist(), source, rows)
        for s in specs
    }
    if kind.windowed:
        columns = windows(columns, meta["window"]["length"], source)
    return columns


def unseen_categories(meta: dict, inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """Rows per category column whose value training never saw (a missing one is imputed)."""
    out = {}
    for spec in (InputSpec(**s) for s in meta["inputs"]):
        known = set(meta.get("categories", {}).get(spec.column) or ())
        if spec.role == "categorical" and known and spec.name in inputs:
            unseen = sum(1 for v in inputs[spec.name].reshape(-1) if v != "" and v not in known)
            if unseen:
                out[spec.column] = unseen
    return out


def _read_bytes(path, source: str) -> bytes:
    try:
        return Path(str(path)).read_bytes()
    except OSError as exc:
        raise DataError(f"{source}: cannot read the image file {path} ({exc.strerror})") from None


def column_values(
    meta: dict, spec: InputSpec, values: list, source: str, rows: list | None = None
) -> np.ndarray:
    """One column's values as the artifact's input: float32 with NaN for a missing number (None, NaN,
    an empty string; ±inf too with `non_finite: missing`), or strings with "" for a missing category
    or text. A value of the wrong type is a DataError naming the column and row."""

    if spec.dtype == "string":
        return np.asarray([_text(v) for v in values], dtype=object)
    inf_missing, no_missing = meta.get("non_finite") == "missing", meta.get("impute") == "none"
    out = np.empty(len(values), dtype=spec.dtype)
    for i, value in enumerate(values):
        kind = type(value)  # a finite number within float32 is taken as it is (NaN fails both tests)
        if (kind is float or kind is int) and -3.4e38 <= value <= 3.4e38:
            out[i] = value
            continue
        row = i + 1 if rows is None else rows[i]
        if inf_missing and isinstance(value, float) and math.isinf(value):
            value = None
        out[i] = _number(value, spec.column, row, source)
        if no_missing and math.isnan(out[i]):
            raise BadInput(
                f"{source}: column {spec.column!r} {row_where(source, row)} is missing and the run was "
                "trained with preprocessing.numeric.impute: none",
                spec.column,
                row,
            )
    return out


def _number(value, column: str, row, source: str) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise BadInput(
                not_a_number(
                    source, column, row, _shown(value), "(the model was trained on numbers in this column)"
                ),
                column,
                row,
            ) from None
    if math.isinf(value) or (not math.isnan(value) and abs(value) > 3.4e38):
        raise BadInput(
            f"{source}: column {column!r} {row_where(source, row)}: {value!r} is not a finite float32 "
            "value; fix it, or leave the cell empty to have it imputed",
            column,
            row,
        )
    return float(value)


def _shown(value, limit: int = 80) -> str:
    """A value in a message: its repr, cut short (a request may send a megabyte as one cell)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)  # as training read it: pandas' 3.0 in a column with gaps is "3.0" there too


def windows(columns: dict[str, np.ndarray], length: int, source: str) -> dict[str, np.ndarray]:
    """Each column as its windows of `length` rows, one ending at every row from `length - 1` on."""

    n = len(next(iter(columns.values())))
    if n < length:
        raise DataError(f"{source}: {n} rows; a forecast needs a window of {length} rows")
    return {k: np.lib.stride_tricks.sliding_window_view(v, length).copy() for k, v in columns.items()}


def decoded(meta: dict, got: dict) -> list[tuple[str | None, np.ndarray, np.ndarray | None, list]]:
    """An artifact's outputs as `(target column or None, predictions, probabilities, classes)` per
    target: labels for classes, float64 numbers for regression; one entry (column None) for one target."""
    targets = meta.get("targets") or [
        {"column": None, "task": meta["task"], "classes": meta["classes"], "suffix": ""}
    ]
    out = []
    for target in targets:
        predictions = np.asarray(got[f"prediction{target['suffix']}"]).reshape(-1)
        probs = got.get(f"probabilities{target['suffix']}")
        if target["task"] == "classification":
            predictions = np.asarray(labels(predictions), dtype=object)
        else:
            predictions = predictions.astype("float64")
        out.append((target["column"], predictions, probs, target["classes"]))
    return out


def labels(values) -> list:
    """Class labels as an artifact returns them (bytes from TFLite) as Python values."""
    return [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v for v in values]


# ---- sessions ---------------------------------------------------------------------------------------
class Runner:
    """`runner(inputs) → {"prediction", "probabilities"}` for one batch of raw inputs."""

    outputs: list[str]
    batch: int = BATCH  # rows per call: 1 for a TFLite model converted with a static batch

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


class OnnxRunner(Runner):
    def __init__(self, path: Path):
        need("onnxruntime", "export")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # its threads sleep between calls instead of spinning: a spinning pool took a core from the
        # server's event loop (and from predict's reading) for no gain on batches this small
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs):
        return dict(zip(self.outputs, self.session.run(self.outputs, inputs), strict=True))


class LiteRunner(Runner):
    def __init__(self, path: Path):
        need("ai_edge_litert", "export")

        from ai_edge_litert.interpreter import Interpreter

        with quiet_stderr():  # LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(model_path=str(path))
            self.interpreter.allocate_tensors()
        self.signature = self.interpreter.get_signature_runner("serving_default")
        self.outputs = list(self.interpreter.get_signature_list()["serving_default"]["outputs"])
        first = self.interpreter.get_input_details()[0]["shape_signature"]
        self.batch = BATCH if len(first) == 0 or first[0] == -1 else int(first[0])
        self.lock = threading.Lock()  # an interpreter runs one call at a time

    def __call__(self, inputs):
        fed = {k: v.astype(bytes) if v.dtype == object else v for k, v in inputs.items()}
        with self.lock:
            return {k: v.copy() for k, v in self.signature(**fed).items()}


class SavedModelRunner(Runner):
    def __init__(self, path: Path):
        import tensorflow as tf

        self.function = tf.saved_model.load(str(path)).signatures["serving_default"]
        self.outputs = list(self.function.structured_outputs)

    def __call__(self, inputs):
        return {k: v.numpy() for k, v in self.function(**tensors(inputs)).items()}


def tensors(inputs: dict[str, np.ndarray]) -> dict:
    """Raw inputs as TensorFlow tensors: strings and bytes (object arrays) as string tensors."""
    import tensorflow as tf

    return {k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in inputs.items()}


@contextmanager
def quiet_stderr():

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_artifact(path: Path, fmt: str) -> Runner:
    return {"onnx": OnnxRunner, "tflite": LiteRunner, "saved_model": SavedModelRunner}[fmt](path)


def run_batched(runner: Runner, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:

    batch = runner.batch
    n = len(next(iter(inputs.values())))
    if 0 < n <= batch:  # one call (a served request): no slicing, no copy
        return runner(inputs)
    parts = [runner({k: v[i : i + batch] for k, v in inputs.items()}) for i in range(0, max(n, 1), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
