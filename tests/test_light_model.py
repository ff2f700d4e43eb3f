"""The light model `dlcli train` leaves in a run (train.light_model, dlcli/export/light.py): written and
checked at the end of training, taken by predict without TensorFlow; where there is none, the run and
predict say why. The suite's other runs have it off ($DLCLI_LIGHT_MODEL, tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, ROOT, fails, latest_run

pytest.importorskip("onnxruntime", reason="the export extra is not installed")

#: predict in a process of its own, saying which heavy libraries it imported
PROBE = (
    "import sys; from dlcli.cli.cli import main\n"
    "try:\n    main()\nfinally:\n"
    "    print('imported:', sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules), "
    "file=sys.stderr)\n"
)


def _predict_alone(run, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, "predict", str(run), "--input", "in.csv", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )  # fmt: skip


def test_a_trained_run_holds_a_checked_onnx_model_that_predict_takes_without_tensorflow(tmp_path, cli):
    shutil.copy(CONFIGS / "ci" / "regression.yaml", tmp_path / "regression.yaml")
    (tmp_path / "data").mkdir()
    config = (tmp_path / "regression.yaml").read_text().replace("../../data/", str(ROOT / "data") + "/")
    (tmp_path / "regression.yaml").write_text(config)
    code, _, err = cli(
        "train", "regression.yaml", "-q", "-o", "train.light_model=auto", "-o", "train.plots=false"
    )
    assert code == 0, err
    run = latest_run(tmp_path, "ci-regression")
    entry = json.loads((run / "run.json").read_text())["light_model"]
    assert entry["format"] == "onnx" and entry["path"] == "export/model.onnx" and entry["seconds"] > 0
    assert (
        f"note: light model export/model.onnx (onnx, checked on the test rows, {entry['seconds']:.1f} s): "
        "predict and serve use it without TensorFlow" in err
    )
    meta = json.loads((run / "export" / "model.onnx.json").read_text())
    assert (
        meta["checked"]["split"] == "test" and meta["checked"]["max_difference"] <= 1e-5
    )  # as export checks

    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(30)
    frame.loc[2, "area"] = np.nan
    frame.to_csv(tmp_path / "in.csv", index=False)
    proc = _predict_alone(run, tmp_path, "--output", "light.csv")
    assert proc.returncode == 0, proc.stderr
    assert "imported: []" in proc.stderr  # neither TensorFlow nor scikit-learn
    assert "wrote 30 predictions (with onnx, model.onnx, without TensorFlow) → light.csv" in proc.stdout
    assert (
        cli("predict", str(run), "--input", "in.csv", "--output", "tf.csv", "--runtime", "tensorflow")[0] == 0
    )
    light, through_tf = pd.read_csv(tmp_path / "light.csv"), pd.read_csv(tmp_path / "tf.csv")
    np.testing.assert_allclose(light["prediction"], through_tf["prediction"], rtol=1e-5)

    # resumed: model.keras changes, and the light model is written again for it (not passed over as stale)
    before = meta["model_sha256"]
    code, _, err = cli("train", "--resume", str(run), "-q", "-o", "train.epochs=6")
    assert code == 0, err
    meta = json.loads((run / "export" / "model.onnx.json").read_text())
    assert meta["model_sha256"] != before and "note: light model export/model.onnx" in err
    code, out, _ = cli("predict", str(run), "--input", "in.csv", "--output", "again.csv")
    assert code == 0 and "(with onnx, model.onnx, without TensorFlow)" in out


def test_without_a_light_model_predict_goes_through_tensorflow_and_says_why(
    text_run, regression_run, tmp_path, cli
):
    from dlcli.artifacts.saved import load_config
    from dlcli.export import light

    frame = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(5)
    frame.to_csv(tmp_path / "in.csv", index=False)
    # the suite's runs: off on this machine ($DLCLI_LIGHT_MODEL), said by train and by predict
    assert "note: no light model ($DLCLI_LIGHT_MODEL is off): predict and serve use TensorFlow" in (
        (regression_run.parents[2] / "train.stderr").read_text()
    )
    code, out, _ = cli("predict", str(regression_run), "--input", "in.csv", "--output", "p.csv")
    assert code == 0
    assert "wrote 5 predictions (with TensorFlow; no light model: $DLCLI_LIGHT_MODEL is off) → p.csv" in out

    # off in the config
    run = tmp_path / "regression"
    shutil.copytree(regression_run, run)
    config = load_config(run).model_copy(deep=True)
    config.train.light_model = "off"
    assert light.write(run, config, light.choice(config))["reason"] == "train.light_model is off"

    # a model no light runtime can hold: text is vectorized inside it
    run = tmp_path / "text"
    shutil.copytree(text_run, run)
    config = load_config(run).model_copy(deep=True)
    config.train.light_model = "auto"
    entry = light.write(run, config, light.choice(config))
    assert entry == {
        "format": None,
        "reason": "text columns (message) are vectorized inside the model with regular expressions, "
        "splitting and n-grams, which onnx or tflite has no operation for",
        "seconds": entry["seconds"],
    }
    assert not (run / "export").exists()
    pd.DataFrame({"message": ["win a free prize now", "see you at lunch"]}).to_csv(
        tmp_path / "in.csv", index=False
    )
    code, out, _ = cli("predict", str(run), "--input", "in.csv", "--output", "t.csv")
    assert code == 0
    assert f"(with TensorFlow; no light model: {entry['reason']})" in " ".join(out.split())


def test_a_bad_machine_default_is_refused_before_training(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DLCLI_LIGHT_MODEL", "fast")
    err = fails(cli, "train", str(CONFIGS / "ci" / "iris.yaml"), "-q")
    assert (
        "error: DLCLI_LIGHT_MODEL='fast': expected one of auto, onnx, tflite, off; unset it for auto" in err
    )
    assert not (tmp_path / "runs").exists()


def test_off_and_on_unquoted_in_yaml_are_read_as_the_words(tmp_path):
    from dlcli.config.config import load_config

    text = (CONFIGS / "iris.yaml").read_text()
    for written, read in (("off", "off"), ("on", "auto"), ("onnx", "onnx")):
        path = tmp_path / f"{written}.yaml"
        path.write_text(text.replace("train:\n", f"train:\n  light_model: {written}\n", 1))
        assert load_config(path).train.light_model == read
