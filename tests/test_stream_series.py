"""Streamed series (data.stream with preprocessing.window): several series in one CSV cut into many
small units, so windows cross unit boundaries; the windows, splits and statistics equal the
in-memory path's, the (seed, epoch) order survives a kill, and what a stream cannot do is said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import fails, forked, ok, read_json

UNITS = {"DLCLI_UNIT_BYTES": "6000"}  # about 200 rows per unit: the 3,600-row file is 20 units
CONFIG = {
    "name": "ci-stream-series",
    "seed": 3,
    "data": {
        "path": "series.csv",
        "target": "y",
        "time_column": "step",
        "series_id": "sensor",
        "stream": True,
        "shuffle_buffer": 1000,
        "split": {"validation": 0.15, "test": 0.15},
    },
    "preprocessing": {"window": {"length": 12, "horizon": 1}},
    "model": {
        "layers": [{"Flatten": {}}, {"Dense": {"units": 16, "activation": "relu"}}, {"Dense": {"units": 1}}]
    },
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "loss": "mse",
    "metrics": ["mae"],
    "train": {"epochs": 4, "batch_size": 32, "tensorboard": False},
}


def series_table(rows_each: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Three sensors, each y_t = 0.8 y_{t-1} + 0.5 x_{t-1} + noise (sd 0.1): the window holds all
    a forecast needs, so a model can reach an r2 near 1, far above the last value's."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, sensor in enumerate("abc"):
        x = rng.normal(size=rows_each)
        y = np.zeros(rows_each)
        for t in range(1, rows_each):
            y[t] = 0.8 * y[t - 1] + 0.5 * x[t - 1] + rng.normal(scale=0.1)
        parts.append(pd.DataFrame({"sensor": sensor, "step": np.arange(rows_each), "x": x, "y": y + k}))
    return pd.concat(parts, ignore_index=True)


def _config(folder: Path, name: str, **data) -> Path:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["data"].update(data)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(start, config: Path, cwd: Path, *overrides: str) -> Path:
    before = set((cwd / "runs").glob("ci-stream-series/2*"))
    proc = forked(start, "train", str(config), "--run-dir", "runs", *overrides, cwd=cwd, env=UNITS)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (run,) = set((cwd / "runs").glob("ci-stream-series/2*")) - before
    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("series")
    series_table().to_csv(folder / "series.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def streamed(folder, dlcli_fork) -> Path:
    return _train(dlcli_fork, _config(folder, "streamed"), folder)


def test_a_streamed_series_reads_many_units_and_learns_the_relationship(streamed):
    record = read_json(streamed / "run.json")
    assert record["data"]["stream"]["units"] >= 15
    metrics = read_json(streamed / "metrics.json")
    assert metrics["test"]["r2"] > 0.8
    assert metrics["test"]["mae"] < 0.6 * metrics["test"]["naive_mae"]
    assert (streamed / "plots" / "forecast.png").is_file()


def test_streamed_windows_splits_and_statistics_equal_the_in_memory_ones(folder, streamed, dlcli_fork, cli):
    whole = _train(dlcli_fork, _config(folder, "whole", stream=False), folder, "-o", "train.epochs=1")
    rows = {
        name: read_json(run / "run.json")["data"]["rows"] for name, run in (("s", streamed), ("m", whole))
    }
    # each sensor's last 15 % test, the 15 % before validation: every such row is a window's target
    assert rows["s"]["validation"] == rows["m"]["validation"] == 3 * 180
    assert rows["s"]["test"] == rows["m"]["test"] == 3 * 180
    # training windows: the train rows but each sensor's first 12 (no whole window before them)
    assert rows["s"]["train"] == rows["m"]["train"] - 3 * 12
    streamed_state, whole_state = (
        read_json(streamed / "preprocessing.json"),
        read_json(whole / "preprocessing.json"),
    )
    for key in ("statistics_", "center_", "scale_"):
        np.testing.assert_allclose(streamed_state["numeric"][key], whole_state["numeric"][key], rtol=1e-9)
    assert streamed_state["window"] == whole_state["window"]
    metrics = {name: read_json(run / "metrics.json") for name, run in (("s", streamed), ("m", whole))}
    for split in ("train", "validation", "test"):  # the same windows: the same last values before each target
        assert metrics["s"][split]["naive_mae"] == pytest.approx(metrics["m"][split]["naive_mae"], rel=1e-9)
    # the streamed run's model on its test split read whole (evaluate) scores what streaming scored
    code, out, err = cli("evaluate", str(streamed), "--json")
    assert code == 0, err
    import json

    evaluated = json.loads(out)
    for key in ("mae", "rmse", "r2", "loss", "naive_mae"):
        assert evaluated[key] == pytest.approx(metrics["s"]["test"][key], rel=1e-5), key


def test_a_killed_streamed_series_resumes_to_the_uninterrupted_runs_weights(folder, dlcli_fork, tmp_path):
    from test_resume import _kill_after_epoch, _same_weights

    config = _config(folder, "resume", path=str(folder / "series.csv"))
    three = ["-o", "train.epochs=3", "-o", "train.batch_size=8", "-o", "train.plots=false"]
    three += ["-o", "preprocessing.window.stride=2"]  # every other training window
    for name in ("whole", "killed"):
        (tmp_path / name).mkdir()
    whole = _train(dlcli_fork, config, tmp_path / "whole", *three)
    proc = dlcli_fork("train", str(config), "--run-dir", "runs", *three, cwd=tmp_path / "killed", env=UNITS)
    _kill_after_epoch(proc, tmp_path / "killed" / "runs", 1)
    proc.wait()
    (killed,) = (tmp_path / "killed" / "runs").glob("ci-stream-series/2*")
    assert read_json(killed / "checkpoints" / "resume.json")["epoch"] < 3
    ok(forked(dlcli_fork, "train", "--resume", str(killed), "-q", cwd=tmp_path, env=UNITS))
    pd.testing.assert_frame_equal(pd.read_csv(killed / "history.csv"), pd.read_csv(whole / "history.csv"))
    assert _same_weights(killed / "model.keras", whole / "model.keras")


def _shuffled_sensors(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.iloc[:600], frame.iloc[1200:1800], frame.iloc[600:1200], frame.iloc[1800:]])


def _time_back(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[2000, "step"] = 3
    return frame


@pytest.mark.parametrize(
    ("change", "settings", "message"),
    [
        (
            _shuffled_sensors,
            {},
            "series 'a' (data.series_id 'sensor') comes back line 1202 after other series' rows; a streamed "
            "series is read in file order, so each series' rows must be together: sort the file by sensor "
            "and step, or set data.stream: false",
        ),
        (
            _time_back,
            {},
            "time 'step' goes back line 2002 (3); a streamed series is read in file order, so each series' "
            "rows must be in time order: sort the file by step, or set data.stream: false",
        ),
        (
            None,
            {"preprocessing": {"window": {"length": 12}, "series": {"difference": 1}}},
            "preprocessing.series.difference: a streamed series (data.stream with preprocessing.window) is "
            "split in time order, and preprocessing.series.difference differences the whole series; remove "
            "it, or set data.stream: false to read the series whole",
        ),
        (
            None,
            {"preprocessing": {"window": {"length": 12}, "series": {"missing": "ffill"}}},
            "preprocessing.series.missing: a streamed series (data.stream with preprocessing.window) is split",
        ),
    ],
)
def test_what_a_streamed_series_cannot_take_exits_2_and_says_why(
    tmp_path, cli, monkeypatch, change, settings, message
):
    monkeypatch.setenv("DLCLI_UNIT_BYTES", UNITS["DLCLI_UNIT_BYTES"])
    frame = series_table(rows_each=1200)
    (change(frame) if change else frame).to_csv(tmp_path / "series.csv", index=False)
    config = _config(tmp_path, "bad")
    raw = yaml.safe_load(config.read_text())
    raw.update(settings)
    config.write_text(yaml.safe_dump(raw))
    assert message in fails(cli, "train", str(config))
    if settings:  # a config mistake: `dlcli validate` says it too, with the line of the key
        said = fails(cli, "validate", str(config))
        assert message in said and said.startswith(f"error: {config}:")


def test_predict_streams_a_series_and_forecasts_each_row_that_ends_a_window(streamed, folder, cli, tmp_path):
    code, out, err = cli("predict", str(streamed), "--input", str(folder / "series.csv"), "--output", "p.csv")
    assert code == 0, err
    assert (
        "wrote 3600 predictions (with TensorFlow; no light model: $DLCLI_LIGHT_MODEL is off) → p.csv" in out
    )
    assert "predict: 3,600 rows at" in out + err
    written = pd.read_csv(tmp_path / "p.csv")
    assert written[["sensor", "step"]].equals(series_table()[["sensor", "step"]])
    # each sensor's first 11 rows end no whole 12-row window of their own sensor
    empty = written["prediction"].isna().groupby(written["sensor"]).sum()
    assert empty.to_dict() == {"a": 11, "b": 11, "c": 11}
    # the model on the whole file at once (in this process: TensorFlow is here)
    from dlcli.datasets import pipeline, scoring
    from dlcli.evaluation import with_tensorflow

    run = with_tensorflow.load_run(streamed)
    ex = scoring.examples(run.prep, pd.read_csv(folder / "series.csv"), labelled=False)
    forecast = run.prep.decode(pipeline.forward(run.model, ex.dataset(run.prep, 256)))[0]
    assert len(forecast) == 3600 - 3 * 11
    assert float(np.abs(forecast - written["prediction"].to_numpy()[ex.starts + 11]).max()) < 1e-5


def test_a_stride_thins_the_streamed_training_windows_as_in_memory(folder, monkeypatch):
    from dlcli.config import config as config_mod
    from dlcli.datasets import scoring, seriesstream
    from dlcli.io import data as data_mod
    from dlcli.io import hashsplit
    from dlcli.preprocessing import preprocessing

    monkeypatch.setenv("DLCLI_UNIT_BYTES", UNITS["DLCLI_UNIT_BYTES"])
    path = _config(folder, "stride")
    streamed = config_mod.load_config(path, ["preprocessing.window.stride=5"])
    plan = seriesstream.plan(streamed, data_mod.load(streamed).stream)
    assert len(plan.runs) >= 15
    whole = data_mod.load(
        config_mod.load_config(path, ["preprocessing.window.stride=5", "data.stream=false"])
    )
    prep = preprocessing.fit(streamed, whole.splits["train"], whole.source, whole.columns)
    sets = scoring.split_examples(prep, whole)
    _, y, (starts, _) = scoring.training_arrays(prep, sets["train"])
    assert sum(plan.windows(hashsplit.TRAIN, strided=True)) == len(starts) == 3 * -(-(840 - 12) // 5)
    assert sum(plan.windows(hashsplit.TRAIN)) == len(sets["train"].starts)  # every window is scored
    assert sum(plan.windows(hashsplit.TEST)) == len(sets["test"].starts) == 3 * 180
