"""dlcli/utils/: the atomic writer, the one check of an output path, the table of formats and the one
pixel check, called directly on tiny files and arrays."""

from __future__ import annotations

import numpy as np
import pytest

from dlcli.utils import files, formats
from dlcli.utils.arrays import BadPixels, check_pixels
from dlcli.utils.errors import DataError


def test_write_atomic_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    files.write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_replace_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")

    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.replace_atomic(target, write)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_an_output_path_is_never_a_run_directory_or_inside_one(tmp_path):
    run = tmp_path / "runs" / "iris" / "20260101-000000"
    (run / "export").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    with pytest.raises(DataError) as caught:
        files.check_destination(run / "model.keras", "--output", kind="predictions", suffixes=(".csv",))
    assert "predictions are written to names ending .csv, not '.keras'; name it model.csv" in str(
        caught.value
    )
    with pytest.raises(DataError) as caught:
        files.check_destination(run / "p.csv", "--output", kind="predictions", suffixes=(".csv",))
    assert f"--output {run / 'p.csv'}: that is inside the run directory {run}" in str(caught.value)
    with pytest.raises(DataError, match="the folder holds dlcli runs"):
        files.check_destination(tmp_path / "runs", "--output", kind="SavedModels (folders)", folder=True)
    inside = files.check_destination(
        run / "export" / "m.onnx", "--output", kind="ONNX models", suffixes=(".onnx",), inside_run="export"
    )
    assert inside == run / "export" / "m.onnx"


def test_an_existing_file_is_replaced_only_when_it_is_an_earlier_output(tmp_path):
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"someone's model")
    with pytest.raises(DataError, match="exists and is not one of dlcli's ONNX models"):
        files.check_destination(theirs, "--output", kind="ONNX models", replaceable=lambda _: False)
    assert files.check_destination(theirs, "--output", kind="ONNX models") == theirs


def test_run_directory_of_finds_the_folder_holding_run_json(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "run.json").write_text("{}")
    assert files.run_directory_of(tmp_path / "run" / "checkpoints" / "x") == tmp_path / "run"
    assert files.run_directory_of(tmp_path / "elsewhere") is None


def test_the_table_of_formats_answers_every_reader():
    assert formats.DELIMITED[".tsv"] == "\t" and formats.DELIMITED[".txt"] is None
    assert formats.OTHER_TABLES[".pq"] == "Parquet"
    assert set(formats.PREDICTIONS) <= set(formats.DELIMITED) | set(formats.OTHER_TABLES)


def test_class_folders_and_table_folders_are_told_apart(tmp_path):
    for name in ("ants", "bees"):
        (tmp_path / "images" / name).mkdir(parents=True)
        (tmp_path / "images" / name / "1.jpg").write_bytes(b"")
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "part-0.csv").write_text("a\n1\n")
    (tmp_path / "table" / "_SUCCESS").write_text("")
    assert [p.name for p in formats.class_folders(tmp_path / "images")] == ["ants", "bees"]
    assert formats.is_table_folder(tmp_path / "table")
    assert not formats.is_table_folder(tmp_path / "images")


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (
            np.zeros((2, 3, 3)),
            "images have shape [3, 3] per item (array [2, 3, 3]); the model was trained on [4, 4]",
        ),
        (
            np.full((3, 4, 4), np.nan),
            "image 0 (counting from 0) holds NaN or infinite pixels (3 such images of 3)",
        ),
        (np.array([[[0] * 4] * 4, [[1000] * 4] * 4]), "image 1 (counting from 0) has pixels outside 0–255"),
    ],
)
def test_check_pixels_names_the_first_bad_image(pixels, message):
    with pytest.raises(BadPixels) as caught:
        check_pixels(pixels, [4, 4], "uint8", "x.npy")
    assert str(caught.value).startswith("x.npy: ") and message in str(caught.value)


def test_check_pixels_passes_good_pixels_through():
    x = np.arange(32, dtype="uint8").reshape(2, 4, 4)
    assert check_pixels(x, [4, 4], "uint8") is x
