"""A table with a photo per row (preprocessing.image.column) beside other columns: with model.branches
the photos are one input of the model, through a branch of their own, joined to the feature columns'
branch; predict, evaluate, export (SavedModel) and serve read the photos from the same column. Without
branches the photos stay the only input, as before (test_images.py)."""

from __future__ import annotations

import base64
import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, ci_config, fails, read_json

PHOTOS = ci_config("photo_table")


def test_the_photos_and_the_number_are_inputs_of_their_own_joined_after_their_branches(photo_table_run):
    run = read_json(photo_table_run / "run.json")
    assert run["data"]["columns"]["numeric"] == ["weight"] and run["data"]["columns"]["image"] == ["photo"]
    with zipfile.ZipFile(photo_table_run / "model.keras") as archive:
        model = json.loads(archive.read("config.json"))["config"]
    assert sorted(model["input_layers"]) == ["features", "photo"]
    layers = {layer["class_name"] for layer in model["layers"]}
    assert {"Conv2D", "GlobalAveragePooling2D", "Rescaling", "Concatenate"} <= layers
    state = read_json(photo_table_run / "preprocessing.json")
    assert (
        state["kind"] == "table"
        and state["image"]["column"] == "photo"
        and state["image"]["size"] == [24, 24]
    )
    test = read_json(photo_table_run / "metrics.json")["test"]
    assert set(test) == {"loss", "colour", "price"}
    # the price is 10 × weight, plus 40 for a red photo: the number alone explains most of it
    assert test["price"]["r2"] > 0.5


def _rows(tmp_path):
    """Six rows without targets, in another folder, their photos relative to it."""
    shutil.copytree(ROOT / "data" / "tiny_images", tmp_path / "tiny_images")
    rows = pd.read_csv(ROOT / "data" / "tiny_photos.csv").iloc[::8].drop(columns=["colour", "price"])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    return rows


def test_predict_evaluate_export_and_serve_read_the_photo_column(photo_table_run, cli, tmp_path, dlcli_fork):
    from servers import Server

    rows = _rows(tmp_path)
    code, out, err = cli("predict", str(photo_table_run), "--input", "rows.csv", "--output", "p.csv")
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert list(predicted.columns)[-4:] == [
        "prediction_colour",
        "probability_colour_blue",
        "probability_colour_red",
        "prediction_price",
    ]
    assert len(predicted) == 6 and predicted["prediction_colour"].isin(["blue", "red"]).all()
    code, out, err = cli("evaluate", str(photo_table_run), "--json")
    assert code == 0, err
    trained = read_json(photo_table_run / "metrics.json")["test"]
    assert json.loads(out)["price"]["r2"] == pytest.approx(trained["price"]["r2"], rel=1e-6)

    run = tmp_path / "run"
    shutil.copytree(photo_table_run, run)  # exports go inside the run
    assert (
        "--format onnx: the model takes encoded image files (JPEG, PNG, GIF, BMP), and decoding them has "
        "no onnx operation; --format saved_model holds it (this run exports as: saved_model)"
    ) in fails(cli, "export", str(run), "--format", "onnx")
    code, out, err = cli("export", str(run), "--format", "saved_model")
    assert code == 0, err
    meta = read_json(run / "export" / "saved_model" / "dlcli.json")
    assert [(s["column"], s["role"]) for s in meta["inputs"]] == [("weight", "numeric"), ("photo", "image")]
    assert meta["checked"]["max_difference"] <= 1e-5

    records = [
        {"weight": w, "photo": {"b64": base64.b64encode((tmp_path / p).read_bytes()).decode()}}
        for w, p in zip(rows["weight"], rows["photo"], strict=True)
    ]
    server = Server(run, start=dlcli_fork)  # TensorFlow serves the SavedModel's graph
    try:
        status, answer = server.post(records)
        refused, why = server.post([{"weight": 1.0, "photo": "tiny_images/red/red_00.png"}])
    finally:
        server.stop()
    assert status == 200, answer
    served = answer["predictions"]
    assert [p["colour"]["prediction"] for p in served] == predicted["prediction_colour"].tolist()
    np.testing.assert_allclose(
        [p["price"]["prediction"] for p in served], predicted["prediction_price"], rtol=1e-5
    )
    assert refused == 422
    assert why["detail"] == [
        {
            "loc": ["body", 0, "photo"],
            "msg": 'expected {"b64": "<base64 of an image file>"} per instance',
            "type": "value_error",
        }
    ]


