"""Issue 15: real data as it comes. Headerless files, `?` markers and stray spaces, dropped and
ignored columns, categorical-only tables, trailing-dot labels, series with gaps and trends, class
weights, schedules, and checks that `validate` makes before `train` needs the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_json

MODEL = """\
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: %(units)s%(activation)s}
loss: %(loss)s
train: {epochs: %(epochs)s, tensorboard: false, plots: false}
"""


def _config(tmp_path: Path, data: str, task: str = "binary", extra: str = "", epochs: int = 2) -> Path:
    loss, units, activation = {
        "binary": ("binary_crossentropy", 1, ", activation: sigmoid"),
        "classes": ("sparse_categorical_crossentropy", 3, ", activation: softmax"),
        "regression": ("mse", 1, ""),
    }[task]
    text = f"name: t\ndata:\n{data}\n" + MODEL % {
        "units": units,
        "activation": activation,
        "loss": loss,
        "epochs": epochs,
    }
    (tmp_path / "c.yaml").write_text(text + extra)
    return tmp_path / "c.yaml"


def _run(cli, *args: str, code: int = 0) -> tuple[str, str]:
    got, out, err = cli(*args)
    assert got == code, f"exit {got}\n{out}\n{err}"
    assert "Traceback" not in out + err and "internal error" not in err
    return out, " ".join(err.split())  # the console wraps long lines


def _latest(tmp_path: Path) -> Path:
    return (tmp_path / "runs" / "t" / "latest").resolve()


def _diabetes_like(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Pima-style rows: 8 numbers then a 0/1 class, as UCI ships them (no header)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 8)).round(3) + 5
    y = (x[:, 0] + x[:, 1] > 10).astype(int)
    return pd.DataFrame(np.column_stack([x, y]))


# ---- headerless files ------------------------------------------------------------------------------
def test_headerless_file_is_detected_keeps_every_row_and_says_so(cli, tmp_path):
    frame = _diabetes_like()
    frame.to_csv(tmp_path / "pima.data", header=False, index=False)
    config = _config(tmp_path, "  path: pima.data\n  target: column_9")
    _, err = _run(cli, "train", str(config), "-q")
    assert f"note: {tmp_path / 'pima.data'}: values separated by ',' (sniffed; set data.sep to choose)" in err
    assert "no header row (its first row, '5.126', " in err
    assert "columns named column_1 … column_9; name them with data.columns" in err
    described = read_json(_latest(tmp_path) / "run.json")["data"]
    assert sum(described["rows"].values()) == len(frame) == 120  # the first row is data, not a header
    assert described["columns"]["numeric"] == [f"column_{i}" for i in range(1, 9)]


def test_named_columns_for_a_headerless_file_and_predict_without_the_target(cli, tmp_path):
    frame = _diabetes_like()
    frame.to_csv(tmp_path / "pima.csv", header=False, index=False)
    names = ["preg", "glucose", "bp", "skin", "insulin", "bmi", "pedigree", "age", "diabetic"]
    config = _config(tmp_path, f"  path: pima.csv\n  columns: {json.dumps(names)}\n  target: diabetic")
    _run(cli, "train", str(config), "-q")
    frame.iloc[:5, :8].to_csv(tmp_path / "new.csv", header=False, index=False)  # no header, no target
    _run(cli, "predict", "latest", "--input", "new.csv", "--output", "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:8]) == names[:8] and len(out) == 5
    assert {"prediction", "probability_0", "probability_1"} <= set(out.columns)


def test_wrong_number_of_column_names_is_one_clear_error(cli, tmp_path):
    _diabetes_like().to_csv(tmp_path / "pima.csv", header=False, index=False)
    config = _config(tmp_path, "  path: pima.csv\n  columns: [a, b, c]\n  target: c")
    _, err = _run(cli, "train", str(config), "-q", code=2)
    assert f"c.yaml:4:3: data.columns: 3 names given but {tmp_path / 'pima.csv'} has 9 values per row" in err
    assert not (tmp_path / "runs").exists()


# ---- messy values ------------------------------------------------------------------------------------
def _adult_like(n: int = 80, seed: int = 0, dot: bool = False) -> str:
    """UCI adult's style: ', ' between values, ' ?' for missing, labels with a leading space."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        age = int(rng.integers(18, 70))
        work = "?" if i % 9 == 0 else str(rng.choice(["Private", "State-gov", "Self-emp"]))
        hours = "?" if i % 11 == 0 else str(int(rng.integers(10, 60)))
        label = ">50K" if age + (int(hours) if hours != "?" else 40) > 85 else "<=50K"
        lines.append(f"{age}, {work}, {hours}, {label}{'.' if dot else ''}")
    return "\n".join(lines) + "\n"


