"""What people look at after training: `dlcli runs`, `dlcli compare`, `dlcli doctor`, MLflow tracking.

(The plots and TensorBoard logs of every CI config are checked in test_end_to_end.py.)
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata

import pytest
from conftest import CONFIGS, read_json

from dlcli.runs import runs
from dlcli.utils import files

REGRESSION = str(CONFIGS / "ci" / "regression.yaml")


def _train(cli, *overrides: str) -> tuple[int, str]:
    code, _, err = cli("train", REGRESSION, "-q", "-o", "train.epochs=2", *overrides)
    return code, err


def _newest(tmp_path):
    return max((tmp_path / "runs" / "ci-regression").glob("2*"), key=lambda p: p.stat().st_mtime)


def _craft(source, target, **changes):
    """A copy of a real run whose run.json says another status (a state hard to stop a run in)."""
    shutil.copytree(source, target)
    (target / ".lock").unlink(missing_ok=True)
    record = read_json(target / "run.json")
    record.update(changes)
    files.write_json(target / "run.json", record)
    return target


def test_runs_and_compare_show_every_state(cli, tmp_path):
    code, err = _train(cli)
    assert code == 0, err
    completed = _newest(tmp_path)
    code, err = _train(cli, "-o", "seed=7", "-o", "train.plots=false")
    assert code == 0, err
    other = _newest(tmp_path)
    assert not (other / "plots").exists() and (completed / "plots" / "curves.png").is_file()
    code, err = _train(cli, "-o", "optimizer.learning_rate=1e6")
    assert code == 1 and "the loss became nan in epoch 1" in err
    failed = _newest(tmp_path)
    parent = completed.parent
    interrupted = _craft(
        completed,
        parent / "20990101-000001",
        status="interrupted",
        started_at="2099-01-01T00:00:01",
        error="SIGINT received",
    )
    running = _craft(
        completed, parent / "20990101-000002", status="running", started_at="2099-01-01T00:00:02"
    )
    killed = _craft(completed, parent / "20990101-000003", status="running", started_at="2099-01-01T00:00:03")
    broken = parent / "20990101-000004"
    broken.mkdir()
    (broken / "run.json").write_text('{"status": "runn')  # cut short by hand: never by dlcli

    with runs.training_lock(running):  # a live process (this one) trains it
        code, out, err = cli("runs", "--json")
        assert code == 0, err
        rows = json.loads(out)
        code, table, err = cli("runs", "runs/ci-regression")
        assert code == 0, err
    assert not (killed / ".lock").exists()  # listing takes no lock and creates no file
    assert [row["id"] for row in rows][:4] == [broken.name, killed.name, running.name, interrupted.name]
    assert {row["id"]: row["status"] for row in rows} == {
        completed.name: "completed",
        other.name: "completed",
        failed.name: "failed",
        interrupted.name: "interrupted",
        running.name: "running",
        killed.name: "killed",
        broken.name: "broken",
    }
    done = next(row for row in rows if row["id"] == completed.name)
    metrics = read_json(completed / "metrics.json")
    assert done["epochs"] == 2 and done["epochs_planned"] == 2
    assert done["best"]["metric"] == "val_loss" and done["best"]["epoch"] in (1, 2)
    assert done["test"] == {"metric": "r2", "value": metrics["test"]["r2"]}
    assert done["duration_s"] > 0
    fail = next(row for row in rows if row["id"] == failed.name)
    assert fail["epochs"] == 0 and fail["test"] is None
    assert "the loss became nan in epoch 1" in fail["error"]
    assert (
        next(row for row in rows if row["id"] == broken.name)["error"] == "run.json is missing or unreadable"
    )
    for word in ("completed", "failed", "interrupted", "running", "killed", "broken", "val_loss", "r2"):
        assert word in table

    code, out, err = cli("compare", str(completed), str(other), str(failed), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["runs"] == [f"ci-regression/{p.name}" for p in (completed, other, failed)]
    assert result["config"] == {
        "optimizer.learning_rate": [0.01, 0.01, 1e6],
        "seed": [42, 7, 42],
        "train.plots": [True, False, True],
    }
    assert result["summary"]["status"] == ["completed", "completed", "failed"]
    assert result["metrics"]["test.r2"][0] == metrics["test"]["r2"]
    assert result["metrics"]["test.r2"][1] == read_json(other / "metrics.json")["test"]["r2"]
    assert result["metrics"]["test.r2"][2] is None
    code, out, err = cli("compare", str(completed), str(other))
    assert code == 0, err
    assert "seed" in out and "train.plots" in out and "test.r2" in out
    code, _, err = cli("compare", str(completed))
    assert code == 2
    assert "compare: give at least two runs" in err


def test_runs_on_a_missing_folder_says_so(cli):
    code, _, err = cli("runs", "nowhere")
    assert code == 2
    assert "nowhere: no such folder; `dlcli train` keeps runs under runs/ in the folder it ran in" in err


def test_doctor_names_the_versions_and_the_data_found(cli, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "mnist.npz").write_bytes(b"x" * 2_000_000)
    monkeypatch.setenv("DLCLI_DATA_DIR", str(mirror))
    code, out, err = cli("doctor", "--json")
    assert code == 0, err
    report = json.loads(out)
    for dist in ("dlcli", "tensorflow", "keras", "numpy"):
        assert report["versions"][dist] == metadata.version(dist)
    assert report["cpu"]["cores"] >= 1
    assert "note" in report["gpus"] or report["gpus"]["visible to tensorflow"] >= 0
    assert report["data"]["DLCLI_DATA_DIR"] == str(mirror)
    assert report["data"]["files in DLCLI_DATA_DIR"] == ["mnist.npz (2.0 MB)"]
    assert report["data"]["dataset: names usable offline"][0] == "mnist"
    code, out, err = cli("doctor")
    assert code == 0, err
    assert f"tensorflow: {metadata.version('tensorflow')}" in out
    assert f"keras: {metadata.version('keras')}" in out


TRACKED = """\
name: tracked
data:
  dataset: iris
