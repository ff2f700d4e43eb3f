"""`dlcli export`: each run's raw-input model in SavedModel, TFLite and ONNX, run by its own runtime in
a fresh process that cannot import dlcli or pandas, against `dlcli predict`'s own predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, fails, read_json

FORMATS = ("saved_model", "tflite", "onnx")

#: Run in a fresh interpreter: dlcli and pandas are made unimportable, so the artifact is shown to
#: need only its runtime (and NumPy). Reads a JSON list of jobs, writes each one's outputs as JSON.
FRESH = r"""
import json, sys
sys.modules["dlcli"] = None   # `import dlcli` now raises ImportError
sys.modules["pandas"] = None  # so does pandas (TensorFlow's SavedModel loader does without it)
import numpy as np

def arrays(job):
    out = {}
    for spec in job["inputs_spec"]:
        values = np.array(job["inputs"][spec["name"]], dtype=object)
        if spec["dtype"] != "string":  # None (JSON null) is a missing number: NaN
            values = np.where(np.equal(values, None), np.nan, values).astype(spec["dtype"])
        out[spec["name"]] = values
    return out

def run(job, x):
    fmt, path = job["format"], job["artifact"]
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, x)))
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter(model_path=path)
        runner = interpreter.get_signature_runner("serving_default")
        batch = interpreter.get_input_details()[0]["shape_signature"][0]
        fed = {k: (v.astype(bytes) if v.dtype == object else v) for k, v in x.items()}
        if batch == 1:  # a recurrent model converts with a static batch of one row
            n = len(next(iter(fed.values())))
            parts = [runner(**{k: v[i : i + 1] for k, v in fed.items()}) for i in range(n)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return runner(**fed)
    import tensorflow as tf
    serve = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in serve(**{k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in x.items()}).items()}

for job in json.load(open(sys.argv[1])):
    got = run(job, arrays(job))
    out = {"prediction": [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                          for v in got["prediction"].reshape(-1)]}
    if "probabilities" in got:
        out["probabilities"] = got["probabilities"].tolist()
    json.dump(out, open(job["out"], "w"))
print("imported:", sorted(m for m in ("dlcli", "pandas") if sys.modules.get(m) is not None))
"""


def _raw_inputs(name: str, meta: dict, table: pd.DataFrame | None) -> dict:
    """The artifact's raw inputs, made here from the data (not by dlcli): columns as they are read,
    a series' windows, or pixels."""
    if name == "images":
        return {"pixels": np.load(ROOT / "data" / "tiny_digits.npz")["x_test"].tolist()}
    out = {}
    for spec in meta["inputs"]:
        values = table[spec["column"]]
        if spec["dtype"] == "string":
            column = [("" if pd.isna(v) else str(v)) for v in values]
        else:
            column = [None if pd.isna(v) else float(v) for v in values]
        if meta["kind"] == "timeseries":
            length = meta["window"]["length"]
            column = [column[i : i + length] for i in range(len(column) - length + 1)]
        out[spec["name"]] = column
    return out


INPUTS = {"regression": ("tiny_regression.csv", ","), "series": ("tiny_series.csv", ",")}


def _table(name: str, tmp_path: Path) -> tuple[Path, pd.DataFrame | None]:
    """The input file for `dlcli predict` and the table the raw inputs are made from."""
    if name == "iris":
        from sklearn.datasets import load_iris

        frame = load_iris(as_frame=True).frame.drop(columns=["target"]).head(30)
    elif name == "images":
        return ROOT / "data" / "tiny_digits.npz", None
    elif name == "text":  # the headerless TSV as the run was trained on it: predict reads it so
        lines = (ROOT / "data" / "tiny_text.tsv").read_text().splitlines()[:40]
        path = tmp_path / "text_input.tsv"
        path.write_text("\n".join(lines) + "\n")
        return path, pd.DataFrame([line.split("\t", 1) for line in lines], columns=["label", "message"])
    else:
        file, sep = INPUTS[name]
        frame = pd.read_csv(ROOT / "data" / file, sep=sep).head(40)
    path = tmp_path / f"{name}_input.csv"
    frame.to_csv(path, index=False)
    return path, frame


RUNS = ["iris", "regression", "series", "images", "text"]


