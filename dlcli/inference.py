"""evaluate and predict: a finished run, from its directory alone, on one device; no printing.

>>> from dlcli import evaluate, predict
>>> evaluate("runs/iris/latest")["accuracy"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlcli import compute, distribute, runs, scoring
from dlcli import data as data_mod
from dlcli.config import Config
from dlcli.errors import DataError
from dlcli.preprocessing import Preprocessor

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LoadedRun:
    run_dir: Path
    config: Config
    prep: Preprocessor
    model: Any


def load_run(run: str | Path, root: Path | str = runs.DEFAULT_ROOT, device: str | None = None) -> LoadedRun:
    """Everything evaluate and predict need, from the run directory alone; executes no code from it.

    It runs on one device (`device`, else the first GPU, else the CPU), whatever the run trained on.
    """
    device = distribute.parse_device(device)
    run_dir = runs.resolve(run, Path(root))
    compute.import_tensorflow()
    distribute.select_device(device)
    config = runs.load_config(run_dir)
    state_path = run_dir / "preprocessing.json"
    if not state_path.is_file():
        raise DataError(f"{state_path}: missing; the run did not get past loading its data")
    prep = Preprocessor.from_json(state_path.read_text(encoding="utf-8"), str(state_path))
    return LoadedRun(run_dir, config, prep, runs.load_model(run_dir))


def evaluate(
    run: str | Path,
    data_path: str | Path | None = None,
    root: Path | str = runs.DEFAULT_ROOT,
    device: str | None = None,
) -> dict:
    """Test-split metrics of a finished run, or metrics on another labelled file."""
    loaded_run = load_run(run, root, device)
    prep, config = loaded_run.prep, loaded_run.config
    if data_path is None:
        loaded = data_mod.load(config)
        recorded = runs.read_json(loaded_run.run_dir / "run.json").get("data", {}).get("sha256")
        if recorded and loaded.sha256 and recorded != loaded.sha256:
            raise DataError(
                f"{loaded.source}: the data changed since training (sha256 {loaded.sha256}, "
                f"trained on {recorded}); pass the file with --data to evaluate on it anyway"
            )
        if "test" not in loaded.splits:
            raise DataError("the run has no test split (data.split.test is 0); pass --data FILE")
        ex = scoring.split_examples(prep, loaded)["test"]
    else:
        ex = scoring.examples(prep, read_input(prep, Path(data_path)), source=str(data_path))
    return scoring.score(prep, config, loaded_run.model, ex)[0]


def read_input(prep: Preprocessor, path: Path) -> Any:
    """A table for tabular and time-series runs; `(x, y or None)` for image runs."""
    if prep.kind != "image":
        return data_mod.read_table(path)
    arrays = data_mod.read_arrays(path)
    for x_key, y_key in (("x_test", "y_test"), ("x", "y"), ("x_train", "y_train")):
        if x_key in arrays:
            y = arrays.get(y_key)
            return (arrays[x_key], None if y is None else y.reshape(len(y)))
    if len(arrays) == 1:
        return (next(iter(arrays.values())), None)
    raise DataError(f"{path}: expected an array named x or x_test (it holds {', '.join(sorted(arrays))})")


def predict(
    run: str | Path,
    input_path: str | Path,
    output_path: str | Path | None = None,
    root: Path | str = runs.DEFAULT_ROOT,
    device: str | None = None,
) -> tuple[Path, pd.DataFrame, list[str]]:
    """Predictions for every input row, written as CSV or Parquet; returns (path, table, warnings)."""
    import numpy as np
    import pandas as pd

    input_path = Path(input_path)
    out = Path(output_path) if output_path else Path(f"{input_path.stem}_predictions.csv")
    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise DataError(f"--output {out}: unsupported suffix {out.suffix!r} (expected .csv or .parquet)")
    runs.check_writable(out.parent, f"--output {out}: the folder {out.parent}", "choose another --output")
    loaded_run = load_run(run, root, device)
    prep, model = loaded_run.prep, loaded_run.model
    part = read_input(prep, input_path)
    if prep.kind == "image" and part[1] is None:
        part = part[0]
    ex = scoring.examples(prep, part, source=str(input_path), labelled=False)
    batch = max(loaded_run.config.train.batch_size, compute.FORWARD_BATCH)
    outputs = compute.forward(model, ex.dataset(prep, batch))
    predictions, probs = prep.decode(outputs)
    table = part.copy() if isinstance(part, pd.DataFrame) else pd.DataFrame(index=range(len(predictions)))
    if prep.kind == "timeseries":  # row i: forecast `horizon` steps after row i, from the window ending there
        pad = prep.window["length"] - 1
        predictions = np.concatenate([np.full(pad, np.nan), predictions])
        if probs is not None:
            probs = np.concatenate([np.full((pad, probs.shape[1]), np.nan), probs])
    table["prediction"] = predictions
    if probs is not None:
        for i, label in enumerate(prep.target_encoder.classes_):
            table[f"probability_{label}"] = probs[:, i]
    write_table(table, out)
    return out, table, prep.warnings


def write_table(table: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        content = table.to_parquet(index=False)
    elif suffix == ".csv":
        content = table.to_csv(index=False)
    else:
        raise DataError(f"--output {path}: unsupported suffix {suffix!r} (expected .csv or .parquet)")
    try:
        runs.write_atomic(path, content)
    except OSError as exc:
        raise DataError(f"--output {path}: cannot write ({exc})") from None
