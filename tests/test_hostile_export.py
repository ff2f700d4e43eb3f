"""Issue 32: `dlcli export` (and the files a run keeps) under careless and hostile input. A refused
export leaves every file it was pointed at byte-identical; a run or export whose files changed since
dlcli wrote them is refused, naming the file, instead of answering with the wrong labels."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, fails, read_json

pytest.importorskip("onnxruntime", reason="the export extra is not installed")


def _digests(path: Path) -> dict[str, str]:
    """Every file under `path` (or the file itself) by relative path → sha256."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def run(regression_run, tmp_path) -> Path:
    """A copy of the shared regression run, free to be attacked."""
    copy = tmp_path / "victim" / "run"
    shutil.copytree(regression_run, copy)
    return copy


def _refused(cli, run: Path, victim: Path, *args: str) -> str:
    before = _digests(victim)
    err = fails(cli, "export", str(run), *args)
    assert _digests(victim) == before, "a refused export changed the files it was pointed at"
    return err


# ---- item 1: files lost -------------------------------------------------------------------------------
def test_the_run_directory_itself_is_never_an_output(cli, run):
    err = _refused(cli, run, run, "--format", "saved_model", "--output", str(run))
    assert (
        f"--output {run}: that is the run directory {run}, whose files (model.keras, run.json, checkpoints, "
        f"...) dlcli never writes over; write SavedModels (folders) to {run / 'export'}/" in err
    )


@pytest.mark.parametrize("name", ["model.onnx", "checkpoints/best.onnx", "export.onnx"])
def test_no_output_inside_a_run_but_its_export_folder(cli, run, name):
    err = _refused(cli, run, run, "--format", "onnx", "--output", str(run / name))
    assert f"--output {run / name}: that is inside the run directory {run}" in err
    assert f"write ONNX models to {run / 'export'}/" in err


def test_a_run_reached_through_a_symbolic_link_is_still_the_run(cli, run, tmp_path):
    (tmp_path / "alias").symlink_to(run)
    err = _refused(cli, run, run, "--format", "saved_model", "--output", str(tmp_path / "alias"))
    assert f"--output {tmp_path / 'alias'}: that is the run directory {run}" in err


@pytest.mark.parametrize(
    ("fmt", "name", "expected"),
    [
        (
            "onnx",
            "model.keras",
            "ONNX models are written to names ending .onnx, not '.keras'; name it model.onnx",
        ),
        (
            "onnx",
            "table.csv",
            "ONNX models are written to names ending .onnx, not '.csv'; name it table.onnx",
        ),
        ("onnx", "model.tflite", "ONNX models are written to names ending .onnx, not '.tflite'"),
        ("tflite", "model.onnx", "TFLite models are written to names ending .tflite, not '.onnx'"),
        ("tflite", "model", "TFLite models are written to names ending .tflite, not no suffix"),
        ("saved_model", "model.onnx", "a SavedModel is a folder, and '.onnx' names a file of another kind"),
    ],
)
def test_a_suffix_of_another_format_is_refused(cli, run, tmp_path, fmt, name, expected):
    victim = tmp_path / name
    victim.write_text("the user's own file\n")
    err = _refused(cli, run, victim, "--format", fmt, "--output", str(victim))
    assert expected in err


def test_a_folder_of_the_users_files_is_not_replaced(cli, run, tmp_path):
    folder = tmp_path / "somedir"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    err = _refused(cli, run, folder, "--format", "saved_model", "--output", str(folder))
    assert (
        f"--output {folder}: exists and is not one of dlcli's SavedModels (folders); dlcli replaces only "
        "what it wrote itself: remove it yourself, or choose a new name" in err
    )


def test_a_folder_holding_runs_is_not_replaced(cli, run, tmp_path):
    err = _refused(cli, run, run.parent, "--format", "saved_model", "--output", str(run.parent))
    assert f"--output {run.parent}: the folder holds dlcli runs" in err


def test_an_onnx_file_dlcli_did_not_write_is_not_replaced(cli, run, tmp_path):
    victim = tmp_path / "theirs.onnx"
    victim.write_bytes(b"\x08\x07someone else's model")
    err = _refused(cli, run, victim, "--format", "onnx", "--output", str(victim))
    assert f"--output {victim}: exists and is not one of dlcli's ONNX models" in err


