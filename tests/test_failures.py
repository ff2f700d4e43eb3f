"""A run that fails says so: NaN guard, run status, exit code 1, the best checkpoint kept."""

from __future__ import annotations

import json

from conftest import CONFIGS, dlcli, read_json

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
    assert "Lower optimizer.learning_rate (now 1.1; try 0.11)" in proc.stderr
    (run,) = (tmp_path / "runs" / "ci-regression").glob("2*")
    status = read_json(run / "run.json")
    assert status["status"] == "failed" and status["epochs"] == {
        "completed": 1,
        "best": 1,
        "monitor": "val_loss",
    }
    assert status["error"].startswith("the loss became inf in epoch 2")
    assert not (run.parent / "latest").exists()  # latest names completed runs only
    # the best checkpoint (epoch 1) is model.keras, and evaluate works on the failed run
    metrics = json.loads(dlcli("evaluate", str(run), "--json", cwd=tmp_path).stdout)
    assert set(metrics) >= {"loss", "mae", "rmse", "r2"}


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
