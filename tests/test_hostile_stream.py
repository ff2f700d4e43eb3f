"""Issue 32: streamed tables (data.stream) under careless and hostile input. Each case is a file as a
user would hand it over (columns in another order, a renamed header, a ragged or truncated line, a
file rewritten during training, a class only in the last line) and the exact words they now get."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, ROOT, STUCK_S, fails, read_json

COLUMNS = ["id", "x_1", "x_2", "x_3", "x_4", "x_5", "x_6", "c_1", "y"]
SMALL_UNITS = "4000"  # bytes per unit: a 600-row file is some 30 units


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    """600 rows of benchmarks/make_table.py's table (20 numbers, 3 categories, an id, a binary y)."""
    out = tmp_path_factory.mktemp("made") / "table.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--rows", "600", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(out)[COLUMNS]  # enough columns, fewer to write


def _config(folder: Path, path: str, **train) -> Path:
    raw = yaml.safe_load((CONFIGS / "ci" / "stream.yaml").read_text())
    raw["data"]["path"] = path
    raw["train"] = {"epochs": 1, "batch_size": 64, "plots": False, "tensorboard": False, **train}
    config = folder / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


@pytest.fixture
def small_units(monkeypatch):
    monkeypatch.setenv("DLCLI_UNIT_BYTES", SMALL_UNITS)


def _parts(folder: Path, frame: pd.DataFrame, second: pd.DataFrame, suffix: str = ".csv") -> Path:
    parts = folder / "parts"
    parts.mkdir()
    for name, part in (("a", frame.iloc[:300]), ("b", second)):
        if suffix == ".csv":
            part.to_csv(parts / f"{name}{suffix}", index=False)
        else:
            part.to_parquet(parts / f"{name}{suffix}", index=False)
    return parts


# ---- item 2: columns by name, not by position -------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_with_the_columns_in_another_order_is_read_by_name(cli, tmp_path, frame, suffix):
    """The second file lists x_2 before x_1: trained on it, the run's statistics are those of the same
    files in one order (by position, x_1 and x_2 were swapped for half the rows)."""
    runs = {}
    for order in ("same", "swapped"):
        folder = tmp_path / order
        folder.mkdir()
        second = frame.iloc[300:]
        if order == "swapped":
            columns = list(second.columns)
            columns[1], columns[2] = columns[2], columns[1]
            second = second[columns]
        _parts(folder, frame, second, suffix)
        code, _, err = cli("train", str(_config(folder, "parts")), "-q", "--run-dir", str(folder / "runs"))
        assert code == 0, err
        (runs[order],) = (folder / "runs" / "ci-stream").glob("2*")
    same, swapped = (read_json(runs[k] / "preprocessing.json")["numeric"] for k in ("same", "swapped"))
    assert swapped["columns"] == same["columns"]
    assert swapped["center_"] == pytest.approx(same["center_"], abs=1e-12)
    assert swapped["scale_"] == pytest.approx(same["scale_"], abs=1e-12)


