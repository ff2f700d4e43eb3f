"""A run that fails says so: NaN guard, run status, exit code 1, the best checkpoint kept."""

from __future__ import annotations

import json

import pandas as pd
from conftest import CONFIGS, ROOT, fails, forked, read_json

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


def test_diverging_loss_stops_marks_failed_and_keeps_the_best_checkpoint(tmp_path, cli, dlcli_fork):
    proc = forked(dlcli_fork, "train", str(CONFIGS / "ci" / "regression.yaml"), *DIVERGE, cwd=tmp_path)
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
    code, out, err = cli("evaluate", str(run), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert set(metrics) >= {"loss", "mae", "rmse", "r2"}
    rows = pd.read_csv(ROOT / "data" / "tiny_regression.csv").head(5)
    rows.drop(columns="price").to_csv(tmp_path / "new.csv", index=False)
    assert cli("predict", str(run), "--input", "new.csv", "--output", "out.csv")[0] == 0
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].notna().all()


def test_a_learning_rate_of_a_million_fails_in_epoch_1_and_says_there_is_no_model(tmp_path, cli):
    config = str(CONFIGS / "ci" / "regression.yaml")
    code, _, err = cli("train", config, "-q", "-o", "optimizer.learning_rate=1e6")
    assert code == 1 and "Traceback" not in err
    err = " ".join(err.split())
    assert "error: the loss became nan in epoch 1 at batch " in err
    assert "no epoch finished with a finite loss, so there is no model to keep" in err
    assert "Lower optimizer.learning_rate (now 1e+06; try 0.001, adam's default)" in err
    (run,) = (tmp_path / "runs" / "ci-regression").glob("2*")
    assert read_json(run / "run.json")["status"] == "failed"
    assert (
        f"error: {run / 'model.keras'}: missing; the run failed before any model was kept: the loss became nan in epoch 1"
        in fails(cli, "evaluate", str(run))
    )


def test_integer_learning_rate_and_scientific_notation_are_floats(tmp_path, cli):
    code, _, err = cli(
        "train",
        str(CONFIGS / "ci" / "regression.yaml"),
        "-q",
        "-o",
        "optimizer.learning_rate=1e-2",
        "-o",
        "train.epochs=1",
    )
    assert code == 0, err
    config = (tmp_path / "runs" / "ci-regression" / "latest" / "config.yaml").read_text()
    assert "learning_rate: 0.01" in config
    code, _, err = cli(
        "train",
        str(CONFIGS / "ci" / "regression.yaml"),
        "-q",
        "-o",
        "optimizer.name=sgd",
        "-o",
        "optimizer.learning_rate=1",
        "-o",
        "train.epochs=1",
    )
    assert code == 0, err
