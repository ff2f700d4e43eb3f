"""Several targets in one model (data.target: [a, b]): an output per target with its own loss,
metrics, loss weight and head; metrics.json, history, plots, evaluate, predict, runs and compare per
output; resume; tune on one output's metric; every mistake before TensorFlow, with its line; export,
predict through ONNX and TFLite, and serve with every output; what is not possible yet, said."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, ROOT, ci_config, fails, finished, read_json

MULTI = ci_config("multitask")


def test_each_target_is_an_output_with_its_loss_metrics_and_head(multitask_run):
    metrics = read_json(multitask_run / "metrics.json")
    assert list(metrics) == ["train", "validation", "test"]
    test = metrics["test"]
    assert set(test) == {"loss", "price", "city"}
    assert {"loss", "mae", "rmse", "r2"} <= set(test["price"])  # in dollars, as one target's would be
    assert 10_000 < test["price"]["mae"] < 200_000
    assert {"loss", "accuracy", "f1_macro", "per_class", "confusion_matrix"} <= set(test["city"])
    assert set(test["city"]["per_class"]) == {"east", "north", "south"}
    history = pd.read_csv(multitask_run / "history.csv")
    assert {"loss", "price_loss", "price_mae", "city_loss", "city_accuracy", "val_city_accuracy"} <= set(
        history
    )
    run = read_json(multitask_run / "run.json")
    assert run["epochs"]["monitor"] == "val_city_accuracy"
    assert run["data"]["columns"]["ignored"] == {"price": "the target", "city": "the target"}
    plots = {p.name for p in (multitask_run / "plots").iterdir()}
    assert {
        "curves.png",
        "confusion_matrix_city.png",
        "predicted_vs_actual_price.png",
        "residuals_price.png",
    } <= plots
    state = read_json(multitask_run / "preprocessing.json")
    assert [(o["name"], o["label_mode"], o["target"]["task"]) for o in state["outputs"]] == [
        ("price", None, "regression"),
        ("city", "sparse", "classification"),
    ]
    with zipfile.ZipFile(multitask_run / "model.keras") as archive:
        model = json.loads(archive.read("config.json"))
    assert set(model["config"]["output_layers"]) == {"price", "city"}  # Keras' outputs, by name
    assert model["compile_config"]["loss"] == {"price": "mse", "city": "sparse_categorical_crossentropy"}
    assert model["compile_config"]["loss_weights"] == {"price": 1.0, "city": 0.5}


def test_evaluate_and_predict_give_every_output(multitask_run, cli, tmp_path):
    code, out, err = cli("evaluate", str(multitask_run), "--json")
    assert code == 0, err
    evaluated, trained = json.loads(out), read_json(multitask_run / "metrics.json")["test"]
    assert evaluated["price"]["r2"] == pytest.approx(trained["price"]["r2"], rel=1e-6)
    assert evaluated["city"]["accuracy"] == trained["city"]["accuracy"]
    code, out, err = cli("evaluate", str(multitask_run))
    assert code == 0, err
    assert "price r2" in out and "city accuracy" in out and "per class (test, city)" in out
    rows = pd.read_csv(ROOT / "data" / "tiny_regression.csv").head(6)
    rows.drop(columns=["price", "city"]).to_csv(tmp_path / "x.csv", index=False)
    code, out, err = cli("predict", str(multitask_run), "--input", "x.csv", "--output", "p.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == [
        "area", "rooms", "prediction_price", "prediction_city",
        "probability_city_east", "probability_city_north", "probability_city_south",
    ]  # fmt: skip
    assert table["prediction_city"].isin(["east", "north", "south"]).all()
    probs = table[[c for c in table.columns if c.startswith("probability_city_")]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert table["prediction_price"].between(10_000, 1_000_000).all()  # dollars, the scaling undone


def test_runs_and_compare_name_each_outputs_metrics(multitask_run, regression_run, cli):
    code, out, err = cli("runs", str(multitask_run), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["test"]["metric"] == "price.r2"
    code, out, err = cli("compare", str(multitask_run), str(regression_run), "--json")
    assert code == 0, err
    compared = json.loads(out)["metrics"]
    assert compared["test.city.accuracy"][1] is None and compared["test.price.r2"][0] is not None
    assert compared["test.r2"][0] is None and compared["test.r2"][1] is not None


def test_stopped_after_two_epochs_resumes_to_the_uninterrupted_weights(multitask_run, tmp_path, dlcli_fork):
    """Several outputs after a trunk with a skip connection (an Add of two named layers): trained for
    2 epochs, then resumed to 4 by a new process, bit for bit the run trained for 4."""
    import keras

    config = str(CONFIGS / "ci" / "multitask.yaml")
    finished(dlcli_fork("train", config, "-q", "-o", "train.epochs=2", "--run-dir", "part", cwd=tmp_path))
    (run,) = (tmp_path / "part").glob("ci-multitask/2*")
    finished(dlcli_fork("train", "--resume", str(run), "-q", "-o", "train.epochs=4", cwd=tmp_path))
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "history.csv"), pd.read_csv(multitask_run / "history.csv")
    )
    assert read_json(run / "metrics.json") == read_json(multitask_run / "metrics.json")
    weights = [
        keras.saving.load_model(r / "model.keras", safe_mode=True).get_weights() for r in (run, multitask_run)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "loss: {price: mse, city: sparse_categorical_crossentropy}",
            "loss: mse",
            "m.yaml:23:1: loss: with several targets each needs its own loss: loss: {price: ..., city: ...}",
        ),
        (
            "loss: {price: mse, city: sparse_categorical_crossentropy}",
            "loss: {price: mse, cty: sparse_categorical_crossentropy}",
            "m.yaml:23:20: loss.cty: 'cty' is not a target (the targets: price, city); did you mean 'city'?",
        ),
        (
            "    city:\n      - Dense: {units: 8, activation: relu}\n      - Dense: {units: 3, activation: softmax}\n",
            "",
            "m.yaml:16:3: model.heads: the output of target 'city' is reached by no head: add "
            "model.heads.city, ending in its output layer",
        ),
        (
            "{units: 3, activation: softmax}",
            "{units: 3}",
            "m.yaml:21:9: model.heads.city.1.Dense: the output activation is 'linear' but "
            "sparse_categorical_crossentropy expects class probabilities: set `activation: softmax` on the "
            "last layer",
        ),
        (
            "monitor: val_city_accuracy",
            "monitor: val_accuracy",
            "m.yaml:29:20: train.early_stopping.monitor: 'val_accuracy' is not a quantity this model reports "
            "(expected one of loss, price_loss, price_mae, city_loss, city_accuracy, val_loss, "
            "val_price_loss, val_price_mae, val_city_loss, val_city_accuracy); did you mean "
            "'val_city_accuracy'?",
        ),
        (
            "  batch_size: 32\n",
            "  batch_size: 32\n  class_weight: balanced\n",
            "m.yaml:29:3: train.class_weight: several targets (data.target) are not possible here yet: class "
            "weights are per class of one target; Keras takes none for several outputs; remove it",
        ),
        (
            "  target: [price, city]",
            "  target: [price]",
            "m.yaml:6:3: data.target: one target is a column name: write target: price",
        ),
    ],
)
def test_mistakes_with_several_targets(cli, tmp_path, old, new, expected):
    assert old in MULTI
    (tmp_path / "m.yaml").write_text(MULTI.replace(old, new))
    assert expected in fails(cli, "validate", "m.yaml")


def test_a_row_missing_one_target_is_named_with_its_line(cli, tmp_path):
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv")
    frame.loc[7, "city"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    (tmp_path / "m.yaml").write_text(MULTI.replace(f"{ROOT}/data/tiny_regression.csv", "holes.csv"))
    assert (
        "holes.csv: target 'city' line 9 is empty (1 of 240 rows); drop those rows or fill them in"
        in fails(cli, "train", "m.yaml")
    )
    assert not (tmp_path / "runs").exists()


def test_every_format_holds_every_output_and_predicts_and_serves_as_dlcli_does(multitask_run, cli, tmp_path):
    """SavedModel, ONNX and TFLite each checked against dlcli predict at export (1e-5); predict
    through ONNX and TFLite (no TensorFlow) writes TensorFlow's table; the server answers one object
    per row with every target's prediction."""
    import shutil

    from servers import Server

    run = tmp_path / "run"
    shutil.copytree(multitask_run, run)  # exports go inside the run: a copy of the shared one
    for fmt in ("saved_model", "onnx", "tflite"):
        code, out, err = cli("export", str(run), "--format", fmt)
        assert code == 0, err
        assert f"in {fmt}: largest difference from dlcli predict" in out and "test price.r2" in out
    meta = read_json(run / "export" / "model.onnx.json")
    assert [(t["column"], t["task"]) for t in meta["targets"]] == [
        ("price", "regression"),
        ("city", "classification"),
    ]
    assert meta["checked"]["max_difference"] <= 1e-5 and set(meta["checked"]["outputs"]) == {"price", "city"}
    rows = pd.read_csv(ROOT / "data" / "tiny_regression.csv").head(6).drop(columns=["price", "city"])
    rows.to_csv(tmp_path / "x.csv", index=False)
    tables = {}
    for runtime in ("tensorflow", "onnx", "tflite"):
        code, out, err = cli(
            "predict", str(run), "--input", "x.csv", "--output", f"{runtime}.csv", "--runtime", runtime
        )
        assert code == 0, err
        tables[runtime] = pd.read_csv(tmp_path / f"{runtime}.csv")
    for runtime in ("onnx", "tflite"):
        table, reference = tables[runtime], tables["tensorflow"]
        assert list(table.columns) == list(reference.columns)
        assert table["prediction_city"].tolist() == reference["prediction_city"].tolist()
        np.testing.assert_allclose(table["prediction_price"], reference["prediction_price"], rtol=1e-5)
        probs = [c for c in table.columns if c.startswith("probability_city_")]
        np.testing.assert_allclose(table[probs], reference[probs], atol=1e-5)
    server = Server(run, "--runtime", "onnx")
    try:
        status, answer = server.post(rows.to_dict("records"))
        described = server.get("/metadata")
    finally:
        server.stop()
    assert status == 200, answer
    predictions = answer["predictions"]
    assert len(predictions) == 6 and set(predictions[0]) == {"price", "city"}
    assert [p["city"]["prediction"] for p in predictions] == tables["tensorflow"]["prediction_city"].tolist()
    np.testing.assert_allclose(
        [p["price"]["prediction"] for p in predictions], tables["tensorflow"]["prediction_price"], rtol=1e-5
    )
    assert set(predictions[0]["city"]["probabilities"]) == {"east", "north", "south"}
    assert [t["column"] for t in described["targets"]] == ["price", "city"]


