"""dlcli/evaluation/: evaluate and predict called as functions on the fixture run (written before
issue 33, by scikit-learn's metrics): the tallies give every number metrics.json holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dlcli.evaluation import inference
from dlcli.utils.errors import DataError

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.fixture
def run(tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(FIXTURES / "ci-iris-run", copy)
    return copy


def test_evaluate_gives_back_every_test_metric_the_run_recorded(run):
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    warnings: list[str] = []
    got = inference.tensorflow_path().evaluate(run, warnings=warnings)
    assert got.keys() == recorded.keys()
    assert got["confusion_matrix"] == recorded["confusion_matrix"]
    assert got["per_class"] == {k: pytest.approx(v, abs=1e-12) for k, v in recorded["per_class"].items()}
    numbers = [k for k, v in recorded.items() if isinstance(v, float)]
    assert {k: got[k] for k in numbers} == pytest.approx({k: recorded[k] for k in numbers}, abs=1e-6)


def test_predict_writes_the_table_and_refuses_to_write_over_its_input(run, tmp_path):
    rows = FIXTURES / "iris_rows.csv"
    path, table, _ = inference.predict(run, rows, tmp_path / "p.parquet")
    assert path == tmp_path / "p.parquet"
    assert pd.read_parquet(path)["prediction"].tolist() == table["prediction"].tolist()
    assert {"probability_setosa", "probability_versicolor", "probability_virginica"} <= set(table.columns)
    copy = tmp_path / "in.csv"
    shutil.copy(rows, copy)
    with pytest.raises(DataError, match=r"--output .*in.csv: that is the --input file"):
        inference.predict(run, copy, copy)