def test_question_marks_and_spaces_are_missing_values_and_trimmed_labels(cli, tmp_path):
    (tmp_path / "adult.data").write_text(_adult_like())
    config = _config(
        tmp_path, "  path: adult.data\n  columns: [age, workclass, hours, income]\n  target: income"
    )
    _, err = _run(cli, "train", str(config), "-q")
    run = _latest(tmp_path)
    state = json.loads((run / "preprocessing.json").read_text())
    assert state["categorical"]["columns"] == ["workclass"]  # found as text, no listing needed
    assert state["categorical"]["categories_"] == [["Private", "Self-emp", "State-gov", "missing"]]
    assert state["numeric"]["columns"] == ["age", "hours"]  # ' ?' made hours missing, not text
    assert state["target"]["classes_"] == ["<=50K", ">50K"]  # no leading space
    assert "columns used: 2 numeric (age, hours) 1 categorical (workclass)" in err

    # a test file whose labels end in '.', as UCI's adult.test: read as the training classes
    (tmp_path / "adult.test").write_text(_adult_like(40, seed=1, dot=True))
    out, err = _run(cli, "evaluate", "latest", "--data", "adult.test", "--json")
    assert "accuracy" in json.loads(out)
    assert (
        "40 labels of 'income' ('<=50K.', '>50K.') differ from the training classes only by spaces or a trailing '.'"
        in err
    )

    _run(cli, "predict", "latest", "--input", "adult.test", "--output", "p.csv")
    assert {"probability_<=50K", "probability_>50K"} <= set(pd.read_csv(tmp_path / "p.csv").columns)


def test_unknown_labels_are_counted_label_by_label(cli, tmp_path):
    (tmp_path / "adult.data").write_text(_adult_like())
    config = _config(
        tmp_path, "  path: adult.data\n  columns: [age, workclass, hours, income]\n  target: income"
    )
    _run(cli, "train", str(config), "-q")
    text = _adult_like(40, seed=1).replace("<=50K", "low").replace(">50K", "high")
    (tmp_path / "other.csv").write_text("age,workclass,hours,income\n" + text)
    _, err = _run(cli, "evaluate", "latest", "--data", "other.csv", code=2)
    expected = pd.Series([line.rsplit(", ", 1)[1] for line in text.splitlines()]).value_counts()
    assert (
        f"label(s) 'low' ({expected['low']} rows), 'high' ({expected['high']} rows) not among the training labels"
        in err
    )


def test_a_table_of_only_categories_trains(cli, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"color": rng.choice(["red", "green", "blue"], 90), "size": rng.choice(["S", "M", "L"], 90)}
    )
    frame["label"] = np.where(frame["color"] == "red", "yes", "no")
    frame.to_csv(tmp_path / "cats.csv", index=False)
    _run(cli, "train", str(_config(tmp_path, "  path: cats.csv\n  target: label")), "-q")
    state = json.loads((_latest(tmp_path) / "preprocessing.json").read_text())
    assert state["numeric"]["columns"] == [] and state["categorical"]["columns"] == ["color", "size"]


def test_ordinal_encoding_is_one_column_per_category_column(cli, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(30)], 150), "x": rng.normal(size=150)})
    frame["label"] = np.where(frame["x"] > 0, 1, 0)
    frame.to_csv(tmp_path / "t.csv", index=False)
    extra = "preprocessing: {categorical: {encode: ordinal}}\n"
    _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: label", extra=extra)), "-q")
    run = _latest(tmp_path)
    state = json.loads((run / "preprocessing.json").read_text())["categorical"]
    assert state["encode"] == "ordinal"
    train_counts = frame["city"].value_counts()
    order = [train_counts.get(c, 0) for c in state["categories_"][0]]
    assert order[0] >= order[-1]  # numbered by training frequency, most frequent first
    import keras

    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    assert model.input_shape == (None, 2)  # x and one ordinal column, not 30 one-hot columns


