"""`dlcli explain`: permutation importance of each raw input column, the words that move a text
model's prediction, occlusion maps of an image model; explain.json and pictures in RUN/explain/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import GOOD, fails, latest_run, read_json

from dlcli.explain import pictures

NOISE = [f"noise{i}" for i in range(1, 9)]

SYNTHETIC = """\
name: synthetic
seed: 1
data:
  path: synthetic.csv
  target: y
  split: {validation: 0.2, test: 0.25}
preprocessing:
  target: {scale: standard}
model:
  layers:
    - Dense: {units: 16, activation: relu}
    - Dense: {units: 1}
optimizer: {name: adam, learning_rate: 0.01}
loss: mse
metrics: [mae]
train:
  epochs: 60
  batch_size: 32
  early_stopping: {monitor: val_loss, patience: 8}
  tensorboard: false
  plots: false
"""


def test_a_strong_a_weak_and_eight_noise_columns_rank_as_they_should(tmp_path, cli):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(800, 10)), columns=["x1", "x2", *NOISE])
    frame["y"] = 3.0 * frame["x1"] + 0.7 * frame["x2"] + rng.normal(scale=0.3, size=800)
    frame.to_csv(tmp_path / "synthetic.csv", index=False)
    (tmp_path / "synthetic.yaml").write_text(SYNTHETIC)
    code, _, err = cli("train", "synthetic.yaml", "-q")
    assert code == 0, err
    code, out, err = cli("explain", "latest", "--repeats", "10", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert (found["metric"], found["rows"], found["repeats"]) == ("r2", 200, 10)
    ranked = [c["column"] for c in found["columns"]]
    assert ranked[:2] == ["x1", "x2"]
    by_name = {c["column"]: c for c in found["columns"]}
    assert by_name["x1"]["importance"] > 1.0 and by_name["x2"]["importance"] > 0.05
    for name in NOISE:  # within its spread of zero: not 2 spreads away (scikit-learn's test of importance)
        assert abs(by_name[name]["importance"]) <= 2 * by_name[name]["spread"], by_name[name]
    assert by_name["x2"]["importance"] > 2 * by_name["x2"]["spread"]
    run = latest_run(tmp_path, "synthetic")
    assert read_json(run / "explain" / "explain.json") == found
    assert found["baseline"] == pytest.approx(read_json(run / "metrics.json")["test"]["r2"], rel=1e-6)
    code, out, err = cli("explain", "latest", "--repeats", "2")
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"drop in r2 when a column is shuffled (2 times; r2 {found['baseline']:.4g} on 200 rows)"
    )


def _copy(run: Path, tmp_path: Path) -> Path:
    """A shared run copied first: explain writes RUN/explain/."""
    import shutil

    return Path(shutil.copytree(run, tmp_path / "run"))


def test_a_text_model_names_the_words_that_move_each_prediction(text_run, tmp_path, cli):
    text_run = _copy(text_run, tmp_path)
    rows = pd.DataFrame({"message": ["win a free prize now txt claim", "see you at lunch tonight love"]})
    rows.to_csv(tmp_path / "two.csv", index=False)
    code, out, err = cli("explain", str(text_run), "--data", str(tmp_path / "two.csv"), "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["notes"] == [f"{tmp_path / 'two.csv'} has no label column: no importance without labels"]
    spam, ham = found["words"]
    assert spam["prediction"] == "spam" and ham["prediction"] == "ham"
    for row in (spam, ham):
        effects = [w["effect"] for w in row["words"]]
        assert effects == sorted(effects, key=abs, reverse=True)
        assert {w["word"] for w in row["words"]} <= set(row["text"].split())
    assert spam["words"][0]["word"] in {"free", "win", "prize", "cash", "claim", "txt"}
    assert spam["words"][0]["effect"] > 0  # it spoke for spam: without it, spam is less likely
    top = spam["words"][0]["word"]
    without = " ".join(w for w in spam["text"].split() if w != top)
    pd.DataFrame({"message": [spam["text"], without]}).to_csv(tmp_path / "pair.csv", index=False)
    code, _, err = cli("predict", str(text_run), "--input", str(tmp_path / "pair.csv"), "--output", "p.csv")
    assert code == 0, err
    p = pd.read_csv(tmp_path / "p.csv")["probability_spam"].to_numpy()
    assert np.log(p[0] / (1 - p[0])) - np.log(p[1] / (1 - p[1])) == pytest.approx(
        spam["words"][0]["effect"], rel=1e-3, abs=1e-4
    )


def test_an_image_model_gets_an_occlusion_map_per_image(images_run, tmp_path, cli):
    images_run = _copy(images_run, tmp_path)
    code, out, err = cli("explain", str(images_run), "--rows", "2")
    assert code == 0, err
    found = read_json(images_run / "explain" / "explain.json")
    assert [m["image"] for m in found["maps"]] == ["image 1", "image 2"]
    for shown in found["maps"]:
        assert Path(shown["map"]).stat().st_size > 0 and 0 < shown["probability"] <= 1
        assert f"{shown['image']} → {shown['prediction']}: {shown['map']}" in out
    assert "columns" not in found  # an image model has no columns to shuffle


def test_occlusion_finds_the_only_pixels_the_model_reads():
    import keras

    inputs = keras.Input((8, 8, 1))
    corner = keras.layers.Cropping2D(((0, 5), (0, 5)))(inputs)  # the top-left 3 x 3 pixels only
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(corner))
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.full((9, 1), 1.0), np.array([-4.0])])
    image = np.zeros((8, 8, 1), dtype="float32")
    image[:3, :3] = 1.0  # the corner lit: the model says class 1
    heat, label, probability = pictures.occlusion(pictures.log_scorer(model, None), image)
    assert label == 1 and probability == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert heat[:3, :3].min() > 0 and np.abs(heat[4:, :]).max() == 0 and np.abs(heat[:, 4:]).max() == 0


def test_an_edited_config_or_no_test_split_asks_for_data(iris_run, tmp_path, cli):
    run = _copy(iris_run, tmp_path)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 3", "epochs: 4"))
    err = fails(cli, "explain", str(run))
    assert err.endswith(". Restore it, or pass the data to explain on with --data")
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("data:\n  dataset: iris", "data:\n  dataset: iris\n  split: {test: 0.0}")
    )
    code, _, err = cli("train", "c.yaml", "-q", "-o", "train.plots=false")
    assert code == 0, err
    err = fails(cli, "explain", str(latest_run(tmp_path, "t")))
    assert err == "error: the run has no test split (data.split.test is 0); pass --data FILE"


def test_several_targets_are_explained_on_the_first_ones_metric(multitask_run, tmp_path, cli):
    multitask_run = _copy(multitask_run, tmp_path)
    code, out, err = cli("explain", str(multitask_run), "--repeats", "2", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["metric"] == "price.r2"
    assert found["baseline"] == pytest.approx(
        read_json(multitask_run / "metrics.json")["test"]["price"]["r2"], rel=1e-6
    )
    assert {c["column"] for c in found["columns"]} == {"area", "rooms"}  # city is a target, not an input