def test_an_existing_folder_where_a_file_goes_is_refused(cli, run, tmp_path):
    folder = tmp_path / "m.onnx"
    folder.mkdir()
    err = _refused(cli, run, folder, "--format", "onnx", "--output", str(folder))
    assert f"--output {folder}: that is a folder, and ONNX models are files; name a file inside it" in err


def test_an_impossible_path_is_exit_2_naming_it(cli, run):
    err = fails(cli, "export", str(run), "--format", "onnx", "--output", "/proc/self/x.onnx")
    assert "--output /proc/self/x.onnx: the folder /proc/self: cannot be written" in err


def test_an_earlier_export_is_replaced_whole_and_sealed(cli, run):
    for _ in range(2):  # the second replaces the first: the path the user named, of the same kind
        code, out, err = cli("export", str(run), "--format", "onnx")
        assert code == 0, err
    meta = read_json(run / "export" / "model.onnx.json")
    sealed = read_json(run / "run.json")["artifacts"]
    assert (
        sealed["export/model.onnx"]
        == hashlib.sha256((run / "export" / "model.onnx").read_bytes()).hexdigest()
    )
    assert (
        sealed["export/model.onnx.json"]
        == hashlib.sha256((run / "export" / "model.onnx.json").read_bytes()).hexdigest()
    )
    assert meta["artifact_sha256"] == sealed["export/model.onnx"]
    assert not [p for p in (run / "export").iterdir() if p.name.startswith(".")]  # no temporary left


# ---- item 6 and 11: files changed since dlcli wrote them ----------------------------------------------
def _input(tmp_path: Path) -> Path:
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(10)
    frame.to_csv(tmp_path / "in.csv", index=False)
    return tmp_path / "in.csv"


def test_an_edited_preprocessing_json_is_refused_by_every_command(cli, run, tmp_path):
    path = run / "preprocessing.json"
    state = json.loads(path.read_text())
    state["target"]["scale_"] = state["target"]["scale_"] * 2  # every prediction would double
    path.write_text(json.dumps(state))
    expected = f"{path}: changed since dlcli wrote it (sha256 "
    for args in (
        ("predict", str(run), "--input", str(_input(tmp_path))),
        ("evaluate", str(run)),
        ("export", str(run), "--format", "onnx"),
    ):
        err = fails(cli, *args)
        assert expected in err and "using it would give wrong answers" in err, args


def test_a_model_keras_from_another_run_is_refused(cli, run, binary_run, tmp_path):
    shutil.copyfile(binary_run / "model.keras", run / "model.keras")
    err = fails(cli, "export", str(run), "--format", "onnx", "--output", str(tmp_path / "m.onnx"))
    assert f"{run / 'model.keras'}: changed since dlcli wrote it" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture
def exported_binary(binary_run, tmp_path, cli) -> Path:
    copy = tmp_path / "exported" / "run"
    shutil.copytree(binary_run, copy)
    code, _, err = cli("export", str(copy), "--format", "onnx")
    assert code == 0, err
    return copy


def _binary_input(tmp_path: Path) -> Path:
    frame = pd.read_csv(ROOT / "data" / "tiny_binary.csv").head(8)
    frame.to_csv(tmp_path / "b.csv", index=False)
    return tmp_path / "b.csv"


def test_edited_export_classes_are_refused_not_inverted(cli, exported_binary, tmp_path):
    meta_path = exported_binary / "export" / "model.onnx.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = meta["classes"][::-1]
    meta_path.write_text(json.dumps(meta, indent=2))
    err = fails(cli, "predict", str(exported_binary), "--input", str(_binary_input(tmp_path)))
    assert f"{meta_path}: changed since dlcli wrote it" in err


@pytest.mark.parametrize("damage", ["swapped", "truncated"])
def test_a_swapped_or_truncated_onnx_is_refused(cli, exported_binary, regression_run, tmp_path, damage):
    artifact = exported_binary / "export" / "model.onnx"
    if damage == "truncated":
        artifact.write_bytes(artifact.read_bytes()[:500])
    else:
        other = tmp_path / "other.onnx"
        code, _, err = cli("export", str(regression_run), "--format", "onnx", "--output", str(other))
        assert code == 0, err
        shutil.copyfile(other, artifact)
    err = fails(
        cli, "predict", str(exported_binary), "--input", str(_binary_input(tmp_path)), "--runtime", "onnx"
    )
    assert f"{artifact}: changed since dlcli wrote it" in err
    assert "InvalidProtobuf" not in err and "Required inputs" not in err


