"""Issue 14: hostile and careless inputs. Each test reproduces a defect a review found (it failed
before the fix) and asserts the exact message a user now sees."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import GOOD, dlcli, fails, read_json, unsealed

REGRESSION = """\
name: t
data:
  path: data.csv
  target: price
  split: {validation: 0.2, test: 0.2}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 1}
loss: mse
train: {epochs: 1, tensorboard: false, plots: false}
"""


def _fails(cli, *args: str, code: int = 2) -> str:
    return fails(cli, *args, code=code, raw=True)


def _table(tmp_path: Path, overrides: dict | None = None) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(50, 150, 60), "rooms": rng.integers(1, 6, 60).astype(float)})
    frame["price"] = frame["area"] * 2000 + rng.normal(0, 1000, 60)
    for (column, row), value in (overrides or {}).items():
        frame.loc[row, column] = value
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "c.yaml").write_text(REGRESSION)
    return tmp_path / "c.yaml"


# ---- 1. non-finite data ----------------------------------------------------------------------------
def test_inf_in_training_rows_names_file_line_and_column(cli, tmp_path):
    config = _table(tmp_path, {("area", 6): np.inf})
    err = _fails(cli, "train", str(config), "-q")
    assert f"{tmp_path / 'data.csv'}: column 'area' line 8: inf is not a finite number (1 such rows)" in err
    assert "set preprocessing.numeric.non_finite: missing to impute every ±inf" in err
    assert not (tmp_path / "runs").exists()  # a data error leaves no failed run behind


def test_inf_only_in_test_rows_is_refused_too(cli, tmp_path):
    config = _table(tmp_path, {("rooms", 59): -np.inf})
    err = _fails(cli, "train", str(config), "-q", "-o", "data.split.shuffle=false")
    # checked over the whole file before it is split: the file's line, not a split's row
    assert f"{tmp_path / 'data.csv'}: column 'rooms' line 61: -inf is not a finite number" in err


def test_inf_can_be_imputed_when_asked(cli, tmp_path):
    config = _table(tmp_path, {("area", 6): np.inf, ("area", 40): -np.inf})
    code, _, err = cli("train", str(config), "-q", "-o", "preprocessing.numeric.non_finite=missing")
    assert code == 0, err
    (run,) = (tmp_path / "runs" / "t").glob("2*")
    state = read_json(run / "preprocessing.json")["numeric"]
    assert state["non_finite"] == "missing" and all(np.isfinite(state["scale_"] + state["center_"]))


def test_huge_values_that_overflow_scaling_are_refused(cli, tmp_path):
    config = _table(tmp_path, {("area", 3): 1e308, ("area", 4): 1e308, ("area", 5): 1e308})
    err = _fails(cli, "train", str(config), "-q")
    assert (
        "column 'area': its standard scaling statistics overflow (values as large as 1e+308 in the training rows)"
        in err
    )


def test_value_too_large_for_float32_is_refused_in_test_rows(cli, tmp_path):
    config = _table(tmp_path)
    frame = pd.read_csv(tmp_path / "data.csv")
    frame.loc[59, "rooms"] = 1e300  # finite, but not once scaled to float32
    frame.to_csv(tmp_path / "data.csv", index=False)
    err = _fails(cli, "train", str(config), "-q", "-o", "data.split.shuffle=false")
    assert (
        "(test split): column 'rooms' line 61: 1e+300 is out of range once scaled (float32 holds up to 3.4e38"
        in err
    )


def test_predict_refuses_inf_and_imputes_nan(cli, tmp_path, regression_run):
    pd.DataFrame({"area": [100.0, np.inf], "rooms": [3.0, 2.0], "city": ["east", "west"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    err = _fails(cli, "predict", str(regression_run), "--input", str(tmp_path / "new.csv"))
    assert f"{tmp_path / 'new.csv'}: column 'area' line 3: inf is not a finite number (1 such rows)" in err
    pd.DataFrame({"area": [100.0, np.nan], "rooms": [3.0, 2.0], "city": ["east", "west"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, _, err = cli("predict", str(regression_run), "--input", str(tmp_path / "new.csv"))
    assert code == 0, err  # NaN is a missing value, imputed with the training median
    assert pd.read_csv("new_predictions.csv")["prediction"].notna().all()


def test_predict_refuses_images_with_nan_pixels(cli, tmp_path, images_run):
    x = np.full((3, 8, 8), np.nan, dtype="float32")
    np.save(tmp_path / "x.npy", x)
    err = _fails(cli, "predict", str(images_run), "--input", str(tmp_path / "x.npy"))
    assert "x.npy: image 0 (counting from 0) holds NaN or infinite pixels (3 such images of 3)" in err


@pytest.mark.parametrize("bad", ["NaN", "1e999", "-Infinity"])
def test_preprocessing_state_with_non_finite_numbers_is_refused(cli, tmp_path, regression_run, bad):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    text = (run / "preprocessing.json").read_text()
    state = json.loads(text)
    state["numeric"]["scale_"][0] = "@@"
    (run / "preprocessing.json").write_text(json.dumps(state).replace('"@@"', bad))
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    err = _fails(cli, "predict", str(run), "--input", str(tmp_path / "new.csv"))
    assert (
        "preprocessing.json: not a valid dlcli preprocessing state (numeric.scale_.0: Input should be a finite number"
        in err
    )


def test_a_model_with_nan_weights_never_gives_a_silent_nan(cli, tmp_path, regression_run):
    import keras

    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    model = keras.saving.load_model(run / "model.keras")
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    model.save(run / "model.keras")
    unsealed(run)  # else refused as a changed file (test_hostile_export.py): this is the check behind
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    err = _fails(cli, "predict", str(run), "--input", str(tmp_path / "new.csv"))
    assert "the model's output is NaN or infinite for 1 of 1 inputs (the first is input 1)" in err
    assert not (tmp_path / "new_predictions.csv").exists()


# ---- 2. offline downloads ---------------------------------------------------------------------------
def test_offline_keras_dataset_is_one_clear_block(tmp_path):
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("dataset: iris", "dataset: mnist").replace("units: 3,", "units: 10,")
    )
    env = {"KERAS_HOME": str(tmp_path / "keras"), "DLCLI_DATA_DIR": ""}
    proc = dlcli("train", "c.yaml", "-q", cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert (
        "error: dataset mnist: not found offline and the download failed (Exception: URL fetch failure"
        in proc.stderr
    )
    assert "Tried $DLCLI_DATA_DIR (not set), Keras' cache" in proc.stderr
    assert "to work offline, put the file in a folder and set DLCLI_DATA_DIR to that folder" in proc.stderr
    assert "numpy.savez('mnist.npz', x_train=a, y_train=b, x_test=c, y_test=d)" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_data_dir_that_does_not_exist_is_an_error(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path / "nope"))
    (tmp_path / "c.yaml").write_text(GOOD.replace("dataset: iris", "dataset: mnist"))
    err = _fails(cli, "train", str(tmp_path / "c.yaml"), "-q")
    assert f"error: DLCLI_DATA_DIR={tmp_path / 'nope'}: no such folder" in err


# ---- 3. a run is loaded without re-validating it against this machine -------------------------------
def test_a_tracked_run_predicts_where_mlflow_is_missing(cli, tmp_path, regression_run, monkeypatch):
    from dlcli.config import checks

    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    config = (run / "config.yaml").read_text().replace("tracking:\n  mlflow: null", "tracking:\n  mlflow: {}")
    (run / "config.yaml").write_text(config)
    run_json = read_json(run / "run.json")
    run_json.pop("config_sha256")  # as a run made elsewhere with mlflow: nothing edited here
    (run / "run.json").write_text(json.dumps(run_json))
    monkeypatch.setattr(checks, "mlflow_installed", lambda: False)
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, _, err = cli("predict", str(run), "--input", str(tmp_path / "new.csv"))
    assert code == 0, err
    code, _, err = cli("evaluate", str(run))
    assert code == 0, err


def test_keys_of_another_version_are_ignored_with_a_warning(cli, tmp_path, regression_run):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "future_key: 1\n")
    run_json = read_json(run / "run.json")
    run_json.pop("config_sha256")
    (run / "run.json").write_text(json.dumps(run_json))
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, _, err = cli("predict", str(run), "--input", str(tmp_path / "new.csv"))
    assert code == 0, err
    assert "config.yaml: keys this dlcli does not know were ignored (future_key)" in err


def test_an_edited_config_is_reported_and_evaluate_refuses_it(cli, tmp_path, regression_run):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 4", "epochs: 400"))
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, _, err = cli("predict", str(run), "--input", str(tmp_path / "new.csv"))
    assert code == 0, err
    assert "config.yaml was edited after training (its sha256 differs from the one in run.json)" in err
    err = _fails(cli, "evaluate", str(run))
    assert "Restore it, or pass the data to evaluate on with --data" in err


# ---- 4. mode auto follows Keras ---------------------------------------------------------------------
def test_best_checkpoint_maximizes_what_keras_maximizes(tmp_path):
    import keras

    from dlcli.training.direction import monitor_direction

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=["cosine_similarity", "mae"])
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, validation_split=0.5)
    logs = {"val_cosine_similarity": 0.5, "val_mae": 1.0, "val_loss": 1.0}
    assert monitor_direction(model, "val_cosine_similarity", "auto", logs) == "max"
    assert monitor_direction(model, "val_mae", "auto", logs) == "min"
    assert monitor_direction(model, "val_loss", "auto", logs) == "min"
    assert monitor_direction(model, "val_mae", "max", logs) == "max"


def test_a_trained_run_records_the_direction_keras_chose(regression_run):
    assert read_json(regression_run / "checkpoints" / "resume.json")["direction"] == "min"


# ---- 5. crafted or broken model archives ------------------------------------------------------------
def test_truncated_model_archive(cli, tmp_path, regression_run):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    err = _fails(cli, "evaluate", str(run))
    assert "model.keras: truncated or not a Keras archive (File is not a zip file)" in err


def test_archive_with_a_huge_config_is_refused_before_reading(cli, tmp_path, regression_run):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    with zipfile.ZipFile(run / "model.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(40):  # 40 MB of spaces: a 40 kB file
                member.write(chunk)
    assert (run / "model.keras").stat().st_size < 1_000_000
    err = _fails(cli, "evaluate", str(run))
    assert (
        "model.keras: its config.json is 41,943,040 bytes once unpacked (a Keras model's is under 33,554,432)"
        in err
    )


# ---- 6. config input that used to be an internal error ----------------------------------------------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "model.layers.7.Dense.units=3",
            "error: -o model.layers.7.Dense.units=3: model.layers.7: index out of range (the list has 2 item(s), numbered 0 to 1)",
        ),
        (
            "model.nope.x=1",
            "error: -o: model.nope: unknown key 'nope' (allowed: input_shape, backbone, branches, combine, layers, heads)",
        ),
        (
            "optimizer.learning_rate=.inf",
            "error: -o: optimizer.learning_rate: expected a finite number (got inf, which YAML reads from .inf, .nan or 1e999)",
        ),
    ],
)
def test_bad_overrides(cli, tmp_path, override, expected):
    (tmp_path / "c.yaml").write_text(GOOD)
    assert expected in _fails(cli, "validate", str(tmp_path / "c.yaml"), "-o", override)


def test_deeply_nested_yaml(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    err = _fails(cli, "validate", str(tmp_path / "c.yaml"))
    assert "c.yaml:1:67: nested more than 64 levels deep" in err


def test_huge_flow_mapping_is_refused_by_count_not_called_an_alias_bomb(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("{" + ", ".join(f"k{i}: 1" for i in range(30000)) + "}\n")
    err = _fails(cli, "validate", str(tmp_path / "c.yaml"))
    assert "more than 20000 values; a config needs a few dozen" in err and "alias" not in err


def test_huge_file_is_refused_by_size(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("{" + ", ".join(f"k{i}: 1" for i in range(400000)) + "}\n")
    err = _fails(cli, "validate", str(tmp_path / "c.yaml"))
    assert "characters; a config is a few kilobytes (expected under 500,000)" in err


# ---- 7. duplicate column names ----------------------------------------------------------------------
def test_duplicate_column_names_are_refused(cli, tmp_path):
    (tmp_path / "data.csv").write_text("area,x1,x1,price\n1,2,3,4\n5,6,7,8\n")
    (tmp_path / "c.yaml").write_text(REGRESSION)
    err = _fails(cli, "train", str(tmp_path / "c.yaml"), "-q")
    assert (
        f"{tmp_path / 'data.csv'}:1: the column name(s) 'x1' appear more than once; dlcli never renames columns"
        in err
    )


# ---- 8. predict never overwrites its input ----------------------------------------------------------
def test_predict_output_equal_to_input_is_refused(cli, tmp_path, regression_run):
    pd.DataFrame({"area": [100.0], "rooms": [3.0], "city": ["east"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    before = (tmp_path / "new.csv").read_bytes()
    err = _fails(cli, "predict", str(regression_run), "--input", "new.csv", "--output", "./new.csv")
    assert (
        "--output new.csv: that is the --input file; writing predictions there would replace your data" in err
    )
    assert (tmp_path / "new.csv").read_bytes() == before


# ---- 9. the command line ----------------------------------------------------------------------------
def test_version_debug_anywhere_and_plain_flags(tmp_path):
    from importlib import metadata

    assert dlcli("--version", cwd=tmp_path).stdout == f"dlcli {metadata.version('dlcli')}\n"
    proc = dlcli("validate", "missing.yaml", "--debug", cwd=tmp_path)
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr  # --debug after the command works
    helped = dlcli("evaluate", "--help", cwd=tmp_path, env={"COLUMNS": "100"}).stdout
    assert "<bool>" not in helped and "--json" in helped
    assert "--install-completion" in dlcli("--help", cwd=tmp_path).stdout


def test_runs_without_a_runs_folder_names_a_real_option(cli):
    err = _fails(cli, "runs")
    assert "error: runs: no such folder; `dlcli train` keeps runs under runs/ in the folder it ran in" in err
    assert "give that folder, e.g. dlcli runs DIR" in err


def test_doctor_without_a_gpu_driver_does_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    from dlcli.cli.doctor import nvidia_present

    if nvidia_present():
        pytest.skip("this machine has an NVIDIA driver: doctor imports TensorFlow to list its GPUs")
    code = "import sys; from dlcli.cli import doctor; r = doctor.report(); print('tensorflow' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert proc.stdout.strip() == "False"
