"""Every mistake a user can make in a config or data file: exit code 2, no traceback, and a message
that names the place (FILE:LINE:COL and key path, or column, row and value) and how to fix it."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, GOOD, ROOT, dlcli, fails


def _fails(cli, *args: str, code: int = 2) -> str:
    return fails(cli, *args, code=code, raw=True)


# ---- config mistakes: (name, config text, expected text in the message) ---------------------------
CONFIG_CASES = [
    (
        "misspelled top-level key",
        GOOD.replace("train:", "trainn:"),
        "c.yaml:11:1: trainn: unknown key 'trainn'; did you mean 'train'?",
    ),
    (
        "misspelled nested key",
        GOOD.replace("epochs: 2", "epocs: 2"),
        "c.yaml:12:3: train.epocs: unknown key 'epocs'; did you mean 'epochs'?",
    ),
    (
        "unknown layer argument",
        GOOD.replace("{units: 8,", "{unit: 8,"),
        "c.yaml:6:15: model.layers.0.Dense.unit: Dense has no argument 'unit'; did you mean 'units'?",
    ),
    (
        "required layer argument",
        GOOD.replace("{units: 8, activation: relu}", "{activation: relu}"),
        "c.yaml:6:7: model.layers.0.Dense: Dense needs 'units'",
    ),
    (
        "unknown layer",
        GOOD.replace("- Dense: {units: 8", "- Dence: {units: 8"),
        "c.yaml:6:7: model.layers.0.Dence: 'Dence' is not a Keras layer; did you mean 'Dense'",
    ),
    (
        "Lambda refused",
        GOOD.replace("- Dense: {units: 8, activation: relu}", "- Lambda: {function: x}"),
        "c.yaml:6:7: model.layers.0.Lambda: the layer Lambda is not allowed: it runs arbitrary Python code",
    ),
    (
        "Input layer refused",
        GOOD.replace("- Dense: {units: 8, activation: relu}", "- Input: {shape: [4]}"),
        "c.yaml:6:7: model.layers.0.Input: the layer Input is not allowed",
    ),
    (
        "input_shape as a layer argument",
        GOOD.replace("{units: 8,", "{input_shape: [4], units: 8,"),
        "model.layers.0.Dense.input_shape: Dense has no argument 'input_shape'; the input comes from the data",
    ),
    (
        "unknown activation",
        GOOD.replace("activation: relu", "activation: rellu"),
        "c.yaml:6:25: model.layers.0.Dense.activation: unknown activation 'rellu'; did you mean 'relu'?",
    ),
    (
        "unknown optimizer",
        GOOD.replace("name: adam,", "name: adma,"),
        "c.yaml:8:13: optimizer.name: unknown optimizer 'adma'; did you mean 'adamax' or 'adam'?",
    ),
    (
        "old optimizer argument",
        GOOD.replace("learning_rate:", "lr:"),
        "c.yaml:8:25: optimizer.lr: Adam has no argument 'lr'; did you mean 'learning_rate'?",
    ),
    (
        "unknown loss",
        GOOD.replace("loss: sparse_categorical_crossentropy", "loss: sparse_crossentropy"),
        "c.yaml:9:1: loss: unknown loss 'sparse_crossentropy'; did you mean 'binary_crossentropy' or 'sparse_categorical_crossentropy'?",
    ),
    (
        "unknown metric",
        GOOD.replace("[accuracy]", "[accuracy, acuracy]"),
        "c.yaml:10:21: metrics.1: unknown metric 'acuracy'; did you mean 'accuracy' or 'binary_accuracy'?",
    ),
    (
        "monitor not reported",
        GOOD + "  early_stopping: {monitor: val_acc}\n",
        "c.yaml:13:20: train.early_stopping.monitor: 'val_acc' is not a quantity this model reports (expected "
        "one of loss, accuracy, val_loss, val_accuracy); did you mean 'val_accuracy'?",
    ),
    (
        "checkpoint monitor without validation",
        GOOD.replace("dataset: iris", "dataset: iris\n  split: {validation: 0}")
        + "  checkpoint: {monitor: val_loss}\n",
        "train.checkpoint.monitor: 'val_loss' is not a quantity this model reports (expected one of loss, accuracy)",
    ),
    (
        "sigmoid output with sparse categorical",
        GOOD.replace("units: 3, activation: softmax", "units: 3, activation: sigmoid"),
        "c.yaml:7:7: model.layers.1.Dense: the output activation is 'sigmoid' but sparse_categorical_crossentropy "
        "expects class probabilities: set `activation: softmax` on the last layer",
    ),
    (
        "softmax output with binary cross-entropy",
        GOOD.replace("sparse_categorical_crossentropy", "binary_crossentropy"),
        "c.yaml:7:7: model.layers.1.Dense: the output activation is 'softmax' but binary_crossentropy expects a "
        "probability: set `activation: sigmoid` on the last layer",
    ),
    (
        "binary cross-entropy with 3 units",
        GOOD.replace("sparse_categorical_crossentropy", "binary_crossentropy").replace(
            "units: 3, activation: softmax", "units: 3, activation: sigmoid"
        ),
        "c.yaml:7:15: model.layers.1.Dense.units: binary_crossentropy needs exactly 1 output unit (got 3)",
    ),
    (
        "softmax output for regression",
        GOOD.replace("loss: sparse_categorical_crossentropy", "loss: mse").replace("[accuracy]", "[mae]"),
        "c.yaml:7:7: model.layers.1.Dense: a softmax output sums to 1, which mse (regression) cannot fit",
    ),
    (
        "wrong type",
        GOOD.replace("epochs: 2", "epochs: many"),
        "c.yaml:12:3: train.epochs: Input should be a valid integer, unable to parse string as an integer (got 'many')",
    ),
    (
        "negative number",
        GOOD.replace("epochs: 2", "epochs: 2\n  batch_size: -4"),
        "c.yaml:13:3: train.batch_size: Input should be greater than 0 (got -4)",
    ),
    (
        "fraction above 1",
        GOOD.replace("dataset: iris", "dataset: iris\n  split: {validation: 1.5}"),
        "c.yaml:4:11: data.split.validation: Input should be less than 1 (got 1.5)",
    ),
    (
        "fractions leave no training rows",
        GOOD.replace("dataset: iris", "dataset: iris\n  split: {validation: 0.5, test: 0.45}"),
        "c.yaml:4:3: data.split: validation + test = 0.95 leaves too few rows for training (expected a sum below 0.9)",
    ),
    (
        "two data sources",
        GOOD.replace("dataset: iris", "dataset: iris\n  path: x.csv"),
        "c.yaml:2:1: data: give exactly one data source (got path, dataset; expected one of path, url or dataset)",
    ),
    (
        "url without sha256",
        GOOD.replace("dataset: iris", "url: https://example.com/x.csv\n  target: y"),
        "c.yaml:2:1: data: url needs sha256 so the download can be verified (compute it with `sha256sum FILE`)",
    ),
    (
        "malformed sha256",
        GOOD.replace("dataset: iris", "url: https://e.com/x.csv\n  sha256: abc\n  target: y"),
        "c.yaml:4:3: data.sha256: String should match pattern '^[0-9a-fA-F]{64}$' (got 'abc')",
    ),
    (
        "unknown dataset",
        GOOD.replace("dataset: iris", "dataset: irs"),
        "c.yaml:3:3: data.dataset: Input should be 'mnist', 'fashion_mnist', 'cifar10', 'iris', 'wine', "
        "'breast_cancer', 'digits' or 'diabetes' (got 'irs'); did you mean 'iris'?",
    ),
    (
        "unknown scaler",
        GOOD + "preprocessing: {numeric: {scale: zscore}}\n",
        "c.yaml:13:27: preprocessing.numeric.scale: Input should be 'standard', 'minmax', 'robust' or 'none' (got 'zscore')",
    ),
    (
        "window of length 0",
        GOOD + "preprocessing: {window: {length: 0}}\n",
        "c.yaml:13:26: preprocessing.window.length: Input should be greater than 0 (got 0)",
    ),
    (
        "path without target",
        GOOD.replace("dataset: iris", "path: x.csv"),
        "c.yaml:2:1: data: target is required for a path or url: name the column to predict",
    ),
    (
        "missing required key",
        GOOD.replace("loss: sparse_categorical_crossentropy\n", ""),
        "c.yaml:1:1: loss: required key is missing",
    ),
    (
        "layer item with two classes",
        GOOD.replace(
            "    - Dense: {units: 8, activation: relu}", "    - Dense: {units: 8}\n      Dropout: {rate: 0.1}"
        ),
        "c.yaml:6:7: model.layers.0: each layer is one `- ClassName: {arguments}` item (got 2 keys: Dense, Dropout)",
    ),
    (
        "duplicate key",
        GOOD + "  epochs: 3\n",
        "c.yaml:13:3: train.epochs: duplicate key (first defined at line 12); YAML keeps only one of them: delete one",
    ),
    (
        "python tag",
        GOOD.replace("name: t", "name: !!python/object/apply:os.system ['echo hacked']"),
        "c.yaml:1:7: name: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    ),
    ("not YAML", "name: [t\n", "c.yaml:2:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("a list, not a mapping", "- a\n- b\n", "c.yaml: expected a mapping of keys at the top level (got list)"),
    ("empty file", "", "c.yaml: the file is empty; start from a template with `dlcli init`"),
    (
        "bad run name",
        GOOD.replace("name: t", "name: ../escape"),
        "c.yaml:1:1: name: String should match pattern",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_config_mistake(cli, tmp_path, text, expected):
    (tmp_path / "c.yaml").write_text(text)
    message = _fails(cli, "validate", str(tmp_path / "c.yaml"))
    assert expected in message


def test_all_errors_of_a_file_at_once(cli, tmp_path):
    text = (
        GOOD.replace("train:", "trainn:")
        .replace("{units: 8,", "{unit: 8,")
        .replace("[accuracy]", "[acuracy]")
    )
    (tmp_path / "c.yaml").write_text(text)
    lines = _fails(cli, "validate", str(tmp_path / "c.yaml")).removeprefix("error: ").splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "model.layers.0.Dense",
        "model.layers.0.Dense.unit",
        "metrics.0",
        "trainn",
    ]


def test_alias_bomb_is_refused(cli, tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (tmp_path / "c.yaml").write_text("\n".join(lines) + "\n")
    assert "the YAML expands to more than 20000 values through its aliases (an alias bomb?)" in _fails(
        cli, "validate", str(tmp_path / "c.yaml")
    )


# ---- overrides --------------------------------------------------------------------------------------
def test_unknown_override_path(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    message = _fails(cli, "config", "show", str(tmp_path / "c.yaml"), "-o", "train.epocs=3")
    assert "-o: train.epocs: unknown key 'epocs'; did you mean 'epochs'?" in message


def test_malformed_override(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    assert "-o train: expected key.path=value" in _fails(
        cli, "train", str(tmp_path / "c.yaml"), "-o", "train"
    )


def test_override_into_a_value(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    message = _fails(cli, "validate", str(tmp_path / "c.yaml"), "-o", "loss.x=1")
    assert "-o loss.x=1: loss is a value, not a section; cannot set loss.x inside it" in message


def test_override_value_checked_like_the_file(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    message = _fails(cli, "validate", str(tmp_path / "c.yaml"), "-o", "model.layers.0.Dense.activation=rellu")
    assert "-o: model.layers.0.Dense.activation: unknown activation 'rellu'; did you mean 'relu'?" in message


# ---- files and commands ------------------------------------------------------------------------------
def test_missing_config_file(cli, tmp_path):
    message = _fails(cli, "validate", "nope.yaml")
    assert f"nope.yaml: config file not found (resolved to {tmp_path.resolve() / 'nope.yaml'})" in message


def test_unknown_template(cli):
    message = _fails(cli, "init", "timeseris")
    assert "init: unknown template 'timeseris'; did you mean 'timeseries'?" in message


def test_init_never_overwrites(cli, tmp_path):
    (tmp_path / "timeseries.yaml").write_text("mine")
    assert "init: timeseries.yaml already exists; choose another path or pass --force" in _fails(
        cli, "init", "timeseries"
    )
    assert (tmp_path / "timeseries.yaml").read_text() == "mine"


def test_missing_run(cli, tmp_path):
    message = _fails(cli, "evaluate", "runs/none/123")
    assert "runs/none/123: not a dlcli run directory (no run.json in" in message
    assert "latest: no completed runs under" in _fails(cli, "predict", "latest", "--input", "x.csv")


# ---- data mistakes (these train: TensorFlow loads once for the module) -----------------------------------
def _table_config(tmp_path, csv_text: str | None = None, **replace) -> str:
    if csv_text is not None:
        (tmp_path / "d.csv").write_text(textwrap.dedent(csv_text))
    text = (CONFIGS / "ci" / "regression.yaml").read_text().replace("../../data/tiny_regression.csv", "d.csv")
    for old, new in replace.items():
        text = text.replace(old.replace("_", " ") if " " in old else old, new)
    (tmp_path / "c.yaml").write_text(text)
    return str(tmp_path / "c.yaml")


def _regression_csv(tmp_path, mutate=None) -> None:
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv")
    if mutate is not None:
        frame = mutate(frame)
    frame.to_csv(tmp_path / "d.csv", index=False)


def test_text_in_a_numeric_column(cli, tmp_path):
    _regression_csv(
        tmp_path,
        lambda f: f.astype({"area": object}).assign(area=lambda g: g["area"].where(g.index != 7, "abc")),
    )
    message = _fails(cli, "train", _table_config(tmp_path))
    assert "column 'area' line 9: 'abc' is not a number (1 such rows)" in message
    assert "list the column under preprocessing.categorical.columns" in message


def test_missing_data_file_shows_resolved_path(cli, tmp_path):
    message = _fails(cli, "train", _table_config(tmp_path))
    assert (
        f"data.path: {tmp_path / 'd.csv'}: no such file or folder; a relative data.path is looked for "
        "beside the config, then in $DLCLI_DATA_DIR"
    ) in " ".join(message.split())


def test_empty_data_file(cli, tmp_path):
    message = _fails(cli, "train", _table_config(tmp_path, ""))
    assert (
        f"{tmp_path / 'd.csv'}: cannot be read as CSV (EmptyDataError: No columns to parse from file)"
        in message
    )


def test_header_only_data_file(cli, tmp_path):
    message = _fails(cli, "train", _table_config(tmp_path, "area,rooms,city,price\n"))
    assert "d.csv: the file holds no data rows (expected a header and at least one row)" in message


def test_file_that_is_not_what_its_suffix_says(cli, tmp_path):
    _regression_csv(tmp_path)
    (tmp_path / "d.parquet").write_bytes((tmp_path / "d.csv").read_bytes())
    config = _table_config(tmp_path).replace("d.csv", "d.parquet")
    text = (tmp_path / "c.yaml").read_text().replace("d.csv", "d.parquet")
    (tmp_path / "c.yaml").write_text(text)
    message = _fails(cli, "train", config)
    assert f"{tmp_path / 'd.parquet'}: cannot be read as Parquet (ArrowInvalid:" in message


def test_unsupported_suffix(cli, tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    (tmp_path / "c.yaml").write_text(_text_for(tmp_path, "d.xlsx"))
    assert "d.xlsx: unsupported file type '.xlsx' (expected one of .csv" in _fails(
        cli, "train", str(tmp_path / "c.yaml")
    )


def _text_for(tmp_path, data_file: str) -> str:
    return (
        (CONFIGS / "ci" / "regression.yaml").read_text().replace("../../data/tiny_regression.csv", data_file)
    )


def test_missing_target_column_with_suggestion(cli, tmp_path):
    _regression_csv(tmp_path)
    config = _table_config(tmp_path, **{"target: price": "target: prise"})
    message = _fails(cli, "train", config)
    assert (
        "c.yaml:5:3: data.target: column 'prise' not found in" in message
        and "did you mean 'price'?" in message
    )


def test_missing_categorical_column_with_suggestion(cli, tmp_path):
    _regression_csv(tmp_path)
    message = _fails(cli, "train", _table_config(tmp_path, **{"columns: [city]": "columns: [cty]"}))
    assert "c.yaml:9:27: preprocessing.categorical.columns.0: column 'cty' not found in the data" in message
    assert "did you mean 'city'?" in message


def test_all_missing_column(cli, tmp_path):
    _regression_csv(tmp_path, lambda f: f.assign(rooms=np.nan))
    message = _fails(cli, "train", _table_config(tmp_path))
    assert (
        f"{tmp_path / 'd.csv'}: column(s) 'rooms' are empty in all 240 rows; add them to data.drop" in message
    )


def test_target_with_one_class(cli, tmp_path):
    frame = pd.read_csv(ROOT / "data" / "tiny_binary.csv").assign(label="yes")
    frame.to_csv(tmp_path / "b.csv", index=False)
    text = (
        (CONFIGS / "ci" / "binary.yaml")
        .read_text()
        .replace("../../data/tiny_binary.csv", str(tmp_path / "b.csv"))
    )
    (tmp_path / "c.yaml").write_text(text.replace("validation: 0.2, test: 0.2", "validation: 0.2"))
    assert (
        "target 'label' has only one class in the training rows ('yes'); a classifier needs at least two"
        in _fails(cli, "train", str(tmp_path / "c.yaml"))
    )


def test_binary_loss_with_three_classes(cli, tmp_path):
    text = (
        GOOD.replace("sparse_categorical_crossentropy", "binary_crossentropy")
        .replace("units: 3, activation: softmax", "units: 1, activation: sigmoid")
        .replace("[accuracy]", "[]")
    )
    (tmp_path / "c.yaml").write_text(text)
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert "loss binary_crossentropy needs exactly 2 classes, but target 'target' has 3" in message


def test_output_units_do_not_match_the_classes(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("units: 3, activation: softmax", "units: 4, activation: softmax")
    )
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert (
        "c.yaml:7:7: model.layers.1: the model's output has shape [4] but the data needs 3 output unit(s) "
        "for 3 classes: end with `- Dense: {units: 3}`"
    ) in message


def test_layer_argument_value_checked_before_data(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD.replace("{units: 8,", "{units: -8,"))
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert (  # issue 32: validate knows the common arguments' ranges, with no TensorFlow
        "c.yaml:6:15: model.layers.0.Dense.units: Dense: units must be a positive integer (received "
        "units=-8); use a number of 1 or more" in message
    )
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made
    # what only Keras can judge is judged by constructing the layer, still before any data
    (tmp_path / "c.yaml").write_text(GOOD.replace("{units: 8,", "{units: 8, kernel_initializer: nope,"))
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert (
        "c.yaml:6:7: model.layers.0.Dense: ValueError: Could not interpret initializer identifier" in message
    )
    assert not (tmp_path / "runs").exists()


def test_image_input_shape_does_not_match_the_data(cli, tmp_path):
    text = (CONFIGS / "ci" / "images.yaml").read_text().replace("[8, 8, 1]", "[28, 28, 1]")
    (tmp_path / "c.yaml").write_text(text.replace("../../data/", str(ROOT / "data") + "/"))
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert (
        "c.yaml:9:3: model.input_shape: [28, 28, 1] does not match the data, whose items have shape [8, 8] "
        "(expected the same number of values, 64)"
    ) in message


def test_window_longer_than_a_split(cli, tmp_path):
    text = (CONFIGS / "ci" / "series.yaml").read_text().replace("length: 10", "length: 190")
    (tmp_path / "c.yaml").write_text(text.replace("../../data/", str(ROOT / "data") + "/"))
    message = _fails(cli, "train", str(tmp_path / "c.yaml"))
    assert "(train split): 180 rows are too few for windows of length 190 with horizon 1" in message
    assert "shorten preprocessing.window.length" in message


def test_bad_split_column_value(cli, tmp_path):
    _regression_csv(tmp_path, lambda f: f.assign(part=["train"] * 200 + ["valid"] * 20 + ["tst"] * 20))
    config = _table_config(tmp_path, **{"split: {validation: 0.2, test: 0.2}": "split: {column: part}"})
    assert (
        "column 'part' line 222: 'tst' is not a split name (expected train/validation/test or 0/1/2)"
        in _fails(cli, "train", config)
    )


def test_npz_without_the_expected_arrays(cli, tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8)))
    text = (CONFIGS / "ci" / "images.yaml").read_text().replace("../../data/tiny_digits.npz", "d.npz")
    (tmp_path / "c.yaml").write_text(text)
    assert (
        "d.npz: an NPZ data file needs arrays x_train and y_train (and optionally x_test, y_test); it holds images"
        in _fails(cli, "train", str(tmp_path / "c.yaml"))
    )


# ---- predict-time mistakes --------------------------------------------------------------------------------
def test_predict_lists_missing_input_columns(cli, tmp_path, regression_run):
    pd.DataFrame({"rooms": [2.0], "price": [1.0]}).to_csv(tmp_path / "in.csv", index=False)
    message = _fails(cli, "predict", str(regression_run), "--input", "in.csv")
    assert (
        "in.csv: missing input column(s) 'area', 'city' (the model was trained on area, rooms, city)"
        in message
    )


def test_predict_counts_unseen_categories_in_one_warning(cli, tmp_path, regression_run):
    frame = pd.DataFrame(
        {"area": [50.0, 60.0, 70.0], "rooms": [2.0, 3.0, 1.0], "city": ["north", "west", "mars"]}
    )
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, out, err = cli("predict", str(regression_run), "--input", "in.csv", "--output", "p.csv")
    assert code == 0
    assert err.count("warning:") == 1
    assert "in.csv: categories not seen in training (2 in 'city') encode as all zeros" in err


def test_predict_text_in_numeric_column(cli, tmp_path, regression_run):
    pd.DataFrame({"area": ["big"], "rooms": [2.0], "city": ["north"]}).to_csv(
        tmp_path / "in.csv", index=False
    )
    assert "in.csv: column 'area' line 2: 'big' is not a number" in _fails(
        cli, "predict", str(regression_run), "--input", "in.csv"
    )


def test_predict_bad_output_suffix(cli, tmp_path, regression_run):
    pd.DataFrame({"area": [50.0], "rooms": [2.0], "city": ["north"]}).to_csv(tmp_path / "in.csv", index=False)
    message = _fails(cli, "predict", str(regression_run), "--input", "in.csv", "--output", "p.xlsx")
    assert (
        "--output p.xlsx: predictions are written to names ending .csv or .parquet or .pq, not '.xlsx'; "
        "name it p.csv" in message
    )


def test_predict_output_folder_that_cannot_be_written(cli, tmp_path, regression_run):
    pd.DataFrame({"area": [50.0], "rooms": [2.0], "city": ["north"]}).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "file").write_text("a file where a folder would go")
    message = _fails(cli, "predict", str(regression_run), "--input", "in.csv", "--output", "file/p.csv")
    assert (
        "--output file/p.csv: the folder file: cannot be written (Not a directory); choose another --output"
        in message
    )


def test_run_folder_that_cannot_be_written_fails_before_any_work(tmp_path):
    """In a process of its own, as users run it: the one error block, and none of the absl lines
    (CUDA probing, CPU features) TensorFlow's import writes to stderr: train imports it once with
    them held back, before any module that uses it."""
    (tmp_path / "file").write_text("a file where a folder would go")
    config = str(CONFIGS / "ci" / "regression.yaml")
    proc = dlcli("train", config, "--run-dir", "file/runs", "-o", "train.epochs=1", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        "error: file/runs/ci-regression (the runs folder): cannot be written (Not a directory); "
        "choose another with --run-dir"
    ), proc.stderr
    assert "absl" not in proc.stderr and "cuda" not in proc.stderr.lower()


def test_predict_images_of_the_wrong_shape(cli, tmp_path, images_run):
    np.save(tmp_path / "x.npy", np.zeros((3, 9, 9), dtype="uint8"))
    message = _fails(cli, "predict", str(images_run), "--input", "x.npy")
    assert (
        "x.npy: images have shape [9, 9] per item (array [3, 9, 9]); the model was trained on [8, 8]: "
        "expected an array of shape [n, 8, 8]"
    ) in message


# ---- the same through a real subprocess, as a user runs it -------------------------------------------------
def test_subprocess_exit_code_and_no_traceback(tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD.replace("train:", "trainn:"))
    proc = dlcli("train", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "c.yaml:11:1: trainn: unknown key 'trainn'; did you mean 'train'?" in proc.stderr
    debug = dlcli("--debug", "validate", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert "Traceback" in debug.stderr and "ConfigError" in debug.stderr
