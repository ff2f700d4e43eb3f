"""A run that fails says so: NaN guard, run status, exit code 1, the best checkpoint kept."""

from __future__ import annotations

import json

import pandas as pd
from conftest import CONFIGS, ROOT, dlcli, ok, read_json

DIVERGE = [
    "-o",
    "optimizer.name=sgd",
    "-o",
    "optimizer.learning_rate=1.1",
    "-o",
    "train.epochs=6",
    "-o",
    "train.early_stopping=null",
    "-q",
]


def test_diverging_loss_stops_marks_failed_and_keeps_the_best_checkpoint(tmp_path):
    proc = dlcli("train", str(CONFIGS / "ci" / "regression.yaml"), *DIVERGE, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "error: the loss became inf in epoch 2 at batch 5; training stopped and the run is marked failed."
        in proc.stderr
    )
    assert "Lower optimizer.learning_rate (now 1.1; try 0.01, sgd's default)" in proc.stderr
    (run,) = (tmp_path / "runs" / "ci-regression").glob("2*")
    status = read_json(run / "run.json")
    assert status["status"] == "failed" and status["epochs"] == {
        "completed": 1,
        "best": 1,
        "monitor": "val_loss",
    }
    assert status["error"].startswith("the loss became inf in epoch 2")
    assert not (run.parent / "latest").exists()  # latest names completed runs only
    # the learning curves of the epoch that finished are drawn; no test-split plots for a failed run
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["curves.png"]
    # the best checkpoint (epoch 1) is model.keras, and evaluate works on the failed run
    metrics = json.loads(dlcli("evaluate", str(run), "--json", cwd=tmp_path).stdout)
    assert set(metrics) >= {"loss", "mae", "rmse", "r2"}
    rows = pd.read_csv(ROOT / "data" / "tiny_regression.csv").head(5)
    rows.drop(columns="price").to_csv(tmp_path / "new.csv", index=False)
    ok(dlcli("predict", str(run), "--input", "new.csv", "--output", "out.csv", cwd=tmp_path))
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].notna().all()


def test_a_learning_rate_of_a_million_fails_in_epoch_1_and_says_there_is_no_model(tmp_path):
    config = str(CONFIGS / "ci" / "regression.yaml")
    proc = dlcli("train", config, "-q", "-o", "optimizer.learning_rate=1e6", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error: the loss became nan in epoch 1 at batch " in proc.stderr
    assert "no epoch finished with a finite loss, so there is no model to keep" in proc.stderr
    assert "Lower optimizer.learning_rate (now 1e+06; try 0.001, adam's default)" in proc.stderr
    (run,) = (tmp_path / "runs" / "ci-regression").glob("2*")
    assert read_json(run / "run.json")["status"] == "failed"
    proc = dlcli("evaluate", str(run), cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"error: {run / 'model.keras'}: missing; the run failed before any model was kept: the loss became nan in epoch 1"
        in proc.stderr
    )


def test_integer_learning_rate_and_scientific_notation_are_floats(tmp_path):
    proc = dlcli(
        "train",
        str(CONFIGS / "ci" / "regression.yaml"),
        "-q",
        "-o",
        "optimizer.learning_rate=1e-2",
        "-o",
        "train.epochs=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    config = (tmp_path / "runs" / "ci-regression" / "latest" / "config.yaml").read_text()
    assert "learning_rate: 0.01" in config
    proc = dlcli(
        "train",
        str(CONFIGS / "ci" / "regression.yaml"),
        "-q",
        "-o",
        "optimizer.name=sgd",
        "-o",
        "optimizer.learning_rate=1",
        "-o",
        "train.epochs=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
