"""`dlcli predict` through an exported model, without TensorFlow: ONNX Runtime or LiteRT run the
artifact `dlcli export` wrote (and checked against TensorFlow) into the run's `export/` folder.

`--runtime auto` (the default) takes `export/model.onnx`, else `export/model.tflite`, when one is there
and its runtime is installed; otherwise predict goes through TensorFlow as before.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from dlcli import runtime
from dlcli.errors import DataError, RunError

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


def predict(
    run_dir: Path, artifact: Path, fmt: str, input_path: Path, out: Path
) -> tuple[Path, pd.DataFrame, list[str]]:
    """Predictions of the exported model for every input row, written as dlcli predict writes them."""
    import numpy as np
    import pandas as pd

    from dlcli.inference import write_table

    meta = runtime.read_metadata(artifact)
    if meta["kind"] == "image_files":
        raise RunError(f"{artifact}: a model of image files is exported as a SavedModel only")
    part, notes = _read(run_dir, meta, input_path)
    got = runtime.run_batched(
        runtime.open_artifact(artifact, fmt), runtime.inputs_of(meta, part, str(input_path))
    )
    predictions = got["prediction"].reshape(-1)
    probs = got.get("probabilities")
    check = probs if probs is not None else predictions.reshape(-1, 1)
    bad = ~np.isfinite(np.asarray(check, dtype="float64")).all(axis=1)
    if bad.any():
        raise RunError(
            f"the model's output is NaN or infinite for {int(bad.sum())} of {len(bad)} inputs (the first is "
            f"input {int(np.argmax(bad)) + 1}) although every input was finite; nothing is written"
        )
    if meta["task"] == "classification":
        predictions = np.asarray(runtime.labels(predictions), dtype=object)
    else:
        predictions = predictions.astype("float64")
    if meta["kind"] == "timeseries":  # row i: the forecast from the window ending there
        pad = meta["window"]["length"] - 1
        predictions = np.concatenate(
            [np.full(pad, np.nan, dtype=object if predictions.dtype == object else "float64"), predictions]
        )
        if probs is not None:
            probs = np.concatenate([np.full((pad, probs.shape[1]), np.nan), probs])
    table = part.copy() if isinstance(part, pd.DataFrame) else pd.DataFrame(index=range(len(predictions)))
    table["prediction"] = predictions
    if probs is not None:
        for i, label in enumerate(meta["classes"]):
            table[f"probability_{label}"] = probs[:, i]
    write_table(table, out)
    table.attrs["runtime"] = f"{fmt}, {artifact.name}"
    return out, table, notes


def _read(run_dir: Path, meta: dict, path: Path):
    """The input as dlcli predict reads it: a table read as the run's data was, or pixels."""
    from dlcli import data as data_mod
    from dlcli import saved
    from dlcli.inference import _reading

    notes: list[str] = []
    if meta["kind"] == "image":
        arrays = data_mod.read_arrays(path)
        for key in ("x_test", "x", "x_train"):
            if key in arrays:
                return arrays[key], notes
        if len(arrays) == 1:
            return next(iter(arrays.values())), notes
        raise DataError(f"{path}: expected an array named x or x_test (it holds {', '.join(sorted(arrays))})")
    config = None
    try:
        config, more = saved.inference_config(run_dir)
        notes += more
    except RunError as exc:
        notes.append(f"{exc}; the input is read with default settings")
    reading = _reading(config.data, path) if config is not None else None
    frame = data_mod.read_table(path, reading, labelled=False)
    drop = config.data.drop if config is not None else []
    return frame.drop(columns=[c for c in drop if c in frame.columns]), notes