@pytest.mark.parametrize(
    ("old", "new", "command", "expected"),
    [
        (
            "    photo:                          # the decoded photo, 24 x 24 x 3\n      - Conv2D: {filters: 4, "
            "kernel_size: 3, activation: relu}\n      - GlobalAveragePooling2D: {}\n",
            "",
            "validate",
            "c.yaml:13:3: model.branches: the image column 'photo' joins the table's other columns as a vector: "
            "give it a branch (model.branches.photo) that ends flat, e.g. `[{Conv2D: {filters: 8, kernel_size: "
            "3}}, {GlobalAveragePooling2D: {}}]`, or a model.backbone with pooling: avg",
        ),
        (
            "      - GlobalAveragePooling2D: {}\n",
            "",
            "train",
            "c.yaml:14:5: model.branches.photo: the input 'photo' reaches the join at shape [22, 22, 4], and "
            "inputs join as vectors: end its branch with GlobalAveragePooling2D (images), GlobalAveragePooling1D "
            "(sequences) or Flatten",
        ),
        (
            "    features:  ",
            "    feature:  ",
            "validate",
            "c.yaml:17:5: model.branches.feature: no input is named 'feature' (this model's: features, photo); "
            "did you mean 'features'?",
        ),
    ],
    ids=["no-branch", "not-flat", "unknown-input"],
)
def test_a_photo_column_beside_others_needs_a_branch_that_ends_flat(
    cli, tmp_path, old, new, command, expected
):
    assert old in PHOTOS
    (tmp_path / "c.yaml").write_text(PHOTOS.replace(old, new))
    assert expected in fails(cli, command, "c.yaml")


def test_a_backbone_reads_the_photo_column_before_its_branch(tmp_path):
    """model.backbone sits at the head of the photo column's branch: the photos are the application's
    input, its pooled vector enters the branch, and the numbers never pass through it."""
    from dlcli.config.config import load_config
    from dlcli.models import model as model_mod

    (tmp_path / "b.yaml").write_text(
        PHOTOS.replace("size: [24, 24], rescale: 0.00392156862745098", "size: [32, 32]")
        .replace(
            "model:\n",
            "model:\n  backbone: {name: MobileNetV2, weights: null, pooling: avg, arguments: {alpha: 0.35}}\n",
        )
        .replace(
            "      - Conv2D: {filters: 4, kernel_size: 3, activation: relu}\n      - GlobalAveragePooling2D: {}\n",
            "      - Dense: {units: 4, activation: relu, name: photo_vector}\n",
        )
    )
    config = load_config(tmp_path / "b.yaml")
    image = {"column": "photo", "shape": [32, 32, 3], "rescale": None}
    model = model_mod.build(config, [1], "float32", {"colour": 2, "price": None}, image=image)
    (base,) = (layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    assert base.input.shape[1:] == (32, 32, 3) and base.output.shape[1:] == (1280,)  # pooled
    vector = model.get_layer("photo_vector")
    assert vector.input.shape[1:] == (1280,)
    assert model.input["features"].shape[1:] == (1,) and model.input["photo"].shape[1:] == (32, 32, 3)


def test_a_photo_column_is_for_rows_of_a_table_not_windows_of_a_series(cli, tmp_path):
    (tmp_path / "w.yaml").write_text(
        PHOTOS.replace("  target: [colour, price]", "  target: price").replace(
            "  target: {scale: standard}\n", "  target: {scale: standard}\n  window: {length: 3}\n"
        )
    )
    assert (
        "w.yaml:10:11: preprocessing.image.column: a column of image files gives each row a picture; a series "
        "(preprocessing.window) reads windows of numbers: remove one of them"
    ) in fails(cli, "validate", "w.yaml")