# ---- columns used and ignored -------------------------------------------------------------------------
def test_dropped_and_unlisted_columns_are_reported_with_the_reason(cli, tmp_path):
    frame = _diabetes_like().rename(columns=lambda i: f"f{i}")
    frame.insert(0, "id", range(len(frame)))
    frame.insert(1, "name", [f"person {i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "t.csv", index=False)
    extra = "preprocessing: {numeric: {columns: [f0, f1, f2]}}\n"
    config = _config(tmp_path, "  path: t.csv\n  target: f8\n  drop: [id, name]", extra=extra)
    _, err = _run(cli, "train", str(config), "-q")
    columns = read_json(_latest(tmp_path) / "run.json")["data"]["columns"]
    assert columns["numeric"] == ["f0", "f1", "f2"]
    assert columns["ignored"] == {
        "id": "data.drop",
        "name": "data.drop",
        "f8": "the target",
        "f3": "not listed in preprocessing.numeric.columns",
        "f4": "not listed in preprocessing.numeric.columns",
        "f5": "not listed in preprocessing.numeric.columns",
        "f6": "not listed in preprocessing.numeric.columns",
        "f7": "not listed in preprocessing.numeric.columns",
    }
    assert (
        "ignored: id (data.drop), name (data.drop), f3 (not listed in preprocessing.numeric.columns)" in err
    )


def test_a_dropped_column_that_does_not_exist_is_named_with_its_line(cli, tmp_path):
    _diabetes_like().rename(columns=lambda i: f"f{i}").to_csv(tmp_path / "t.csv", index=False)
    config = _config(tmp_path, "  path: t.csv\n  target: f8\n  drop: [f1, id]")
    _, err = _run(cli, "train", str(config), "-q", code=2)
    assert "c.yaml:5:14: data.drop.1: column 'id' not found in the data (it has f0, f1," in err


def test_an_id_like_text_column_is_ignored_unless_listed(cli, tmp_path):
    frame = _diabetes_like().rename(columns=lambda i: f"f{i}")
    frame["ticket"] = [f"T-{i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "t.csv", index=False)
    _, err = _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: f8")), "-q")
    assert (
        "ticket (text with 120 distinct values in 120 rows, an id or a name: list it under "
        "preprocessing.categorical.columns to use it)"
    ) in err
    extra = "preprocessing: {categorical: {columns: [ticket]}}\n"
    _, err = _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: f8", extra=extra)), "-q")
    assert "categorical column 'ticket' has 120 distinct values in 120 rows" in err


def test_semicolons_in_a_csv_latin1_and_an_unnamed_index_column(cli, tmp_path):
    frame = _diabetes_like().rename(columns=lambda i: f"f{i}")
    frame["place"] = np.where(np.arange(len(frame)) % 2, "Zürich", "Genève")
    frame.to_csv(tmp_path / "t.csv", sep=";", encoding="latin-1")  # pandas' index: an unnamed column
    _, err = _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: f8")), "-q")
    assert f"{tmp_path / 't.csv'}: values separated by ';', not the ',' its suffix suggests" in err
    assert f"{tmp_path / 't.csv'}: not UTF-8 (invalid continuation byte at byte" in err
    state = json.loads((_latest(tmp_path) / "preprocessing.json").read_text())
    assert state["categorical"]["categories_"] == [["Genève", "Zürich"]]
    # a header with an empty cell is still a header; the unnamed column holds row numbers: ignored
    assert state["numeric"]["columns"] == [f"f{i}" for i in range(8)]
    ignored = read_json(_latest(tmp_path) / "run.json")["data"]["columns"]["ignored"]
    assert ignored["Unnamed: 0"] == "a row number (an index written without a name, as pandas does)"


# ---- counts and lines are the file's -------------------------------------------------------------------
def test_counts_and_lines_in_messages_are_the_whole_files(cli, tmp_path):
    frame = _diabetes_like(200).rename(columns=lambda i: f"f{i}")
    frame["f8"] = frame["f8"].astype(float)
    blank = [3, 50, 120, 180, 199]  # spread over what become the train, validation and test splits
    frame.loc[blank, "f8"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    _, err = _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: f8")), "-q", code=2)
    assert (
        f"{tmp_path / 't.csv'}: target 'f8' line 5 is empty (5 of 200 rows); drop those rows or fill them in"
        in err
    )
    assert not (tmp_path / "runs").exists()

    frame = _diabetes_like(200).rename(columns=lambda i: f"f{i}").astype(object)
    for row in (7, 90, 150):
        frame.loc[row, "f2"] = "n/a?"
    frame.to_csv(tmp_path / "t.csv", index=False)
    _, err = _run(cli, "train", str(tmp_path / "c.yaml"), "-q", code=2)
    assert f"{tmp_path / 't.csv'}: column 'f2' line 9: 'n/a?' is not a number (3 such rows)" in err


# ---- config checks that need no data -------------------------------------------------------------------
def test_validate_catches_what_train_used_to_find_late(cli, tmp_path):
    (tmp_path / "folder").mkdir()
    config = _config(
        tmp_path,
        "  path: folder\n  target: y",
        task="classes",
        extra="metrics: [auc]\noptimizer: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.01, decay_step: 10}}}\n",
    )
    _, err = _run(cli, "validate", str(config), code=2)
    assert (
        f"c.yaml:3:3: data.path: {tmp_path / 'folder'} is a folder with no subfolders: a folder source holds one subfolder per class (e.g. folder/ants/ and folder/bees/), at least two; or name a data file"
        in err
    )
    assert (
        "optimizer.learning_rate.ExponentialDecay.decay_step: ExponentialDecay has no argument 'decay_step'; did you mean 'decay_steps'?"
        in err
    )
    assert "c.yaml:11:11: metrics.0: auc scores one probability per row against 0/1 labels" in err


def test_a_schedule_and_reduce_lr_on_plateau_train(cli, tmp_path):
    _diabetes_like().rename(columns=lambda i: f"f{i}").to_csv(tmp_path / "t.csv", index=False)
    extra = "optimizer: {learning_rate: {ExponentialDecay: {initial_learning_rate: 0.01, decay_steps: 5, decay_rate: 0.5}}}\n"
    _run(cli, "train", str(_config(tmp_path, "  path: t.csv\n  target: f8", extra=extra)), "-q")
    plateau = "  reduce_lr_on_plateau: {monitor: loss, factor: 0.5, patience: 0, min_delta: 10.0}\n"
    text = (tmp_path / "c.yaml").read_text().replace(extra, "")
    text = text.replace(
        "train: {epochs: 2, tensorboard: false, plots: false}",
        "train:\n  epochs: 3\n  plots: false\n  tensorboard: false\n" + plateau,
    )
    (tmp_path / "c.yaml").write_text(text)
    _run(cli, "train", str(tmp_path / "c.yaml"), "-q")
    history = pd.read_csv(_latest(tmp_path) / "history.csv")
    rates = history["learning_rate"].tolist()
    assert rates[-1] < rates[0]  # no epoch improves the loss by 10: the rate is halved each epoch


def test_schedule_with_reduce_lr_on_plateau_is_refused(cli, tmp_path):
    extra = "optimizer: {learning_rate: {CosineDecay: {initial_learning_rate: 0.01, decay_steps: 5}}}\n"
    config = _config(tmp_path, "  dataset: iris", task="classes", extra=extra)
    (tmp_path / "c.yaml").write_text(
        config.read_text().replace("plots: false}", "plots: false, reduce_lr_on_plateau: {}}")
    )
    _, err = _run(cli, "validate", str(config), code=2)
    assert (
        "train.reduce_lr_on_plateau: reduce_lr_on_plateau sets the learning rate, which optimizer.learning_rate's schedule already decides"
        in err
    )


def test_class_weight_balanced_is_recorded_and_unknown_labels_refused(cli, tmp_path):
    frame = _diabetes_like(200).rename(columns=lambda i: f"f{i}")
    frame["f8"] = np.where(np.arange(200) % 5 == 0, "rare", "common")
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = _config(tmp_path, "  path: t.csv\n  target: f8", extra="")
    text = config.read_text().replace("plots: false}", "plots: false, class_weight: balanced}")
    config.write_text(text)
    _run(cli, "train", str(config), "-q")
    weights = read_json(_latest(tmp_path) / "run.json")["class_weight"]
    assert weights["rare"] == pytest.approx(2.5, rel=0.1) and weights["common"] == pytest.approx(
        0.625, rel=0.1
    )
    config.write_text(text.replace("class_weight: balanced", "class_weight: {rar: 3}"))
    _, err = _run(cli, "train", str(config), "-q", code=2)
    assert (
        "train.class_weight: 'rar' not among the training labels (common, rare); did you mean 'rare'?" in err
    )


def test_an_unquoted_no_says_to_quote_it(cli, tmp_path):
    config = _config(tmp_path, "  path: t.csv\n  target: No", task="regression")
    _, err = _run(cli, "validate", str(config), code=2)
    assert (
        "data.target: Input should be a valid string, or a valid list (got False); YAML 1.1 reads an unquoted yes, no, on, off, y or n as true or false: quote the value (e.g. 'No') to keep it as text"
        in err
    )


# ---- series ------------------------------------------------------------------------------------------
SERIES = """\
  path: s.csv
  time_column: t
  target: y
  split: {validation: 0.2, test: 0.2}
preprocessing:
  window: {length: 6}
  target: {scale: standard}
  series: %s
model:
  layers:
    - Flatten: {}
    - Dense: {units: 1}
optimizer: {learning_rate: 0.01}
loss: mse
metrics: [mae]
train: {epochs: 40, tensorboard: false, plots: false, batch_size: 16}
"""


def _series_config(tmp_path: Path, series: str) -> Path:
    (tmp_path / "c.yaml").write_text("name: t\ndata:\n" + SERIES % series)
    return tmp_path / "c.yaml"


def _trend(n: int = 240, gaps: int = 0) -> pd.DataFrame:
    """A monthly-like series that keeps growing: the test months lie above anything trained on."""
    rng = np.random.default_rng(0)
    t = np.arange(n)
    y = 100 + 3.0 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1.0, n)
    frame = pd.DataFrame({"t": t, "y": y.round(2)})
    if gaps:
        frame.loc[rng.choice(np.arange(10, n - 10), gaps, replace=False), "y"] = np.nan
    return frame


def test_shuffle_with_a_window_is_refused(cli, tmp_path):
    config = _series_config(tmp_path, "{}").read_text().replace("test: 0.2}", "test: 0.2, shuffle: true}")
    (tmp_path / "c.yaml").write_text(config)
    _, err = _run(cli, "validate", str(tmp_path / "c.yaml"), code=2)
    assert (
        "c.yaml:6:39: data.split.shuffle: a time series (preprocessing.window) is split in time order" in err
    )


def test_series_gaps_are_an_error_naming_the_fix_then_interpolated(cli, tmp_path):
    _trend(gaps=12).to_csv(tmp_path / "s.csv", index=False)
    _, err = _run(cli, "train", str(_series_config(tmp_path, "{}")), "-q", code=2)
    assert "target 'y' line" in err and "is empty (12 of 240 rows)" in err
    assert "(for a series: preprocessing.series.missing: interpolate or ffill)" in err
    _, err = _run(
        cli, "train", str(_series_config(tmp_path, "{missing: interpolate}")), "-q", "-o", "train.epochs=2"
    )
    assert "12 rows with empty cells, in y (12): interpolate (preprocessing.series.missing)" in err


def test_differencing_lets_a_trending_series_beat_persistence(cli, tmp_path):
    _trend().to_csv(tmp_path / "s.csv", index=False)
    out, err = _run(cli, "train", str(_series_config(tmp_path, "{difference: 1}")), "-q")
    assert "per-epoch loss and metrics are on the standard-scaled changes of the target" in err
    test = read_json(_latest(tmp_path) / "metrics.json")["test"]
    assert test["mae"] < test["naive_mae"], test

    # predict adds each forecast change to the window's last value: forecasts follow the trend
    frame = _trend()
    frame.tail(30).to_csv(tmp_path / "recent.csv", index=False)
    _run(cli, "predict", "latest", "--input", "recent.csv", "--output", "f.csv")
    forecast = pd.read_csv(tmp_path / "f.csv")["prediction"]
    assert forecast.isna().sum() == 5  # length - 1 rows without a full window
    actual_next = frame["y"].tail(30).shift(-1).to_numpy()[5:-1]
    assert np.abs(forecast.to_numpy()[5:-1] - actual_next).mean() < 8  # a level model stays near 700


def test_embedding_encoding_learns_a_vector_per_category_inside_the_model(cli, tmp_path):
    rng = np.random.default_rng(0)
    cities = [f"city{i}" for i in range(40)]
    frame = pd.DataFrame({"city": rng.choice(cities, 400), "x": rng.normal(size=400)})
    frame["y"] = frame["city"].str[4:].astype(int) % 2 + 0.1 * frame["x"]  # the city decides
    frame.to_csv(tmp_path / "t.csv", index=False)
    extra = "preprocessing: {categorical: {encode: embedding}}\n"
    config = _config(tmp_path, "  path: t.csv\n  target: y", task="regression", extra=extra, epochs=30)
    _run(cli, "train", str(config), "-q")
    run = _latest(tmp_path)
    import keras

    model = keras.models.load_model(run / "model.keras", safe_mode=True)  # no Lambda: loads safely
    (embedding,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    assert embedding.input_dim == 41 and embedding.output_dim == min(50, round(1.6 * 41**0.56))
    assert read_json(run / "metrics.json")["test"]["r2"] > 0.5  # learned from the city alone
    pd.DataFrame({"city": ["city3", "nowhere"], "x": [0.0, 0.0]}).to_csv(tmp_path / "new.csv", index=False)
    _, err = _run(cli, "predict", "latest", "--input", "new.csv", "--output", "p.csv")
    assert "categories not seen in training (1 in 'city') encode as the embedding's row for unseen" in err
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].notna().all()


def test_hours_missing_from_a_series_are_inserted_and_filled(cli, tmp_path):
    rng = np.random.default_rng(0)
    hours = pd.date_range("2026-01-01", periods=300, freq="h")
    frame = pd.DataFrame(
        {"t": hours.strftime("%Y-%m-%d %H:%M:%S"), "y": np.sin(np.arange(300) / 8) + rng.normal(0, 0.05, 300)}
    )
    kept = frame.drop(index=[20, 21, 22, 150, 151, 299 - 40])  # six hours never logged
    kept.to_csv(tmp_path / "s.csv", index=False)
    _, err = _run(cli, "validate", str(_series_config(tmp_path, "{}")))
    short = ("-q", "-o", "train.epochs=2")
    _, err = _run(cli, "train", str(_series_config(tmp_path, "{}")), *short)  # not silently: a note
    assert (
        "6 time steps are missing from the hourly series (the first 2026-01-01 20:00:00); windows run" in err
    )
    _, err = _run(cli, "train", str(_series_config(tmp_path, "{missing: interpolate}")), *short)
    assert "6 time steps missing from the hourly series (the first 2026-01-01 20:00:00) were inserted" in err
    assert "6 rows with empty cells, in y (6): interpolate (preprocessing.series.missing)" in err
    assert sum(read_json(_latest(tmp_path) / "run.json")["data"]["rows"].values()) == 300


def test_a_trending_monthly_series_with_missing_months_beats_persistence(cli, tmp_path):
    frame = _trend()
    frame["t"] = pd.date_range("2000-01-01", periods=len(frame), freq="MS").strftime("%Y-%m-%d")
    frame.drop(index=[30, 31, 100, 170]).to_csv(tmp_path / "s.csv", index=False)  # four months lost
    _, err = _run(cli, "train", str(_series_config(tmp_path, "{missing: interpolate, difference: 1}")), "-q")
    assert "4 time steps missing from the monthly series (the first 2002-07-01 00:00:00) were inserted" in err
    test = read_json(_latest(tmp_path) / "metrics.json")["test"]
    assert test["mae"] < test["naive_mae"], test


def test_a_target_missing_from_a_headerless_file_says_the_file_is_headerless(cli, tmp_path):
    _diabetes_like().to_csv(tmp_path / "pima.csv", header=False, index=False)
    _, err = _run(cli, "train", str(_config(tmp_path, "  path: pima.csv\n  target: Outcome")), "-q", code=2)
    assert "column 'Outcome' not found in" in err
    assert (
        "the file has no header row (its first row holds numbers), so its columns are numbered: "
        "name them with data.columns, or give the target as column_N"
    ) in err


def test_notes_come_before_the_epoch_lines_they_explain(cli, tmp_path):
    _trend().to_csv(tmp_path / "s.csv", index=False)
    got, out, err = cli("train", str(_series_config(tmp_path, "{difference: 1}")), "-o", "train.epochs=2")
    assert got == 0, err
    assert "note: per-epoch loss and metrics are on the standard-scaled changes of the target" in " ".join(
        err.split()
    )
    assert "epoch 1/2" in out and err.count("note: per-epoch") == 1