def _export_all(request, name: str, tmp_path: Path, cli) -> tuple[list[dict], pd.DataFrame]:
    """Every format of one shared run exported (or refused), as jobs for the fresh process, and
    `dlcli predict`'s own table for the same rows."""
    run = request.getfixturevalue(f"{name}_run")
    folder = tmp_path / name
    folder.mkdir()
    input_path, table = _table(name, folder)
    args = ("predict", str(run), "--input", str(input_path), "--output", str(folder / "ref.csv"))
    code, out, err = cli(*args, "--runtime", "tensorflow")
    assert code == 0, err
    reference = pd.read_csv(folder / "ref.csv")
    if name == "series":  # one forecast per window: the first length-1 rows have none
        reference = reference.dropna(subset=["prediction"]).reset_index(drop=True)
    jobs = []
    for fmt in FORMATS:
        artifact = folder / {"saved_model": "sm", "tflite": "m.tflite", "onnx": "m.onnx"}[fmt]
        code, out, err = cli("export", str(run), "--format", fmt, "--output", str(artifact))
        if name == "text" and fmt != "saved_model":
            assert code == 2, out + err
            assert (
                f"--format {fmt}: text columns (message) are vectorized inside the model with regular "
                f"expressions, splitting and n-grams, which {fmt} has no operation for; --format "
                "saved_model holds them (this run exports as: saved_model)" in " ".join(err.split())
            )
            continue
        assert code == 0, err
        assert f"in {fmt}: largest difference from dlcli predict" in out and f"wrote {artifact}" in out
        meta = json.loads(
            (artifact / "dlcli.json" if fmt == "saved_model" else Path(f"{artifact}.json")).read_text()
        )
        assert meta["checked"]["max_difference"] <= 1e-5
        assert meta["checked"]["artifact_metric"] == pytest.approx(meta["checked"]["dlcli_metric"], abs=1e-6)
        jobs.append(
            {
                "run": name,
                "format": fmt,
                "artifact": str(artifact),
                "inputs": _raw_inputs(name, meta, table),
                "inputs_spec": meta["inputs"],
                "out": str(folder / f"{fmt}.json"),
            }
        )
    return jobs, reference


def test_exports_take_raw_inputs_in_their_own_runtime(request, tmp_path, cli):
    """iris, a table with categories and missing values, a series' windows, pixels and text: each
    format holds them (text: SavedModel only, the others refuse), and one fresh process that cannot
    import dlcli or pandas runs every artifact on raw inputs, giving dlcli predict's predictions."""
    jobs, references = [], {}
    for name in RUNS:
        more, references[name] = _export_all(request, name, tmp_path, cli)
        jobs += more
    assert len(jobs) == 13
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "fresh.py").write_text(FRESH)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "fresh.py"), str(tmp_path / "jobs.json")],
        capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported: []" in proc.stdout
    for job in jobs:
        got, reference, where = (
            json.loads(Path(job["out"]).read_text()),
            references[job["run"]],
            job["artifact"],
        )
        assert len(got["prediction"]) == len(reference), where
        if "probabilities" in got:
            assert [str(v) for v in got["prediction"]] == reference["prediction"].astype(str).tolist(), where
            columns = [c for c in reference.columns if c.startswith("probability_")]
            np.testing.assert_allclose(
                got["probabilities"], reference[columns].to_numpy(), atol=1e-5, err_msg=where
            )
        else:
            np.testing.assert_allclose(got["prediction"], reference["prediction"], rtol=1e-5, err_msg=where)


