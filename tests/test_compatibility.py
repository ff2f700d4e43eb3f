"""A run written by an earlier dlcli (tests/fixtures/ci-iris-run, made before issue 33 moved the code)
still evaluates, predicts the same numbers, exports and resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "runs" / "ci-iris" / "20261206-171855"
    shutil.copytree(FIXTURES / "ci-iris-run", run)
    return run


def test_an_earlier_run_evaluates_to_its_own_metrics(cli, old_run):
    code, out, err = cli("evaluate", str(old_run), "--json")
    assert code == 0, err
    recorded = json.loads((old_run / "metrics.json").read_text())["test"]
    assert json.loads(out)["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-12)


def test_an_earlier_run_predicts_what_it_predicted_then(cli, old_run, tmp_path):
    code, _, err = cli(
        "predict", str(old_run), "--input", str(FIXTURES / "iris_rows.csv"), "--output", "p.csv"
    )
    assert code == 0, err
    now, then = pd.read_csv(tmp_path / "p.csv"), pd.read_csv(FIXTURES / "ci-iris-run-predictions.csv")
    assert now["prediction"].tolist() == then["prediction"].tolist()
    columns = [c for c in then.columns if c.startswith("probability_")]
    np.testing.assert_allclose(now[columns], then[columns], atol=1e-6)


def test_an_earlier_run_exports_and_resumes(cli, old_run, tmp_path):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    code, _, err = cli("export", str(old_run), "--format", "onnx")
    assert code == 0, err
    rows = str(FIXTURES / "iris_rows.csv")
    code, _, err = cli("predict", str(old_run), "--input", rows, "--output", "o.csv", "--runtime", "onnx")
    assert code == 0, err
    then = pd.read_csv(FIXTURES / "ci-iris-run-predictions.csv")
    assert pd.read_csv(tmp_path / "o.csv")["prediction"].tolist() == then["prediction"].tolist()
    code, _, err = cli("train", "--resume", str(old_run), "-q", "-o", "train.epochs=4")
    assert code == 0, err
    assert pd.read_csv(old_run / "history.csv")["epoch"].tolist() == [1, 2, 3, 4]
