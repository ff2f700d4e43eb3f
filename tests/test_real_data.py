"""Real-data accuracy (issue 2, items 1–4); marked slow. CI runs them with DLCLI_DATA_DIR set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, latest_run, model_layers, read_json, train_shipped

pytestmark = pytest.mark.slow


def _trains(cli, *args: str) -> None:
    """`dlcli train ARGS` in this process (TensorFlow imported once per test worker)."""
    code, _, err = cli("train", *args)
    assert code == 0, err


def test_iris_needs_no_download(tmp_path, cli, monkeypatch):
    # scikit-learn ships iris: no mirror, no cache, no network (timings are in benchmarks/, not here)
    monkeypatch.setenv("DLCLI_DATA_DIR", "")
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path / "cache"))
    _trains(cli, str(CONFIGS / "iris.yaml"))
    assert read_json(latest_run(tmp_path, "iris") / "metrics.json")["test"]["accuracy"] >= 0.90
    assert not (tmp_path / "cache").exists()


def test_mnist_mlp_and_predict_on_npy(tmp_path, shared_data, cli):
    _trains(cli, str(CONFIGS / "mnist.yaml"), "-q")
    assert read_json(latest_run(tmp_path, "mnist") / "metrics.json")["test"]["accuracy"] >= 0.97
    with np.load(shared_data / "mnist.npz") as mnist:
        images, labels = mnist["x_test"][:50], mnist["y_test"][:50]
    np.save(tmp_path / "digits.npy", images)
    code, _, err = cli("predict", "latest", "--input", "digits.npy", "--output", "d.csv")
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "d.csv")
    assert len(predicted) == 50 and set(predicted["prediction"]) <= set(range(10))
    assert (predicted["prediction"].to_numpy() == labels).mean() >= 0.9


def test_mnist_convnet(tmp_path, shared_data, cli):
    # 2 of the config's 15 epochs keep CI short (about 30 s here); the whole config reaches 0.99 and is
    # timed in benchmarks/ (issue 5).
    _trains(cli, str(CONFIGS / "mnist_cnn.yaml"), "-q", "-o", "train.epochs=2")
    assert read_json(latest_run(tmp_path, "mnist_cnn") / "metrics.json")["test"]["accuracy"] >= 0.98


def test_housing_regression_in_dollars(tmp_path, shared_data, cli, monkeypatch):
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path / "cache"))
    _trains(cli, str(CONFIGS / "housing.yaml"), "-q")
    run = latest_run(tmp_path, "housing")
    test = read_json(run / "metrics.json")["test"]
    assert test["r2"] >= 0.77
    assert 20_000 < test["mae"] < 60_000 and 30_000 < test["rmse"] < 90_000  # dollars
    assert not (tmp_path / "cache").exists()  # the mirror was used; nothing was downloaded

    code, out, err = cli("evaluate", "latest", "--json")
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["r2"] == pytest.approx(test["r2"], rel=1e-6)

    rows = pd.read_csv(shared_data / "housing.csv").head(100)
    rows.drop(columns="median_house_value").to_csv(tmp_path / "houses.csv", index=False)
    code, _, err = cli("predict", "latest", "--input", "houses.csv", "--output", "p.csv")
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "p.csv")["prediction"]
    assert len(predicted) == 100
    assert predicted.between(10_000, 700_000).all()
    assert np.abs(predicted - rows["median_house_value"]).mean() < 80_000


def test_temperature_beats_the_naive_forecast(tmp_path, shared_data, cli):
    # 15 of 50 epochs (early stopping ends the config at 49 here, test MAE 1.73): 1.80 here
    _trains(cli, str(CONFIGS / "temperature.yaml"), "-q", "-o", "train.epochs=15")
    test = read_json(latest_run(tmp_path, "temperature") / "metrics.json")["test"]
    # naive_mae: "tomorrow equals today" over the same test days, both in °C
    assert 1.0 < test["mae"] <= 0.95 * test["naive_mae"]

    frame = pd.read_csv(shared_data / "daily-min-temperatures.csv")
    days = len(frame)
    test_days = days - round(days * 0.85)  # shuffle: false, test is the last 15 %
    naive = np.abs(np.diff(frame["Temp"].to_numpy()))[-test_days:].mean()
    assert test["naive_mae"] == pytest.approx(naive, rel=1e-9)


def test_titanic_as_it_ships_with_the_names_in_a_text_branch(tmp_path, shared_data, cli):
    """Kaggle's Titanic file: the passenger's name through its own branch beside the numbers and
    categories (configs/titanic.yaml), above 0.80 on its stratified test split; the name's worth
    against the same config without it is measured in benchmarks/ablation.py."""
    run = train_shipped(cli, "titanic.yaml", "titanic")
    assert read_json(run / "metrics.json")["test"]["accuracy"] >= 0.80
    names = {layer["config"]["name"] for layer in model_layers(run)}
    assert {"features", "Name", "vectorize_Name", "features_and_text"} <= names
    assert read_json(run / "run.json")["compute"]["text_vectors"] == "dense"  # a branch: in the model
    pd.DataFrame(
        {"Pclass": [3, 1], "Name": ["Palsson, Master. Gosta Leonard", "Cumings, Mrs. John Bradley"],
         "Sex": ["male", "female"], "Age": [2, 38], "SibSp": [3, 1], "Parch": [1, 0], "Fare": [21.07, 71.28],
         "Embarked": ["S", "C"]}
    ).to_csv(tmp_path / "two.csv", index=False)  # fmt: skip
    code, _, err = cli("predict", str(run), "--input", "two.csv", "--output", "p.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].tolist()[1] == 1  # a first-class woman


def test_titanic_from_the_file_alone_matches_the_hand_written_config(tmp_path, shared_data, cli):
    """`dlcli train titanic.csv --target Survived`: the config written from the file (ids, tickets and
    cabins dropped, the names as words) trains with no edit to within 0.02 of configs/titanic.yaml's
    0.80 floor (seeds 42, 1 and 2 against the hand-written config: benchmarks/init_vs_hand.py)."""
    code, _, err = cli(
        "train", str(shared_data / "titanic.csv"), "--target", "Survived", "-q", "-o", "train.plots=false"
    )
    assert code == 0, err
    run = latest_run(tmp_path, "titanic")
    assert read_json(run / "metrics.json")["test"]["accuracy"] >= 0.80
    written = (run / "init.yaml").read_text()
    assert (
        "    - Ticket                            # 681 distinct values in 891 rows: an identifier" in written
    )
