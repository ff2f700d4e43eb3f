"""Issue 15 on ../shared/data (slow): a headerless copy of housing, a temperature series with gaps, and
a temperature series with a trend. Short trainings: the comparisons are between two runs of the same
length, not against published accuracy (that is test_real_data.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, latest_run, read_json

pytestmark = pytest.mark.slow
#: Short runs without plots or TensorBoard: these tests compare two runs of the same length.
SHORT = ["-q", "-o", "train.plots=false", "-o", "train.tensorboard=false"]


def _ok(cli, *args: str) -> str:
    """`dlcli ARGS` in this process (TensorFlow imported once); its stderr, unwrapped."""
    code, out, err = cli(*args)
    assert code == 0, f"exit {code}\n{out}\n{err}"
    return " ".join(err.split())


def test_a_headerless_copy_of_housing_gives_the_same_r2(cli, tmp_path, shared_data):
    short = [*SHORT, "-o", "train.epochs=3"]
    _ok(cli, "train", str(CONFIGS / "housing.yaml"), *short)
    original = read_json(latest_run(tmp_path, "housing") / "metrics.json")["test"]

    pd.read_csv(shared_data / "housing.csv").to_csv(tmp_path / "housing.data", header=False, index=False)
    text = (CONFIGS / "housing.yaml").read_text()
    config = tmp_path / "headerless.yaml"
    config.write_text(
        text.replace("name: housing", "name: headerless")
        .replace(
            "  url: https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv\n",
            "  path: housing.data\n",
        )
        .replace("  sha256: 8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e\n", "")
        .replace("target: median_house_value", "target: column_9")
        .replace("columns: [ocean_proximity], ", "")
    )
    err = _ok(cli, "train", str(config), *short)
    assert "no header row (its first row, '-122.23', '37.88'" in err
    run = latest_run(tmp_path, "headerless")
    assert sum(read_json(run / "run.json")["data"]["rows"].values()) == 20640  # every row, none a header
    headerless = read_json(run / "metrics.json")["test"]
    assert headerless["r2"] == pytest.approx(original["r2"], abs=1e-6)


def _temperature_config(tmp_path, name: str, path: str, series: str, epochs: int = 8):
    text = (CONFIGS / "temperature.yaml").read_text()
    text = (
        text.replace("name: temperature", f"name: {name}")
        .replace(
            "  url: https://raw.githubusercontent.com/jbrownlee/Datasets/master/daily-min-temperatures.csv\n",
            f"  path: {path}\n",
        )
        .replace("  sha256: 8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da\n", "")
        .replace(
            "  split: {validation: 0.15, test: 0.15, shuffle: false}",
            "  split: {validation: 0.15, test: 0.15}",
        )
        .replace(
            "  window: {length: 30, horizon: 1, stride: 1}",
            f"  window: {{length: 30, horizon: 1, stride: 1}}\n  series: {series}",
        )
    )
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    return config, [*SHORT, "-o", f"train.epochs={epochs}"]


def test_temperature_with_gaps_interpolated_is_close_to_the_full_file(cli, tmp_path, shared_data):
    frame = pd.read_csv(shared_data / "daily-min-temperatures.csv")
    frame.to_csv(tmp_path / "full.csv", index=False)
    gaps = frame.copy()
    rng = np.random.default_rng(0)
    gaps.loc[rng.choice(len(gaps), round(0.05 * len(gaps)), replace=False), "Temp"] = np.nan
    gaps.to_csv(tmp_path / "gaps.csv", index=False)

    config, short = _temperature_config(tmp_path, "full", "full.csv", "{}")
    _ok(cli, "train", str(config), *short)
    full = read_json(latest_run(tmp_path, "full") / "metrics.json")["test"]
    config, short = _temperature_config(tmp_path, "gaps", "gaps.csv", "{missing: interpolate}")
    flat = _ok(cli, "train", str(config), *short)
    # the file itself lacks two days (1984-12-31, 1988-12-31): inserted, then filled with the 182 blanks
    assert "2 time steps missing from the daily series (the first 1984-12-31 00:00:00) were inserted" in flat
    assert "184 rows with empty cells, in Temp (184): interpolate (preprocessing.series.missing)" in flat
    gapped = read_json(latest_run(tmp_path, "gaps") / "metrics.json")["test"]
    assert gapped["mae"] <= 1.05 * full["mae"], (gapped, full)


def test_a_trending_temperature_series_beats_persistence_with_differencing(cli, tmp_path, shared_data):
    frame = pd.read_csv(shared_data / "daily-min-temperatures.csv")
    frame["Temp"] = (frame["Temp"] + 0.02 * np.arange(len(frame))).round(3)  # +73 °C over ten years
    frame.to_csv(tmp_path / "trend.csv", index=False)
    config, short = _temperature_config(tmp_path, "trend", "trend.csv", "{difference: 1}")
    _ok(cli, "train", str(config), *short)
    test = read_json(latest_run(tmp_path, "trend") / "metrics.json")["test"]
    assert test["mae"] < test["naive_mae"], test
