"""Several series in one file (data.series_id): data/tiny_sensors.csv holds three sensors logged
together, rows by date. Each sensor is split in time order on its own, windows (cut by index)
never cross from one sensor into another, and predict forecasts each sensor from its own rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, ROOT, fails, forked, read_json

from dlcli.artifacts import saved
from dlcli.config.config import load_config
from dlcli.datasets import scoring
from dlcli.io import data as data_mod

CONFIG = CONFIGS / "ci" / "multi_series.yaml"
SENSORS = ROOT / "data" / "tiny_sensors.csv"


@pytest.fixture(scope="module")
def sensors_run(tmp_path_factory, dlcli_fork):
    cwd = tmp_path_factory.mktemp("sensors")
    proc = forked(dlcli_fork, "train", str(CONFIG), "-q", "--run-dir", "runs", cwd=cwd)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return cwd / "runs" / "ci-multi-series" / "latest"


def test_each_series_is_split_in_time_order_and_its_missing_day_filled():
    loaded = data_mod.load(load_config(CONFIG))
    first, last = {}, {}
    for name in ("train", "validation", "test"):
        part = loaded.splits[name]
        assert sorted(part["sensor"].unique()) == ["a", "b", "c"]  # every sensor in every split
        for sensor, rows in part.groupby("sensor"):
            dates = pd.to_datetime(rows["date"])
            assert dates.is_monotonic_increasing
            if name != "train":  # this split starts after the split before it ends, sensor by sensor
                assert dates.iloc[0] > last[sensor]
            first.setdefault(sensor, dates.iloc[0])
            last[sensor] = dates.iloc[-1]
    per_sensor = pd.concat(loaded.splits.values()).groupby("sensor").size().to_dict()
    assert per_sensor == {"a": 150, "b": 150, "c": 150}  # b's missing day inserted and interpolated
    assert any("1 time steps missing from the daily series" in n and "series 'b'" in n for n in loaded.notes)


def test_no_window_crosses_from_one_series_into_another(sensors_run):
    prep = saved.load_preprocessing(sensors_run)
    loaded = data_mod.load(load_config(CONFIG))
    sets = scoring.split_examples(prep, loaded)
    offset = prep.target_offset  # 8 rows of window, the target 1 after
    assert offset == 8
    for name, ex in sets.items():
        frame, _ = scoring._with_history(prep, loaded.splits[name], _before(loaded, name))
        ids = frame["sensor"].to_numpy()
        assert (ids[ex.starts] == ids[ex.starts + offset]).all(), name
        # one target per row of the split: its first rows read the end of the split before
        if name == "train":
            assert len(ex.starts) == sum(n - offset for n in loaded.splits[name].groupby("sensor").size())
        else:
            assert len(ex.starts) == len(loaded.splits[name])
    x, y, (starts, length) = scoring.training_arrays(prep, sets["train"])
    assert x is sets["train"].x and length == 8  # the series kept once, windows by index


def _before(loaded, name: str):
    earlier = [loaded.splits[s] for s in data_mod.SPLITS[: data_mod.SPLITS.index(name)]]
    return pd.concat(earlier) if earlier else None


def test_several_series_train_beat_persistence_and_predict_each_from_its_own_rows(sensors_run, cli, tmp_path):
    record = read_json(sensors_run / "run.json")
    assert record["data"]["columns"]["ignored"]["sensor"] == "the series id, data.series_id"
    test = read_json(sensors_run / "metrics.json")["test"]
    assert test["mae"] < 0.6 * test["naive_mae"]  # measured: 0.40 against persistence's 1.05

    code, _, err = cli("predict", str(sensors_run), "--input", str(SENSORS), "--output", "all.csv")
    assert code == 0, err
    given, every = pd.read_csv(SENSORS), pd.read_csv(tmp_path / "all.csv")
    pd.testing.assert_frame_equal(every[given.columns], given)  # the input's rows, in its order
    assert every.groupby("sensor")["prediction"].apply(lambda p: p.isna().sum()).to_dict() == {
        "a": 7,
        "b": 7,
        "c": 7,
    }  # each sensor's first 7 rows end no window of 8
    for sensor in ("a", "c"):
        given[given["sensor"] == sensor].to_csv(tmp_path / f"{sensor}.csv", index=False)
        code, _, err = cli(
            "predict", str(sensors_run), "--input", f"{sensor}.csv", "--output", f"{sensor}-p.csv"
        )
        assert code == 0, err
        alone = pd.read_csv(tmp_path / f"{sensor}-p.csv")["prediction"].to_numpy()
        together = every[every["sensor"] == sensor]["prediction"].to_numpy()
        np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["preprocessing.window=null", "preprocessing.series={}"],
            "multi_series.yaml:9:3: data.series_id: series_id names the series of each row of a time series: "
            "add preprocessing.window (length, horizon), or remove data.series_id",
        ),
        (
            ["data.split.key=date"],
            "data.split.key: a time series is split in time order, each series on its own (data.series_id): "
            "remove data.split.key",
        ),
        (
            ["data.series_id=sensr"],
            "-o: data.series_id: column 'sensr' not found in "
            f"{ROOT / 'data' / 'tiny_sensors.csv'} (it has date, sensor, value); did you mean 'sensor'?",
        ),
    ],
)
def test_series_id_mistakes_exit_2(cli, overrides, message):
    args = [a for o in overrides for a in ("-o", o)]
    assert message in fails(cli, "train", str(CONFIG), *args)