model:
  layers:
    - Dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
tracking:
  mlflow: {experiment: dlcli-test}
"""


def test_mlflow_tracking_without_mlflow_fails_validation_with_the_install_hint(cli, tmp_path, monkeypatch):
    from dlcli.config import checks

    monkeypatch.setattr(checks, "mlflow_installed", lambda: False)
    (tmp_path / "c.yaml").write_text(TRACKED)
    code, _, err = cli("validate", "c.yaml")
    assert code == 2
    assert (
        "c.yaml:9:3: tracking.mlflow: MLflow tracking is asked for, but mlflow is not installed: "
        "pip install 'dlcli[mlflow]' (or remove tracking.mlflow)"
    ) in err


def test_mlflow_gets_params_metric_history_and_artifacts(cli, tmp_path):
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'dlcli[mlflow]'")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlflow.db"  # a plain path ending .db: a SQLite store
    tracked = ("-o", f"tracking.mlflow.tracking_uri={store}", "-o", "tracking.mlflow.experiment=dlcli-test")
    code, err = _train(cli, *tracked)
    assert code == 0, err
    run_dir = _newest(tmp_path)
    saved = read_json(run_dir / "run.json")["tracking"]["mlflow"]
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("dlcli-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == saved["run_id"] and run.info.status == "FINISHED"
    assert run.info.run_name == f"ci-regression/{run_dir.name}"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.params["optimizer.learning_rate"] == "0.01"
    assert run.data.params["model.layers"].startswith("[{'Dense': {'units': 16")
    assert run.data.tags["dlcli.status"] == "completed"
    history = read_json(run_dir / "metrics.json")
    assert run.data.metrics["test_r2"] == pytest.approx(history["test"]["r2"])
    losses = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in losses] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "metrics.json", "run.json", "config.yaml", "history.csv", "plots"} <= artifacts
    assert ".lock" not in artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {"plots/curves.png"}
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, wherever dlcli ran

    # resuming with more epochs logs into the same MLflow run, each epoch once
    code, _, err = cli("train", "--resume", str(run_dir), "-q", "-o", "train.epochs=3")
    assert code == 0, err
    (again,) = client.search_runs([experiment.experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]
