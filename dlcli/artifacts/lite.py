"""`dlcli predict` through an exported model, without TensorFlow: ONNX Runtime or LiteRT run the
artifact `dlcli export` wrote (and checked against TensorFlow) into the run's `export/` folder.

`--runtime auto` (the default) takes `export/model.onnx`, else `export/model.tflite`, when one is there
and its runtime is installed; otherwise predict goes through TensorFlow as before.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlcli.artifacts import runtime, saved
from dlcli.artifacts.run_inputs import image_arrays, read_table_input
from dlcli.datasets.predictions import outputs_table, prediction_table, write_table
from dlcli.preprocessing.base import refuse_non_finite
from dlcli.preprocessing.transforms import unseen_note
from dlcli.utils.errors import DataError, DlcliError, RunError
from dlcli.utils.files import read_json

if TYPE_CHECKING:
    import pandas as pd

RUNTIMES = ("auto", "tensorflow", "onnx", "tflite")
#: The artifact each light runtime runs, as `dlcli export` names it by default, and its module.
ARTIFACTS = {"onnx": ("model.onnx", "onnxruntime"), "tflite": ("model.tflite", "ai_edge_litert")}


def choose(run_dir: Path, asked: str) -> tuple[str, Path | None]:
    """`(runtime, artifact)` for `--runtime asked`: tensorflow has no artifact."""
    if asked not in RUNTIMES:
        raise DataError(f"--runtime {asked}: expected one of {', '.join(RUNTIMES)}")
    if asked == "tensorflow":
        return asked, None
    if asked == "auto":  # an export made before the run was resumed is passed over
        for name, (file, module) in ARTIFACTS.items():
            path = run_dir / "export" / file
            if path.is_file() and importlib.util.find_spec(module) is not None:
                if not runtime.stale(run_dir, runtime.read_metadata(path)):
                    return name, path
        return "tensorflow", None
    file, module = ARTIFACTS[asked]
    path = run_dir / "export" / file
    if not path.is_file():
        raise DataError(
            f"--runtime {asked}: {path} does not exist; write it with: "
            f"dlcli export {run_dir} --format {asked}"
        )
    if runtime.stale(run_dir, runtime.read_metadata(path)):
        raise RunError(
            f"--runtime {asked}: {path} was exported before the run's model.keras last changed (the run "
            f"was resumed since); export it again: dlcli export {run_dir} --format {asked}"
        )
    runtime.need(module, "export")
    return asked, path


def missing_reason(run_dir: Path) -> str | None:
    """Why the run has no light model, as run.json recorded at the end of training (None: it has one,
    or the run is older than light models)."""
    try:
        entry = read_json(run_dir / "run.json").get("light_model")
    except (DlcliError, AttributeError):
        return None
    if isinstance(entry, dict) and entry.get("format") is None and isinstance(entry.get("reason"), str):
        return entry["reason"]
    return None


def predict(
    run_dir: Path, artifact: Path, fmt: str, input_path: Path, out: Path
) -> tuple[Path, pd.DataFrame, list[str]]:
    """Predictions of the exported model for every input row, written as dlcli predict writes them."""

    meta = runtime.read_metadata(artifact)
    kind = runtime.kind_of(meta)
    if kind.reads_files:
        raise RunError(f"{artifact}: a model of image files is exported as a SavedModel only")
    if (meta.get("window") or {}).get("series_id"):
        raise RunError(
            f"{artifact}: the run holds several series in one file (data.series_id); predict them with "
            "`dlcli predict`, or give the exported model one series per file"
        )
    part, notes = _read(run_dir, meta, input_path)
    inputs = runtime.inputs_of(meta, part, str(input_path))
    unseen = runtime.unseen_categories(meta, inputs)
    if unseen:
        notes.append(unseen_note(str(input_path), unseen, meta["encode"]))
    got = runtime.run_batched(runtime.open_artifact(artifact, fmt), inputs)
    decoded = runtime.decoded(meta, got)
    for _, predictions, probs, _ in decoded:
        refuse_non_finite(np.asarray(probs if probs is not None else predictions, dtype="float64"))
    if meta.get("targets"):  # several targets: prediction_<target> and probability_<target>_<class>
        table = outputs_table(part, decoded)
    else:
        ((_, predictions, probs, classes),) = decoded
        pad = meta["window"]["length"] - 1 if kind.windowed else 0
        table = prediction_table(part, predictions, probs, classes, pad)
    write_table(table, out)
    table.attrs["runtime"] = f"{fmt}, {artifact.name}"
    return out, table, notes


def _read(run_dir: Path, meta: dict, path: Path):
    """The input as dlcli predict reads it: a table read as the run's data was, or pixels."""

    notes: list[str] = []
    if runtime.kind_of(meta).arrays:
        return image_arrays(path)[0], notes
    config = None
    try:
        config, more = saved.inference_config(run_dir)
        notes += more
    except RunError as exc:
        notes.append(f"{exc}; the input is read with default settings")
    return read_table_input(path, config, labelled=False), notes