@pytest.mark.parametrize(
    ("change", "differ"),
    [
        ({"x_1": "x_one"}, "it has 'x_one' that {first} has not; it lacks 'x_1'"),
        ({"x_5": "extra"}, "it has 'extra' that {first} has not; it lacks 'x_5'"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_renamed_column_is_an_error_naming_both_files(cli, tmp_path, frame, change, differ, suffix):
    parts = _parts(tmp_path, frame, frame.iloc[300:].rename(columns=change), suffix)
    err = fails(cli, "train", str(_config(tmp_path, "parts")), "-q")
    first, second = parts / f"a{suffix}", parts / f"b{suffix}"
    assert f"{second}: its columns (" in err
    assert (
        f") are not {first}'s (id, x_1, x_2, x_3, x_4, x_5, x_6, c_1, y): {differ.format(first=first)}."
        in err
    )
    assert "Every file of a streamed table needs the same column names (in any order)" in err
    assert not (tmp_path / "runs").exists()


def test_a_file_lacking_a_column_is_an_error(cli, tmp_path, frame):
    parts = _parts(tmp_path, frame, frame.iloc[300:].drop(columns=["x_3"]))
    err = fails(cli, "train", str(_config(tmp_path, "parts")), "-q")
    assert f"{parts / 'b.csv'}: its columns (id, x_1, x_2, x_4, x_5, x_6, c_1, y) are not" in err
    assert ": it lacks 'x_3'." in err


def _second_file(tmp_path: Path, frame: pd.DataFrame, text: str) -> Path:
    """parts/a.csv (the first 300 rows, as pandas writes them) and parts/b.csv holding `text`."""
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.iloc[:300].to_csv(parts / "a.csv", index=False)
    (parts / "b.csv").write_text(text)
    return parts


def test_a_repeated_column_name_in_a_later_file_is_an_error(cli, tmp_path, frame):
    parts = _second_file(tmp_path, frame, frame.iloc[300:].to_csv(index=False).replace("x_6", "x_5", 1))
    err = fails(cli, "train", str(_config(tmp_path, "parts")), "-q")
    assert f"{parts / 'b.csv'}: its columns (id, x_1, x_2, x_3, x_4, x_5, x_5, c_1, y) are not" in err
    assert "it lacks 'x_6'" in err


def test_a_headerless_file_among_files_with_headers_is_an_error(cli, tmp_path, frame):
    parts = _second_file(tmp_path, frame, frame.iloc[300:].to_csv(index=False, header=False))
    err = fails(cli, "train", str(_config(tmp_path, "parts")), "-q")
    assert f"{parts / 'b.csv'}: its columns (300, " in err and "Every file of a streamed table" in err


# ---- item 10: ragged, truncated, rewritten -----------------------------------------------------------
def _ragged(tmp_path: Path, frame: pd.DataFrame, line: int, cut: int = 3) -> Path:
    lines = frame.to_csv(index=False).splitlines()
    lines[line - 1] = ",".join(lines[line - 1].split(",")[:cut])
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line", [5, 480])  # in the first piece, and far into the file
def test_a_ragged_line_names_the_file_and_line(cli, tmp_path, frame, small_units, line):
    path = _ragged(tmp_path, frame, line)
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert f"{path}: line {line}: 3 fields where the header has 9 (" in err
    assert "fix the line (a row cut short or with an extra separator; a truncated file ends in one)" in err
    assert "ArrowInvalid" not in err and "internal error" not in err


def test_a_line_with_an_extra_field_names_the_file_and_line(cli, tmp_path, frame, small_units):
    lines = frame.to_csv(index=False).splitlines()
    lines[99] += ",surplus"
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert f"{tmp_path / 'table.csv'}: line 100: 10 fields where the header has 9 (" in err


def test_a_truncated_file_names_its_last_line(cli, tmp_path, frame, small_units):
    text = frame.to_csv(index=False)
    (tmp_path / "table.csv").write_text(text[: len(text) - 25])  # cut in the middle of the last row
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert f"{tmp_path / 'table.csv'}: line 601: " in err and "fields where the header has 9" in err


@pytest.fixture(scope="module")
def streamed_run(frame, tmp_path_factory, dlcli_fork) -> Path:
    from conftest import forked, ok

    folder = tmp_path_factory.mktemp("streamed")
    frame.to_csv(folder / "table.csv", index=False)
    ok(forked(dlcli_fork, "train", str(_config(folder, "table.csv")), "-q", cwd=folder))
    (run,) = (folder / "runs" / "ci-stream").glob("2*")
    return run


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_on_a_ragged_file_name_the_line(cli, tmp_path, frame, streamed_run, command):
    path = _ragged(tmp_path, frame, 42, cut=2)
    flag = "--data" if command == "evaluate" else "--input"
    err = fails(cli, command, str(streamed_run), flag, str(path))
    assert f"{path}: line 42: 2 fields where the header has 9 (" in err


def test_a_file_rewritten_during_training_fails_the_run_naming_it(tmp_path, frame, dlcli_fork):
    """Once epoch 1 is committed the file is rewritten (another length): the next piece read says the
    file changed, exit 1, the run marked failed; no TensorFlow traceback."""
    path = tmp_path / "table.csv"
    pd.concat([frame] * 4).to_csv(path, index=False)
    config = _config(tmp_path, "table.csv", epochs=400)
    proc = dlcli_fork("train", str(config), "-q", cwd=tmp_path, env={"DLCLI_UNIT_BYTES": SMALL_UNITS})
    deadline = time.monotonic() + STUCK_S
    while not list(tmp_path.glob("runs/ci-stream/2*/history.csv")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    frame.iloc[:100].to_csv(path, index=False)
    proc.wait()
    out, err = proc.communicate()
    assert proc.returncode == 1, out + err
    text = " ".join(err.split())
    assert f"error: {path}: changed while dlcli was reading it (" in text
    assert "bytes when the first pass began, " in text and "the run stopped" in text
    assert "Traceback" not in err and "UnknownError" not in err
    (run,) = tmp_path.glob("runs/ci-stream/2*")
    assert read_json(run / "run.json")["status"] == "failed"


def test_a_class_first_seen_on_the_last_line_is_refused_before_training(cli, tmp_path, frame):
    from dlcli.io import hashsplit

    table = frame.copy()
    held_out = hashsplit.codes(table, 0.1, 0.15, "id") != hashsplit.TRAIN
    last = int(table.index[held_out][-1])  # the last row of the validation or test split
    table = table.iloc[: last + 1].copy()
    table.loc[last, "y"] = 2
    table.to_csv(tmp_path / "table.csv", index=False)
    config = _config(tmp_path, "table.csv")
    raw = yaml.safe_load(config.read_text())
    raw["model"]["layers"][-1] = {"Dense": {"units": 3, "activation": "softmax"}}
    raw["loss"] = "sparse_categorical_crossentropy"
    config.write_text(yaml.safe_dump(raw))
    err = fails(cli, "train", str(config), "-q")
    assert (
        f"{tmp_path / 'table.csv'}: line {last + 2}: target 'y' is 2, a label no train row has (the train rows "
        "have 0, 1); a classifier cannot learn or score a class it never sees" in err
    )
    assert not (tmp_path / "runs").exists()  # before training: no run directory


def test_a_header_only_file_holds_no_rows(cli, tmp_path, frame):
    frame.iloc[:0].to_csv(tmp_path / "table.csv", index=False)
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert f"{tmp_path / 'table.csv'}: the data holds no rows" in err


def test_a_folder_of_files_of_two_kinds_is_refused(cli, tmp_path, frame):
    parts = _parts(tmp_path, frame, frame.iloc[300:])
    frame.iloc[:10].to_parquet(parts / "c.parquet", index=False)
    err = fails(cli, "train", str(_config(tmp_path, "parts")), "-q")
    assert "data.path: the files are of different kinds (Parquet, delimited text); stream one kind" in err


def test_a_missing_target_column_is_named(cli, tmp_path, frame):
    frame.drop(columns=["y"]).to_csv(tmp_path / "table.csv", index=False)
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert "data.target: column 'y' not found in" in err


def test_a_blank_line_in_the_middle_is_skipped_as_pandas_does(cli, tmp_path, frame):
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(200, "")
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli("train", str(_config(tmp_path, "table.csv")), "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs" / "ci-stream").glob("2*")
    assert sum(read_json(run / "run.json")["data"]["rows"].values()) == 600


def test_text_in_a_number_column_is_named_with_its_value(cli, tmp_path, frame):
    table = frame.copy().astype({"x_2": object})
    table.loc[3, "x_2"] = "n/a?"
    table.to_csv(tmp_path / "table.csv", index=False)
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert f"{tmp_path / 'table.csv'}: column 'x_2' line 5: 'n/a?'" in err


def test_json_lines_that_are_not_objects_are_refused(cli, tmp_path):
    (tmp_path / "table.jsonl").write_text("[1, 2, 3]\n[4, 5, 6]\n")
    err = fails(cli, "train", str(_config(tmp_path, "table.jsonl")), "-q")
    assert (
        f"{tmp_path / 'table.jsonl'}:1: not a JSON object per line (JSON lines): '[1, 2, 3]'; each line "
        'holds one row as {"column": value, ...}' in err
    )


def test_a_binary_file_named_csv_is_refused_with_its_name(cli, tmp_path):
    (tmp_path / "table.csv").write_bytes(bytes(range(256)) * 40)
    err = fails(cli, "train", str(_config(tmp_path, "table.csv")), "-q")
    assert str(tmp_path / "table.csv") in err


def test_a_streamed_run_predicts_only_from_files_with_its_columns(cli, tmp_path, frame, streamed_run):
    frame.rename(columns={"x_4": "x_four"}).drop(columns=["y"]).to_csv(tmp_path / "in.csv", index=False)
    err = fails(cli, "predict", str(streamed_run), "--input", str(tmp_path / "in.csv"))
    assert "x_4" in err and str(tmp_path / "in.csv") in err
