"""Issue 32: public data sets as they ship (items 16-25): Keras' read-only arrays, IDX files, a title
line above the header, a number-only first row, ids that mix numbers and text, series with leading
gaps, the columns a submission needs. Synthetic files of the same shape, plus Titanic itself."""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_json

CLASSIFIER = """\
name: t
data: {DATA}
model:
  layers:
    - Flatten: {}
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
train: {epochs: 1, plots: false, tensorboard: false}
"""


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype("uint8")
    x = (rng.integers(0, 60, (n, 6, 6)) + y[:, None, None] * 60).astype("uint8")
    return x, y


# ---- item 16: keras.datasets' arrays are read-only -------------------------------------------------------
def test_a_keras_dataset_of_read_only_arrays_trains(cli, tmp_path, monkeypatch):
    import keras

    def read_only(n, seed):
        x, y = _images(n, seed)
        return np.frombuffer(x.tobytes(), "uint8").reshape(x.shape), np.frombuffer(y.tobytes(), "uint8")

    monkeypatch.setattr(
        keras.datasets.fashion_mnist, "load_data", lambda: (read_only(300, 0), read_only(60, 1))
    )
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path))  # a mirror without fashion_mnist.npz
    (tmp_path / "c.yaml").write_text(
        CLASSIFIER.replace("{DATA}", "{dataset: fashion_mnist, split: {validation: 0.2}}")
    )
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    assert "assignment destination is read-only" not in err


# ---- item 24: IDX files, as MNIST's family ships -----------------------------------------------------------
def _idx(path: Path, array: np.ndarray, cut: int = 0) -> None:
    head = b"\0\0\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = head + array.astype("uint8").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(data[: len(data) - cut])


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    folder = tmp_path / "fashion"
    folder.mkdir()
    (x, y), (xt, yt) = _images(300, 0), _images(60, 1)
    _idx(folder / "train-images-idx3-ubyte.gz", x)
    _idx(folder / "train-labels-idx1-ubyte.gz", y)
    _idx(folder / "t10k-images-idx3-ubyte.gz", xt)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", yt)
    return folder


def test_a_folder_of_the_four_idx_files_trains_with_its_own_test_split(cli, tmp_path, idx_folder):
    (tmp_path / "c.yaml").write_text(
        CLASSIFIER.replace("{DATA}", "{path: fashion, split: {validation: 0.2}}")
    )
    assert cli("validate", "c.yaml")[0] == 0
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs" / "t").glob("2*")
    assert read_json(run / "run.json")["data"]["rows"] == {"train": 240, "validation": 60, "test": 60}


