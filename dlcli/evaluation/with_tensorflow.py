"""evaluate and predict through TensorFlow: a finished run's model.keras, from its directory alone, on
one device; no printing. inference.py decides when this path is taken (and imports it only then).

>>> loaded = load_run("runs/iris/latest")
>>> evaluate("runs/iris/latest")["accuracy"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlcli.artifacts import run_inputs, saved
from dlcli.config.config import Config
from dlcli.datasets import pipeline, scoring, seriesstream, streamed
from dlcli.datasets.predictions import decode_outputs, outputs_table, prediction_table, write_table
from dlcli.devices import compute, distribute
from dlcli.io import data as data_mod
from dlcli.io import hashsplit, streams
from dlcli.preprocessing.base import Preprocessor
from dlcli.runs import runs
from dlcli.utils import files
from dlcli.utils.errors import DataError, RunError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LoadedRun:
    run_dir: Path
    config: Config | None  # None where the saved config cannot be read: predict does without it
    prep: Preprocessor
    model: Any
    warnings: list[str] = field(default_factory=list)
    config_error: RunError | None = None
    edited: str | None = None  # saved.edited_config's message when config.yaml changed after training

    def need_config(self) -> Config:
        if self.config is None:
            raise self.config_error or RunError(f"{self.run_dir}: the run's config cannot be read")
        return self.config

    @property
    def forward_batch(self) -> int:
        return max(self.config.train.batch_size if self.config else 0, pipeline.FORWARD_BATCH)


def load_run(
    run: str | Path, runs_dir: Path | str = runs.DEFAULT_RUNS_DIR, device: str | None = None
) -> LoadedRun:
    """Everything evaluate and predict need, from the run directory alone; executes no code from it.

    It runs on one device (`device`, else the first GPU, else the CPU), whatever the run trained on.
    """
    device = distribute.parse_device(device)
    run_dir = runs.resolve(run, Path(runs_dir))
    compute.import_tensorflow()
    distribute.select_device(device)
    edited = saved.edited_config(run_dir)
    config, warnings, config_error = None, [edited] if edited else [], None
    try:
        config, more = saved.inference_config(run_dir)
        warnings += more
    except RunError as exc:
        config_error = exc
        warnings.append(f"{exc}; predictions need only the model and preprocessing.json")
    prep = saved.load_preprocessing(run_dir)
    model = saved.load_model(run_dir)
    return LoadedRun(run_dir, config, prep, model, warnings, config_error, edited)


def evaluate(
    run: str | Path,
    data_path: str | Path | None = None,
    runs_dir: Path | str = runs.DEFAULT_RUNS_DIR,
    device: str | None = None,
    warnings: list[str] | None = None,
    progress=None,
) -> dict:
    """Test-split metrics of a finished run, or metrics on another labelled file. What was decided
    for the user on the way (labels normalised, …) is appended to `warnings` when given. A table
    too large for memory (or a run trained on a stream) is scored as it streams past;
    `progress(what, rows, fraction)` hears how far it got."""
    loaded_run = load_run(run, runs_dir, device)
    prep, config = loaded_run.prep, loaded_run.need_config()
    if data_path is None:
        loaded = trained_data(loaded_run, "evaluate")
        if loaded.stream is not None:
            ex = _streamed_split(loaded_run, loaded.stream, progress)
        elif "test" not in loaded.splits:
            raise DataError("the run has no test split (data.split.test is 0); pass --data FILE")
        else:
            ex = scoring.split_examples(prep, loaded)["test"]
    elif (stream := input_stream(loaded_run, Path(data_path))) is not None:
        ex = _streamed_split(loaded_run, stream, progress, every_row=True)
    else:
        part = run_inputs.read_input(prep, Path(data_path), loaded_run.config)
        ex = scoring.examples(prep, prep.match_labels(part, str(data_path)), source=str(data_path))
    scored = scoring.score(prep, config, loaded_run.model, ex)[0]
    if warnings is not None:
        warnings += [*loaded_run.warnings, *prep.warnings]
    return scored


def trained_data(loaded_run: LoadedRun, command: str) -> data_mod.Loaded:
    """The run's own data, split as in training (its test split: what `command` works on), refused
    when config.yaml was edited or the data changed since: those would be another split."""
    if loaded_run.edited:  # the test split is read from the config: an edited one is another split
        raise RunError(f"{loaded_run.edited}. Restore it, or pass the data to {command} on with --data")
    loaded = data_mod.load(as_trained(loaded_run.need_config(), loaded_run.run_dir))
    recorded = files.read_json(loaded_run.run_dir / "run.json").get("data", {}).get("sha256")
    if recorded and loaded.sha256 and recorded != loaded.sha256:
        raise DataError(
            f"{loaded.source}: the data changed since training (sha256 {loaded.sha256}, "
            f"trained on {recorded}); pass the file with --data to {command} on it anyway"
        )
    return loaded


def input_stream(loaded_run: LoadedRun, path: Path, labelled: bool = True):
    """`path` as a streams.Stream when it is a table (a file, a folder of them or a glob) that should
    stream: the run streamed its training data, or it is larger than memory allows (data.stream:
    auto); else None. A run whose config cannot be read is never streamed."""

    config = loaded_run.config
    prep = loaded_run.prep
    streamable = prep.streamable
    if config is None or not streamable or config.data.stream is False:
        return None
    paths = streams.table_files(path)
    if paths is None and (
        not path.is_file() or not data_mod.is_table(path, run_inputs.reading_for(config.data, path))
    ):
        return None  # read whole: a missing file is reported where every table is read (data.read_table)
    paths = paths or [path]
    if not _trained_streamed(loaded_run.run_dir) and not streams.should_stream(config, paths)[0]:
        return None
    return streams.open_stream(config, paths, run_inputs.reading_for(config.data, paths[0]), labelled)


def _with_data(config: Config, **changes) -> Config:
    """The config with data keys changed (pydantic copies: nothing validated again)."""
    copied = config.model_copy(update={"data": config.data.model_copy(update=changes)})
    copied._source, copied._marks = config._source, config._marks
    return copied


def as_trained(config: Config, run_dir: Path) -> Config:
    """The config reading its data as training did: streamed or whole (data.stream: auto decides by
    the memory available, which may have changed; the split of rows depends on it without a key)."""
    return _with_data(config, stream=_trained_streamed(run_dir))


def _trained_streamed(run_dir: Path) -> bool:
    """Whether the run read its training data streamed (run.json's data.stream)."""
    return bool(files.read_json(run_dir / "run.json").get("data", {}).get("stream"))


def _streamed_split(loaded_run: LoadedRun, stream, progress, every_row: bool = False):
    """The test split of a streamed source (or, `every_row`, all its rows), read in file order."""

    config = loaded_run.need_config()
    if every_row:  # another labelled file: all of it is scored
        split = config.data.split.model_copy(
            update={"validation": 0.0, "test": 0.0, "key": None, "column": None}
        )
        config = _with_data(config, split=split)
        code = hashsplit.TRAIN
    else:
        code = hashsplit.TEST
    if loaded_run.prep.windowed:  # each series counted, then its windows made in file order
        plan = seriesstream.plan(config, stream, progress)
        return seriesstream.SeriesSplit(
            stream, None, loaded_run.prep, code, "test", config, progress=progress, plan=plan
        )
    return streamed.StreamSplit(stream, None, loaded_run.prep, code, "test", config, progress=progress)


def predict(
    run, input_path: Path, out: Path, runs_dir, device, progress=None
) -> tuple[Path, pd.DataFrame, list[str]]:

    loaded_run = load_run(run, runs_dir, device)
    prep, model = loaded_run.prep, loaded_run.model
    stream = input_stream(loaded_run, input_path, labelled=False)
    if stream is not None:  # read, predicted and written unit by unit
        predict = seriesstream.predict if prep.windowed else streamed.predict
        table = predict(prep, model, stream, out, loaded_run.forward_batch, progress)
        return out, table, [*loaded_run.warnings, *prep.warnings]
    part = run_inputs.read_input(prep, input_path, loaded_run.config, labelled=False)
    if prep.arrays and part[1] is None:
        part = part[0]
    order = None
    if prep.windowed and prep.window.get("series_id"):
        part, order = _by_series(prep, part, str(input_path))
    ex = scoring.examples(prep, part, source=str(input_path), labelled=False)
    outputs = pipeline.forward(model, ex.dataset(prep, loaded_run.forward_batch))
    if prep.outputs is not None:
        table = outputs_table(part, decode_outputs(prep, outputs))
        write_table(table, out)
        return out, table, [*loaded_run.warnings, *prep.warnings]
    last, rows = None, None
    if prep.windowed:  # a forecast on each row that ends a window (of its own series)
        rows = ex.starts + prep.window["length"] - 1
    if prep.differenced:  # each window's last value of the target, to which the change is added
        last = prep.raw_target(part, str(input_path))[rows]
    predictions, probs = prep.decode(outputs, last)
    table = prediction_table(part, predictions, probs, prep.target_encoder.classes_, rows=rows)
    if order is not None:  # back in the input's row order
        table = table.iloc[np.argsort(order, kind="stable")]
    write_table(table, out)
    return out, table, [*loaded_run.warnings, *prep.warnings]


def _by_series(prep: Preprocessor, part: pd.DataFrame, source: str):
    """The rows of several series (data.series_id) each series' together, in time order where the
    time column is there, and the positions they came from."""

    column = prep.window["series_id"]
    if column not in part.columns:
        raise DataError(
            f"{source}: no column {column!r}, which names each row's series (data.series_id of the run): "
            "add it"
        )
    keys = [c for c in (column, prep.time_column) if c is not None and c in part.columns]
    order = np.asarray(part.reset_index(drop=True).sort_values(keys, kind="stable").index)
    return part.iloc[order], order
