"""Every configs/ci/ config through the real CLI: train (a subprocess, shared) → evaluate → predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, ROOT, latest_run, read_json, trained_output

RUN_FILES = [
    "config.yaml",
    "run.json",
    "preprocessing.json",
    "model.keras",
    "history.csv",
    "metrics.json",
    "checkpoints/best.keras",
    "checkpoints/last.keras",
]


#: The pictures each CI config's run must hold (plots/).
PLOTS = {
    "iris": ["curves.png", "confusion_matrix.png"],
    "binary": ["curves.png", "confusion_matrix.png"],
    "images": ["curves.png", "confusion_matrix.png"],
    "regression": ["curves.png", "predicted_vs_actual.png", "residuals.png"],
    "series": ["curves.png", "predicted_vs_actual.png", "residuals.png", "forecast.png"],
}


def assert_real_picture(path) -> None:
    """A PNG that decodes, of a sensible size, and not blank: its pixels vary and many are not white."""
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = matplotlib.image.imread(path)[..., :3]
    height, width, _ = pixels.shape
    assert height >= 200 and width >= 300, (path, pixels.shape)
    gray = pixels.mean(axis=2)
    assert gray.var() > 0.004, (path, gray.var())
    assert (gray < 0.9).mean() > 0.01, (path, (gray < 0.9).mean())


def _predict_input(name: str, tmp_path):
    """A file of new inputs without the target, and the number of rows it holds."""
    if name == "images":
        x = np.load(ROOT / "data" / "tiny_digits.npz")["x_test"][:7]
        np.save(tmp_path / "images.npy", x)
        return tmp_path / "images.npy", 7
    source = {"regression": "tiny_regression.csv", "binary": "tiny_binary.csv", "series": "tiny_series.csv"}
    if name == "iris":
        from sklearn.datasets import load_iris

        frame = load_iris(as_frame=True).frame.drop(columns="target")
    else:
        frame = pd.read_csv(ROOT / "data" / source[name])
        frame = frame.drop(columns={"regression": ["price"], "binary": ["label"]}.get(name, []))
    frame = frame.head(40)
    frame.to_csv(tmp_path / "input.csv", index=False)
    return tmp_path / "input.csv", 40


@pytest.mark.parametrize("name", ["iris", "regression", "binary", "images", "series"])
def test_train_evaluate_predict(name, tmp_path, cli, request):
    run = request.getfixturevalue(f"{name}_run")  # `dlcli train -q` in a subprocess, shared by tests
    stdout, stderr = trained_output(run)
    assert "Traceback" not in stdout + stderr
    assert "epoch 1/" not in stdout  # -q prints only the summary
    assert f"→ {run.relative_to(run.parents[2])}" in " ".join(stdout.split())
    assert run.parent.joinpath("latest").resolve() == run.resolve()
    for file in RUN_FILES:
        assert (run / file).is_file(), file
    status = read_json(run / "run.json")
    assert status["status"] == "completed"
    assert status["versions"]["tensorflow"] and status["seed"] == 42
    metrics = read_json(run / "metrics.json")
    assert set(metrics) == {"train", "validation", "test"}
    history = pd.read_csv(run / "history.csv")
    assert len(history) == status["epochs"]["completed"] >= 1
    assert sorted(p.name for p in (run / "plots").iterdir()) == sorted(PLOTS[name])
    for picture in PLOTS[name]:
        assert_real_picture(run / "plots" / picture)
    if name == "regression":  # the one CI config that keeps TensorBoard's default (on)
        for split in ("train", "validation"):
            assert list((run / "tensorboard" / split).glob("events.out.tfevents.*")), split
    else:
        assert not (run / "tensorboard").exists()

    # evaluate --json reproduces the test metrics of metrics.json (in this process, like predict:
    # train ran as a real subprocess; these two reuse this process's TensorFlow)
    code, stdout, err = cli("evaluate", str(run), "--json")
    assert code == 0, err
    evaluated = json.loads(stdout)
    assert evaluated.keys() == metrics["test"].keys()
    for key, value in metrics["test"].items():
        if isinstance(value, float):
            assert evaluated[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        else:
            assert evaluated[key] == value, key

    # predict: one row per input row, in the target's own values
    path, rows = _predict_input(name, tmp_path)
    out = tmp_path / "pred.csv"
    code, _, err = cli("predict", str(run), "--input", str(path), "--output", str(out))
    assert code == 0, err
    predicted = pd.read_csv(out)
    assert len(predicted) == rows
    if name in ("iris", "binary", "images"):
        labels = metrics["test"]["confusion_matrix"]["labels"]
        assert set(predicted["prediction"]) <= set(labels)
        probs = predicted[[f"probability_{c}" for c in labels]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    elif name == "series":  # the first length-1 rows have no full window yet
        assert predicted["prediction"].isna().sum() == 9
        assert predicted["prediction"].iloc[9:].notna().all()
    else:
        assert predicted["prediction"].between(20_000, 1_000_000).all()  # dollars, not scaled units


def test_classification_metrics_and_string_labels(binary_run):
    metrics = read_json(binary_run / "metrics.json")["test"]
    assert {"loss", "accuracy", "f1_macro", "confusion_matrix"} <= metrics.keys()
    assert metrics["confusion_matrix"]["labels"] == ["no", "yes"]
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.sum() == 48  # 20 % of 240 rows
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())


def test_regression_metrics_are_in_original_units(tmp_path, cli):
    code, _, err = cli("train", str(CONFIGS / "ci" / "regression.yaml"), "-q", "-o", "train.epochs=30")
    assert code == 0, err
    run = latest_run(tmp_path, "ci-regression")
    test = read_json(run / "metrics.json")["test"]
    assert test["r2"] > 0.8
    assert 1_000 < test["mae"] < 60_000  # dollars; a scaled target would give about 0.1
    assert test["rmse"] >= test["mae"]
    assert test["loss"] == pytest.approx(test["rmse"] ** 2, rel=1e-4)  # mse in dollars²


def test_evaluate_on_another_labelled_file(binary_run, tmp_path, cli):
    other = pd.read_csv(ROOT / "data" / "tiny_binary.csv").tail(30)
    other.to_csv(tmp_path / "other.csv", index=False)
    code, out, err = cli("evaluate", str(binary_run), "--data", str(tmp_path / "other.csv"), "--json")
    assert code == 0, err
    assert sum(map(sum, json.loads(out)["confusion_matrix"]["matrix"])) == 30


def test_predict_writes_parquet(regression_run, tmp_path, cli):
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns="price").head(12)
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, _, err = cli("predict", str(regression_run), "--input", "in.csv", "--output", "p.parquet")
    assert code == 0, err
    out = pd.read_parquet(tmp_path / "p.parquet")
    assert list(out.columns) == ["area", "rooms", "city", "prediction"]
    assert len(out) == 12