def test_one_idx_file_with_its_labels_trains(cli, tmp_path, idx_folder):
    data = "{path: fashion/train-images-idx3-ubyte.gz, labels: fashion/train-labels-idx1-ubyte.gz}"
    (tmp_path / "c.yaml").write_text(CLASSIFIER.replace("{DATA}", data))
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            "truncate",
            "train-images-idx3-ubyte.gz: its header says 300 × 6 × 6 values (10,800 bytes) but only 10,790",
        ),
        ("no-labels", "a folder of IDX files needs one train images file"),
        ("not-idx", "train-images-idx3-ubyte.gz: not an IDX file (it starts"),
        ("count", "train-labels-idx1-ubyte.gz: 299 labels (shape [299]) for the 300 images of"),
    ],
)
def test_a_broken_idx_folder_is_named(cli, tmp_path, idx_folder, damage, expected):
    x, y = _images(300, 0)
    if damage == "truncate":
        _idx(idx_folder / "train-images-idx3-ubyte.gz", x, cut=10)
    elif damage == "no-labels":
        (idx_folder / "train-labels-idx1-ubyte.gz").unlink()
    elif damage == "not-idx":
        with gzip.open(idx_folder / "train-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(b"<html>not found</html>")
    else:
        _idx(idx_folder / "train-labels-idx1-ubyte.gz", y[:299])
    (tmp_path / "c.yaml").write_text(CLASSIFIER.replace("{DATA}", "{path: fashion}"))
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 2 and expected in " ".join(err.split()), err


def test_labels_without_an_idx_path_is_a_config_error(cli, tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,2\n")
    (tmp_path / "c.yaml").write_text(CLASSIFIER.replace("{DATA}", "{path: d.csv, target: y, labels: l.gz}"))
    code, _, err = cli("validate", "c.yaml")
    assert code == 2 and "labels is the labels file of an IDX images file" in " ".join(err.split())


# ---- items 19-21: tables as they ship ----------------------------------------------------------------------
TABLE = """\
name: tab
data: {DATA}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 1, activation: sigmoid}
loss: binary_crossentropy
train: {epochs: 1, plots: false, tensorboard: false}
"""


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": range(1, n + 1), "x": rng.normal(size=n), "kind": rng.choice(["a", "b"], n)})
    frame["y"] = (frame["x"] > 0).astype(int)
    return frame


def _train(cli, tmp_path: Path, frame: pd.DataFrame, data: str, *args: str) -> tuple[int, str]:
    """`dlcli train` on `frame` as d.csv with TABLE's `data: {DATA}`; (exit code, stderr unwrapped)."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(TABLE.replace("{DATA}", data))
    code, _, err = cli("train", "c.yaml", *args)
    return code, " ".join(err.split())


def test_ids_mixing_numbers_and_text_are_an_identifier_not_a_broken_number(cli, tmp_path):
    frame = _table()
    tickets = [str(100000 + i) if i % 3 else f"A/5 {21000 + i}" for i in range(len(frame))]
    frame.insert(1, "ticket", tickets)
    code, err = _train(cli, tmp_path, frame, "{path: d.csv, target: y, drop: [id]}")
    assert code == 0, err
    assert (
        "ticket (numbers and text (40 of 120 values text, such as 'A/5 21000') with 120 distinct values in "
        "120 rows, an id or a name: list it under preprocessing.categorical.columns to use it)" in err
    )


def test_a_few_words_in_a_number_column_are_still_mistakes(cli, tmp_path):
    frame = _table().astype({"x": object})
    frame.loc[[5, 50], "x"] = "oops"
    code, err = _train(cli, tmp_path, frame, "{path: d.csv, target: y}", "-q")
    assert code == 2 and "column 'x' line 7: 'oops' is not a number (2 such rows)" in err


def test_categories_that_mix_numbers_and_text_are_read_as_categories(cli, tmp_path):
    frame = _table()
    frame["grade"] = [str(i % 3) if i % 4 else "senior" for i in range(len(frame))]
    code, err = _train(cli, tmp_path, frame, "{path: d.csv, target: y, drop: [id]}")
    assert code == 0, err
    assert (
        "column 'grade' mixes numbers and text (30 of 120 values text, such as 'senior'): read as categories"
        in err
    )
    (run,) = (tmp_path / "runs" / "tab").glob("2*")
    assert "grade" in read_json(run / "run.json")["data"]["columns"]["categorical"]


@pytest.mark.parametrize(
    ("top", "data"),
    [
        ("|1x3 Cross validator\n", "skip_rows: 1"),
        ("# exported 2026-12-01\n# by a tool\n", "comment: '#'"),
    ],
)
def test_lines_above_the_header_are_skipped_when_asked(cli, tmp_path, top, data):
    frame = _table()
    frame.loc[7, "x"] = np.nan
    (tmp_path / "d.test").write_text(top + frame.to_csv(index=False))
    (tmp_path / "c.yaml").write_text(
        TABLE.replace("{DATA}", f"{{path: d.test, target: y, sep: ',', {data}}}")
    )
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    frame = frame.astype({"x": object})
    frame.loc[3, "x"] = "bad"
    (tmp_path / "d.test").write_text(top + frame.to_csv(index=False))
    code, _, err = cli("train", "c.yaml", "-q")
    lines = top.count("\n")
    assert code == 2 and f"column 'x' line {5 + lines}: 'bad' is not a number" in err  # the file's own line


def test_a_number_only_first_row_taken_as_the_header_is_warned_about(cli, tmp_path):
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.integers(0, 200, (80, 3)), rng.integers(0, 2, 80)])
    (tmp_path / "pima.csv").write_text(
        "\n".join(",".join(map(str, r)) for r in [[6, 148, 72, 1], *rows]) + "\n"
    )
    (tmp_path / "c.yaml").write_text(TABLE.replace("{DATA}", '{path: pima.csv, target: "1"}'))
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    assert (
        "pima.csv: the first row ('6', '148', '72', '1') holds only numbers but is read as the header, because "
        "data.target '1' is one of them; if the file has no header that row is data and is lost: set "
        "data.header: false" in " ".join(err.split())
    )


# ---- item 18: predict writes every input column --------------------------------------------------------------
def test_predict_keeps_the_dropped_id_column(cli, tmp_path):
    _table().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(TABLE.replace("{DATA}", "{path: d.csv, target: y, drop: [id]}"))
    assert cli("train", "c.yaml", "-q")[0] == 0
    (run,) = (tmp_path / "runs" / "tab").glob("2*")
    _table(10, 5).drop(columns=["y"]).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = cli("predict", str(run), "--input", "new.csv", "--output", "out.csv")
    assert code == 0, err
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:3]) == ["id", "x", "kind"] and out["id"].tolist() == list(range(1, 11))


# ---- item 22: a series' gaps -------------------------------------------------------------------------------------
def test_series_gap_notes_name_only_the_columns_with_gaps_and_the_leading_fill(cli, tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"hour": range(n), "pm25": rng.normal(50, 5, n), "temp": rng.normal(10, 2, n)})
    frame.loc[:23, "pm25"] = np.nan  # the first day empty, as in the Beijing data
    frame.loc[[60, 61, 90], "pm25"] = np.nan
    frame.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "name: s\ndata: {path: s.csv, target: pm25, time_column: hour, split: {validation: 0.15, test: 0.15, shuffle: false}}\n"
        "preprocessing: {window: {length: 8}, series: {missing: interpolate}}\n"
        "model: {layers: [{Flatten: {}}, {Dense: {units: 1}}]}\nloss: mse\n"
        "train: {epochs: 1, plots: false, tensorboard: false}\n"
    )
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    flat = " ".join(err.split())
    assert "s.csv: 27 rows with empty cells, in pm25 (27): interpolate (preprocessing.series.missing)" in flat
    assert "temp (" not in flat
    assert (
        "s.csv: pm25's first 24 cells come before any value, so they take the first value that follows (filled backwards)"
        in flat
    )


# ---- item 25: tomorrow's breakage ----------------------------------------------------------------------------------
def test_unseen_categories_are_coded_without_pandas_deprecations():
    from dlcli.preprocessing.transforms import CategoricalEncoder

    encoder = CategoricalEncoder(["c"], "most_frequent", "missing", "one_hot")
    encoder.fit(pd.DataFrame({"c": ["a", "b", "a"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' Categorical with unknown values warns (Pandas4Warning)
        codes = encoder.codes(pd.DataFrame({"c": ["b", "zzz", None]}))
    assert codes[:, 0].tolist() == [1, -1, 0]  # known, unseen, missing → the imputed 'a'


def test_titanic_as_it_ships_trains_and_predicts_with_passenger_ids(cli, tmp_path, shared_data):
    frame = pd.read_csv(shared_data / "titanic.csv")
    (tmp_path / "c.yaml").write_text(
        TABLE.replace(
            "{DATA}", f"{{path: {shared_data / 'titanic.csv'}, target: Survived, drop: [PassengerId]}}"
        )
    )
    code, _, err = cli("train", "c.yaml")
    assert code == 0, err
    assert "Ticket (numbers and text (230 of 891 values text, such as 'A/5 21171')" in " ".join(err.split())
    (run,) = (tmp_path / "runs" / "tab").glob("2*")
    frame.drop(columns=["Survived"]).tail(30).to_csv(tmp_path / "test.csv", index=False)
    code, _, err = cli("predict", str(run), "--input", "test.csv", "--output", "submission.csv")
    assert code == 0, err
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert submission["PassengerId"].tolist() == frame["PassengerId"].tail(30).tolist()


# ---- item 14: every problem of the output layer at once ---------------------------------------------------
def test_an_output_layer_wrong_in_two_ways_reports_both(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        "name: o\ndata: {dataset: breast_cancer}\nmodel:\n  layers:\n    - Dense: {units: 8}\n"
        "    - Dense: {units: 3, activation: softmax}\nloss: binary_crossentropy\n"
    )
    code, _, err = cli("validate", "c.yaml")
    assert code == 2
    assert (
        "c.yaml:6:7: model.layers.1.Dense: the output activation is 'softmax' but binary_crossentropy expects "
        "a probability: set `activation: sigmoid` on the last layer" in err
    )
    assert (
        "c.yaml:6:15: model.layers.1.Dense.units: binary_crossentropy needs exactly 1 output unit (got 3); for "
        "more than two classes use sparse_categorical_crossentropy with softmax" in err
    )