def test_a_swapped_artifact_outside_a_run_is_known_by_its_metadata(cli, regression_run, tmp_path):
    from dlcli.artifacts import runtime

    code, _, err = cli(
        "export", str(regression_run), "--format", "onnx", "--output", str(tmp_path / "a.onnx")
    )
    assert code == 0, err
    (tmp_path / "a.onnx").write_bytes((tmp_path / "a.onnx").read_bytes() + b"\0")
    with pytest.raises(Exception, match="not the file this metadata") as caught:
        runtime.read_metadata(tmp_path / "a.onnx")
    assert type(caught.value).__name__ == "RunError"


# ---- item 5: int8 for real ------------------------------------------------------------------------------
def test_int8_tflite_of_a_table_model_holds_int8_tensors(cli, regression_run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "q.tflite"
    code, _, err = cli(
        "export", str(regression_run), "-f", "tflite", "--quantize", "int8", "--output", str(out)
    )
    assert code == 0, err
    meta = read_json(Path(f"{out}.json"))
    int8 = [
        d for d in Interpreter(model_path=str(out)).get_tensor_details() if np.dtype(d["dtype"]) == np.int8
    ]
    assert meta["quantize"] == "int8" and meta["int8_tensors"] == len(int8) > 0
    assert meta["checked"]["artifact_metric"] >= meta["checked"]["dlcli_metric"] - 0.01


# ---- item 14, 15: arguments and names --------------------------------------------------------------------
def test_a_negative_max_drop_is_refused(cli, regression_run):
    code, out, err = cli(
        "export", str(regression_run), "-f", "onnx", "--quantize", "int8", "--max-drop", "-1"
    )
    assert code == 2
    assert "Invalid value for '--max-drop': Input should be greater than or equal to 0" in " ".join(
        err.split()
    )


def test_a_differenced_series_names_the_right_key(cli, tmp_path):
    from conftest import ci_config

    (tmp_path / "s.yaml").write_text(ci_config("series"))
    code, _, err = cli(
        "train", "s.yaml", "-q", "-o", "preprocessing.series.difference=1", "-o", "train.epochs=1"
    )
    assert code == 0, err
    (run,) = (tmp_path / "runs").glob("*/2*")
    err = fails(cli, "export", str(run), "--format", "onnx")
    assert "the series is differenced (preprocessing.series.difference)" in err


# ---- item 17: any column name exports ---------------------------------------------------------------------
NAMES = ["Is", "in", "class", "my col", "a.b", "1st", "température", "None"]


def test_any_column_name_exports_and_predicts_alike(cli, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=120) for name in NAMES})
    frame["kind"] = rng.choice(["x", "y"], 120)
    frame["y"] = frame["Is"] * 2 + frame["température"] + rng.normal(0, 0.1, 120)
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "name: names\ndata: {path: d.csv, target: y}\nmodel: {layers: [{Dense: {units: 8}}, {Dense: {units: 1}}]}\n"
        "loss: mse\ntrain: {epochs: 2, plots: false, tensorboard: false}\n"
    )
    code, _, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    (run,) = (tmp_path / "runs" / "names").glob("2*")
    frame.drop(columns=["y"]).head(15).to_csv(tmp_path / "in.csv", index=False)
    assert (
        cli("predict", str(run), "--input", "in.csv", "--output", "tf.csv", "--runtime", "tensorflow")[0] == 0
    )
    for fmt in ("onnx", "tflite", "saved_model"):
        code, out, err = cli("export", str(run), "--format", fmt)
        assert code == 0, f"{fmt}: {err}"
    names = [i["name"] for i in read_json(run / "export" / "model.onnx.json")["inputs"]]
    assert names[:4] == ["is_", "in_", "class_", "my_col"] and "x_1st" in names
    for fmt in ("onnx", "tflite"):
        code, _, err = cli(
            "predict", str(run), "--input", "in.csv", "--output", f"{fmt}.csv", "--runtime", fmt
        )
        assert code == 0, err
        np.testing.assert_allclose(
            pd.read_csv(tmp_path / f"{fmt}.csv")["prediction"],
            pd.read_csv(tmp_path / "tf.csv")["prediction"],
            rtol=1e-4,
        )