def test_predict_runs_an_exported_model_without_tensorflow(regression_run, tmp_path, cli):
    """With model.onnx or model.tflite in RUN/export, predict uses it (auto), never importing TensorFlow,
    and writes what the TensorFlow path writes."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(25)
    frame.loc[3, "area"] = np.nan  # imputed inside the graph, as dlcli predict imputes it
    frame.loc[4, "city"] = np.nan
    frame.loc[5, "city"] = "atlantis"  # never seen in training: all zeros, as dlcli encodes it
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert cli("predict", str(run), "--input", "in.csv", "--output", "tf.csv")[0] == 0
    for fmt in ("tflite", "onnx"):
        assert cli("export", str(run), "--format", fmt)[0] == 0
        assert (run / "export" / f"model.{fmt}").is_file() and (
            run / "export" / f"model.{fmt}.json"
        ).is_file()
    script = (
        "import sys; from dlcli.cli.cli import main\n"
        "try:\n    main()\nfinally:\n"
        "    print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    for fmt, args in (("onnx", []), ("tflite", ["--runtime", "tflite"])):
        proc = subprocess.run(
            [sys.executable, "-c", script, "predict", str(run), "--input", "in.csv", "--output", f"{fmt}.csv", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "tensorflow imported: False" in proc.stderr
        assert (
            f"wrote 25 predictions (with {fmt}, model.{fmt}, without TensorFlow) → {fmt}.csv" in proc.stdout
        )
        light, tf_table = pd.read_csv(tmp_path / f"{fmt}.csv"), pd.read_csv(tmp_path / "tf.csv")
        pd.testing.assert_frame_equal(light.drop(columns="prediction"), tf_table.drop(columns="prediction"))
        np.testing.assert_allclose(light["prediction"], tf_table["prediction"], rtol=1e-5)
    # a bad value is the same clear error on the light path
    frame["rooms"] = frame["rooms"].astype(object)
    frame.loc[7, "rooms"] = "many"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    err = fails(cli, "predict", str(run), "--input", "bad.csv")
    assert (
        "bad.csv: column 'rooms' line 9: 'many' is not a number (the model was trained on numbers in this column)"
        in err
    )
    # resumed since: the export is stale; auto passes it over, asking for it is refused
    code, _, err = cli("train", "--resume", str(run), "-q", "-o", "train.epochs=6")
    assert code == 0, err
    code, out, err = cli("predict", str(run), "--input", "in.csv", "--output", "after.csv")
    passed_over = (
        "(with TensorFlow; no light model: $DLCLI_LIGHT_MODEL is off)"  # the suite's machine default
    )
    assert code == 0 and f"wrote 25 predictions {passed_over} → after.csv" in out, err
    err = fails(cli, "predict", str(run), "--input", "in.csv", "--runtime", "onnx")
    assert f"--runtime onnx: {run / 'export' / 'model.onnx'} was exported before the run's model.keras" in err
    err = fails(cli, "predict", str(regression_run), "--input", str(tmp_path / "in.csv"), "--runtime", "onnx")
    assert (
        f"--runtime onnx: {regression_run / 'export' / 'model.onnx'} does not exist; write it with: dlcli export"
        in err
    )


def test_quantized_exports_report_their_metric_and_refuse_a_drop(images_run, tmp_path, cli):
    code, out, err = cli(
        "export", str(images_run), "-f", "tflite", "--quantize", "int8", "--output", "q.tflite"
    )
    assert code == 0, err
    meta = read_json(tmp_path / "q.tflite.json")
    assert meta["quantize"] == "int8" and meta["checked"]["metric"] == "accuracy"
    assert abs(meta["checked"]["artifact_metric"] - meta["checked"]["dlcli_metric"]) <= 0.01
    # weights and activations in int8 (calibrated on training rows), with their scales: about half
    assert meta["int8_tensors"] > 0 and (tmp_path / "q.tflite").stat().st_size < 0.6 * _size(
        cli, images_run, tmp_path
    )
    code, out, err = cli(
        "export", str(images_run), "-f", "onnx", "--quantize", "float16", "--output", "h.onnx"
    )
    assert code == 0, err
    half = read_json(tmp_path / "h.onnx.json")["checked"]
    assert half["artifact_metric"] >= half["dlcli_metric"] - 0.01
    # a drop beyond --max-drop (judged on the metrics the check measured) writes nothing
    from dlcli.export import export
    from dlcli.utils.errors import RunError

    checked = {"metric": "accuracy", "dlcli_metric": 0.9, "artifact_metric": 0.85, "max_difference": 0.1}
    with pytest.raises(RunError) as refused:
        export._judge(checked, "int8", 0.01, "onnx")
    assert str(refused.value) == (
        "the int8 onnx model's test accuracy is 0.8500 against 0.9000 unquantized, a drop of more than "
        "0.01 (--max-drop): nothing is written; export without --quantize, or allow more"
    )
    export._judge({**checked, "artifact_metric": 0.895}, "int8", 0.01, "onnx")  # within: no error


def _size(cli, run: Path, tmp_path: Path) -> int:
    assert cli("export", str(run), "-f", "tflite", "--output", str(tmp_path / "f.tflite"))[0] == 0
    return (tmp_path / "f.tflite").stat().st_size


def test_export_refusals(regression_run, tmp_path, cli):
    err = fails(cli, "export", str(regression_run), "--format", "torchscript")
    assert "--format torchscript: expected one of saved_model, tflite, onnx" in err
    err = fails(cli, "export", str(regression_run), "--format", "saved_model", "--quantize", "int8")
    assert (
        "--format saved_model: a SavedModel is written in float32; quantizing is for --format tflite or onnx"
        in err
    )
    err = fails(cli, "export", str(regression_run), "--format", "onnx", "--quantize", "int4")
    assert "--quantize int4: expected float16 or int8" in err


# ---- the functions, called directly ---------------------------------------------------------------
def test_an_exports_check_scores_with_the_metric_tallies(tmp_path):
    from types import SimpleNamespace

    from dlcli.export import export

    classes = SimpleNamespace(task="classification", target_encoder=SimpleNamespace(classes_=[0, 1, 2]))
    assert export.metric(classes, [0, 1, 2, 2], ["0", "1", "2", "0"]) == ("accuracy", 0.75)  # labels as text
    values = SimpleNamespace(task="regression")
    name, r2 = export.metric(values, [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert name == "r2" and r2 == pytest.approx(0.5)
    assert export.default_path(tmp_path, "onnx", "int8") == tmp_path / "export" / "model.int8.onnx"
    assert export.default_path(tmp_path, "saved_model", None) == tmp_path / "export" / "saved_model"