def test_tune_scores_trials_on_one_outputs_metric(cli, tmp_path):
    """search.metric names one output's quantity; its direction is that metric's (accuracy: up), and
    a search may vary a head's layers."""
    search = (
        "search:\n  parameters:\n    model.heads.city.0.Dense.units: {choice: [4, 8]}\n"
        "  metric: val_city_accuracy\n  trials: 2\n  sampler: grid\n"
    )
    (tmp_path / "s.yaml").write_text(MULTI + search)
    code, out, err = cli("tune", "s.yaml")
    assert code == 0, err
    assert "(2 trials, maximize val_city_accuracy)" in out
    (study,) = (tmp_path / "runs" / "ci-multitask").glob("tune-*")
    trials = pd.read_csv(study / "trials.csv")
    assert sorted(trials["units"]) == [4, 8] and trials["state"].eq("completed").all()
    assert (study / "best.yaml").is_file()


def test_a_streamed_table_trains_scores_and_predicts_every_target(cli, tmp_path, monkeypatch):
    """data.stream: true with price and city, the file cut into units of about 60 rows: the statistics
    pass fits each target as the whole file's fit does (the same rows, split by the id's hash),
    training and scoring stream unit by unit, and evaluate and predict stream every output."""
    from dlcli.config.config import load_config
    from dlcli.io import data as data_mod
    from dlcli.preprocessing import preprocessing

    monkeypatch.setenv("DLCLI_UNIT_BYTES", "1500")
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv")
    frame.insert(0, "id", range(len(frame)))
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = MULTI.replace(f"path: {ROOT}/data/tiny_regression.csv", "path: t.csv\n  stream: true").replace(
        "split: {validation: 0.2, test: 0.2}", "split: {validation: 0.2, test: 0.2, key: id}"
    )
    (tmp_path / "s.yaml").write_text(config)
    code, out, err = cli("train", "s.yaml", "-q")
    assert code == 0, err
    run = next((tmp_path / "runs" / "ci-multitask").glob("2*"))
    assert read_json(run / "run.json")["data"]["stream"]["units"] >= 4
    streamed = read_json(run / "preprocessing.json")["outputs"]
    whole = load_config(tmp_path / "s.yaml", ["data.stream=false"])
    loaded = data_mod.load(whole)
    fitted = json.loads(
        preprocessing.fit(whole, loaded.splits["train"], loaded.source, loaded.columns).to_json()
    )
    assert [o["name"] for o in streamed] == [o["name"] for o in fitted["outputs"]] == ["price", "city"]
    price, city = (o["target"] for o in streamed)
    assert city["classes_"] == fitted["outputs"][1]["target"]["classes_"] == ["east", "north", "south"]
    np.testing.assert_allclose(
        [price["center_"], price["scale_"]],
        [fitted["outputs"][0]["target"]["center_"], fitted["outputs"][0]["target"]["scale_"]],
        rtol=1e-9,
    )
    trained = read_json(run / "metrics.json")["test"]
    assert set(trained) == {"loss", "price", "city"} and {"r2", "mae"} <= set(trained["price"])
    code, out, err = cli("evaluate", str(run), "--json")
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["price"]["r2"] == pytest.approx(trained["price"]["r2"], rel=1e-6)
    assert evaluated["city"]["accuracy"] == trained["city"]["accuracy"]
    code, out, err = cli("predict", str(run), "--input", "t.csv", "--output", "p.csv")
    assert code == 0, err
    assert "predict: 240 rows at" in out + err  # streamed, unit by unit
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert list(predicted.columns)[-5:] == [
        "prediction_price",
        "prediction_city",
        "probability_city_east",
        "probability_city_north",
        "probability_city_south",
    ]
    assert predicted["id"].tolist() == list(range(240))
    frame.loc[100, "city"] = None  # the statistics pass checks every unit's rows as a whole file's
    frame.to_csv(tmp_path / "holes.csv", index=False)
    (tmp_path / "h.yaml").write_text(config.replace("path: t.csv", "path: holes.csv"))
    assert "holes.csv: target 'city' line 102 is empty" in fails(cli, "train", "h.yaml")
