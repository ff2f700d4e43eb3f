"""predict a finished run, from its directory alone; no printing: with an exported ONNX or TFLite model
without TensorFlow where the run has one (dlcli/artifacts/lite.py), else through TensorFlow
(with_tensorflow.py, which evaluate always takes), imported only then (`tensorflow_path()`).

>>> from dlcli import evaluate, predict
>>> evaluate("runs/iris/latest")["accuracy"]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlcli.artifacts import lite
from dlcli.devices import compute
from dlcli.runs import runs
from dlcli.utils import files, formats
from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def tensorflow_path():
    """with_tensorflow.py, imported once TensorFlow is (its start-up lines held back)."""
    compute.import_tensorflow()
    from dlcli.evaluation import with_tensorflow

    return with_tensorflow


def predict(
    run: str | Path,
    input_path: str | Path,
    output_path: str | Path | None = None,
    runs_dir: Path | str = runs.DEFAULT_RUNS_DIR,
    device: str | None = None,
    runtime: str = "auto",
    progress=None,
) -> tuple[Path, pd.DataFrame, list[str]]:
    """Predictions for every input row, written as CSV or Parquet; returns (path, table, warnings).
    A table larger than memory allows (or any table, for a run trained on a stream) is read,
    predicted and written a piece at a time; the table returned is then its first piece, with
    attrs["rows"] the rows written. `progress(what, rows, fraction)` hears how far it got.

    With an exported ONNX or TFLite model in the run (or `runtime` naming one) it runs there, without
    TensorFlow (dlcli/artifacts/lite.py)."""

    input_path = Path(input_path)
    out = Path(output_path) if output_path else Path(f"{input_path.stem}_predictions.csv")
    files.check_destination(out, "--output", kind="predictions", suffixes=formats.PREDICTIONS)
    if out.resolve() == input_path.resolve() or (out.exists() and out.samefile(input_path)):
        raise DataError(
            f"--output {out}: that is the --input file; writing predictions there would replace your "
            f"data: choose another --output (without one: {input_path.stem}_predictions.csv)"
        )
    run_dir = runs.resolve(run, Path(runs_dir))
    name, artifact = lite.choose(run_dir, runtime)
    if artifact is not None:
        return lite.predict(run_dir, artifact, name, input_path, out)
    path, table, warnings = tensorflow_path().predict(run_dir, input_path, out, runs_dir, device, progress)
    reason = lite.missing_reason(run_dir) if runtime == "auto" else None
    if reason is not None:
        table.attrs["tensorflow_because"] = f"no light model: {reason}"
    return path, table, warnings
