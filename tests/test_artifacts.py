"""dlcli/artifacts/: what the light runtimes take (inputs_of, one check of each input), and a run's
sealed files read back, called directly on tiny frames and on the fixture run of tests/fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlcli.artifacts import runtime, saved
from dlcli.preprocessing.pixels import ImagePreprocessor
from dlcli.preprocessing.tabular import SeriesPreprocessor, TablePreprocessor
from dlcli.utils.errors import DataError, RunError

FIXTURE = Path(__file__).parent / "fixtures" / "ci-iris-run"


def _spec(name, column, role="numeric", dtype="float64", shape=()):
    return {"name": name, "column": column, "role": role, "dtype": dtype, "shape": list(shape)}


TABLE = {"kind": "table", "inputs": [_spec("age", "age"), _spec("city", "city", "categorical", "string")]}


def test_the_kind_of_an_artifact_answers_what_its_preprocessor_would():
    assert runtime.kind_of(TABLE) is TablePreprocessor
    assert runtime.kind_of({"kind": "timeseries"}).windowed
    assert runtime.kind_of({"kind": "image"}) is ImagePreprocessor
    assert runtime.kind_of({"kind": "image_files"}).reads_files


def test_a_tables_inputs_are_numbers_with_nan_for_missing_and_text_for_categories():
    part = pd.DataFrame({"age": [31, None, ""], "city": ["Oslo", None, "Rome"], "extra": [1, 2, 3]})
    got = runtime.inputs_of(TABLE, part, "in.csv")
    assert got["age"].dtype == np.float64 and got["age"][0] == 31 and np.isnan(got["age"][1:]).all()
    assert got["city"].tolist() == ["Oslo", "", "Rome"]


def test_a_missing_column_and_a_word_in_a_number_column_are_named():
    with pytest.raises(DataError) as caught:
        runtime.inputs_of(TABLE, pd.DataFrame({"age": [1]}), "in.csv")
    assert str(caught.value) == "in.csv: missing input column(s) 'city' (the model takes age, city)"
    part = pd.DataFrame({"age": [1, "old"], "city": ["a", "b"]}, index=[2, 3])  # the file's lines
    with pytest.raises(runtime.BadInput) as caught:
        runtime.inputs_of(TABLE, part, "in.csv")
    assert (caught.value.column, caught.value.row) == ("age", 3)
    assert str(caught.value) == (
        "in.csv: column 'age' line 3: 'old' is not a number (the model was trained on numbers in this column)"
    )


def test_a_series_is_cut_into_a_window_ending_at_each_row():
    meta = {"kind": "timeseries", "window": {"length": 3}, "inputs": [_spec("t", "t")]}
    got = runtime.inputs_of(meta, pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0]}), "s.csv")
    assert got["t"].tolist() == [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]
    with pytest.raises(DataError, match=r"^s.csv: 2 rows; a forecast needs a window of 3 rows$"):
        runtime.inputs_of(meta, pd.DataFrame({"t": [1.0, 2.0]}), "s.csv")


def test_pixels_go_through_the_one_pixel_check():
    meta = {"kind": "image", "inputs": [_spec("pixels", "pixels", "pixels", "uint8", (2, 2))]}
    ok = runtime.inputs_of(meta, np.zeros((1, 2, 2), dtype="uint8"), "x.npy")
    assert ok["pixels"].shape == (1, 2, 2)
    with pytest.raises(DataError, match="x.npy: image 0 .* has pixels outside 0–255"):
        runtime.inputs_of(meta, np.full((1, 2, 2), 300), "x.npy")


def test_a_runs_preprocessing_is_read_back_and_refused_once_edited(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    prep = saved.load_preprocessing(run)
    assert isinstance(prep, TablePreprocessor) and not isinstance(prep, SeriesPreprocessor)
    assert prep.input_columns == [
        "sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)",
    ]  # fmt: skip
    path = run / "preprocessing.json"
    path.write_text(path.read_text().replace('"task"', ' "task"', 1))
    with pytest.raises(RunError, match="preprocessing.json: changed since dlcli wrote it"):
        saved.load_preprocessing(run)
