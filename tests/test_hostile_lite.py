"""Issue 32: `predict --runtime onnx|tflite` (the exported model without TensorFlow) under careless
and hostile input. Each input is refused or warned about in the words the TensorFlow runtime uses:
one function owns each check (arrays.check_pixels, runtime.column_values, the destination check)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, fails

pytest.importorskip("onnxruntime", reason="the export extra is not installed")
RUNTIMES = ["onnx", "tflite", "tensorflow"]  # the light runtimes, and the path they must agree with


def _exported(run: Path, folder: Path) -> Path:
    from dlcli.export import export

    copy = folder / "run"
    shutil.copytree(run, copy)
    for fmt in ("onnx", "tflite"):
        export.export(copy, fmt)  # in this process: TensorFlow is imported here already
    return copy


@pytest.fixture(scope="module")
def images(images_run, tmp_path_factory) -> Path:
    return _exported(images_run, tmp_path_factory.mktemp("lite-images"))


@pytest.fixture(scope="module")
def table(regression_run, tmp_path_factory) -> Path:
    return _exported(regression_run, tmp_path_factory.mktemp("lite-table"))


def _pixels(tmp_path: Path, change) -> Path:
    x = np.load(ROOT / "data" / "tiny_digits.npz")["x_test"][:5].astype("float64")
    change(x)
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


# ---- item 3: pixels ----------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda x: x.__setitem__((2, 0, 0), np.nan),
            "image 2 (counting from 0) holds NaN or infinite pixels (1 such images of 5)",
        ),
        (
            lambda x: x.__setitem__((1, 3, 3), np.inf),
            "image 1 (counting from 0) holds NaN or infinite pixels",
        ),
        (
            lambda x: x.__setitem__((0, 4, 4), 1000),
            "image 0 (counting from 0) has pixels outside 0–255 (1 such images of 5; values from 0 to 1000): "
            "the model was trained on uint8 pixels; give raw pixels in that range",
        ),
        (
            lambda x: x.__setitem__((3, 0, 1), -3),
            "image 3 (counting from 0) has pixels outside 0–255 (1 such images of 5; values from -3",
        ),
    ],
    ids=["nan", "inf", "1000", "-3"],
)
def test_bad_pixels_are_refused_by_every_runtime(cli, images, tmp_path, runtime, change, expected):
    path = _pixels(tmp_path, change)
    err = fails(cli, "predict", str(images), "--input", str(path), "--runtime", runtime)
    assert f"{path}: {expected}" in err
    assert not (tmp_path / "x_predictions.csv").exists()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_images_of_another_size_are_refused_alike(cli, images, tmp_path, runtime):
    np.save(tmp_path / "x.npy", np.zeros((3, 9, 9), dtype="uint8"))
    err = fails(cli, "predict", str(images), "--input", str(tmp_path / "x.npy"), "--runtime", runtime)
    assert (
        f"{tmp_path / 'x.npy'}: images have shape [9, 9] per item (array [3, 9, 9]); the model was trained "
        "on [8, 8]: expected an array of shape [n, 8, 8]" in err
    )


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_good_pixels_as_floats_predict_as_tensorflow_does(cli, images, tmp_path, runtime):
    path = _pixels(tmp_path, lambda x: None)  # float64 holding whole numbers in 0–255: fine
    for name in (runtime, "tensorflow"):
        code, _, err = cli(
            "predict", str(images), "--input", str(path), "--output", f"{name}.csv", "--runtime", name
        )
        assert code == 0, err
    light, reference = pd.read_csv(tmp_path / f"{runtime}.csv"), pd.read_csv(tmp_path / "tensorflow.csv")
    assert light["prediction"].tolist() == reference["prediction"].tolist()


# ---- tables: the same words on every path ---------------------------------------------------------------
def _rows(tmp_path: Path) -> Path:
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(6)
    frame.to_csv(tmp_path / "in.csv", index=False)
    return tmp_path / "in.csv"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_text_in_a_number_column_names_the_line(cli, table, tmp_path, runtime):
    path = _rows(tmp_path)
    frame = pd.read_csv(path)
    frame["rooms"] = frame["rooms"].astype(object)
    frame.loc[3, "rooms"] = "three"
    frame.to_csv(path, index=False)
    err = fails(cli, "predict", str(table), "--input", str(path), "--runtime", runtime)
    assert f"{path}: column 'rooms' line 5: 'three' is not a number" in err


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_a_missing_column_is_named(cli, table, tmp_path, runtime):
    pd.read_csv(_rows(tmp_path)).drop(columns=["rooms"]).to_csv(tmp_path / "in.csv", index=False)
    err = fails(cli, "predict", str(table), "--input", str(tmp_path / "in.csv"), "--runtime", runtime)
    assert f"{tmp_path / 'in.csv'}: missing input column(s) 'rooms'" in err


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_infinity_and_float32_overflow_are_refused(cli, table, tmp_path, runtime):
    for value, shown in (("inf", "inf"), ("1e39", "1e+39")):
        frame = pd.read_csv(_rows(tmp_path))
        frame["area"] = frame["area"].astype(object)
        frame.loc[1, "area"] = value
        frame.to_csv(tmp_path / "in.csv", index=False)
        err = fails(cli, "predict", str(table), "--input", str(tmp_path / "in.csv"), "--runtime", runtime)
        assert f"column 'area' line 3: {shown}" in err and "finite" in err, err


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unseen_categories_are_warned_about_in_the_same_words(cli, table, tmp_path, runtime):
    frame = pd.read_csv(_rows(tmp_path))
    frame.loc[[1, 4], "city"] = ["atlantis", "eldorado"]
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, out, err = cli(
        "predict", str(table), "--input", "in.csv", "--output", "o.csv", "--runtime", runtime
    )
    assert code == 0, err
    assert "warning: in.csv: categories not seen in training (2 in 'city') encode as all zeros" in err


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_a_file_with_a_header_and_no_rows_is_refused(cli, table, tmp_path, runtime):
    (tmp_path / "in.csv").write_text("area,rooms,city\n")
    err = fails(cli, "predict", str(table), "--input", str(tmp_path / "in.csv"), "--runtime", runtime)
    assert f"{tmp_path / 'in.csv'}: the file holds no data rows" in err


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_outputs_are_checked_before_anything_runs(cli, table, tmp_path, runtime):
    path = _rows(tmp_path)
    before = path.read_bytes()
    err = fails(cli, "predict", str(table), "--input", str(path), "--output", str(path), "--runtime", runtime)
    assert f"--output {path}: that is the --input file" in err and path.read_bytes() == before
    err = fails(cli, "predict", str(table), "--input", str(path), "--output", "o.json", "--runtime", runtime)
    assert "--output o.json: predictions are written to names ending .csv or .parquet or .pq" in err
    err = fails(cli, "predict", str(table), "--input", str(path), "--output", str(table / "metrics.csv"))
    assert f"that is inside the run directory {table}" in err


def test_an_unknown_runtime_is_named(cli, table, tmp_path):
    err = fails(cli, "predict", str(table), "--input", str(_rows(tmp_path)), "--runtime", "torch")
    assert "--runtime torch: expected one of" in err


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_input_file_is_exit_2(cli, table, tmp_path, runtime):
    err = fails(cli, "predict", str(table), "--input", "nothing.csv", "--runtime", runtime)
    assert f"nothing.csv: file not found (resolved to {tmp_path / 'nothing.csv'})" in err


def test_evaluate_data_that_is_missing_is_exit_2(cli, table, tmp_path):
    err = fails(cli, "evaluate", str(table), "--data", "nothing.csv")
    assert f"nothing.csv: file not found (resolved to {tmp_path / 'nothing.csv'})" in err
