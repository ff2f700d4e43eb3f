"""Issue 32: `dlcli tune` under careless and hostile use: several processes on one study (SQLite and
a real PostgreSQL server), kill -9 and rerun, absurd --jobs, storages that are not databases, bad
search spaces. Every trial gets its own setting; every mistake exits 2 naming what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, ROOT, fails, finished, read_json
from test_tune import _wait_for_an_epoch

pytest.importorskip("optuna", reason="the tune extra is not installed")
FINISHED = ("completed", "pruned", "failed")


def _config(folder: Path, **search) -> Path:
    raw = yaml.safe_load((CONFIGS / "ci" / "tune.yaml").read_text())
    raw["data"]["path"] = str(ROOT / "data" / "tiny_regression.csv")
    raw["train"]["epochs"] = 3
    raw["search"].update({"pruner": "none", **search})
    path = folder / "tune.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _trials(cwd: Path) -> pd.DataFrame:
    (folder,) = (cwd / "runs" / "ci-tune").glob("tune-*")
    return pd.read_csv(folder / "trials.csv")


SETTING = ["learning_rate", "units", "batch_size"]


def _settings(trials: pd.DataFrame) -> list[tuple]:
    """Each finished trial's setting (a trial asked again after its process died keeps its own)."""
    done = trials[trials["state"].isin(FINISHED)]
    return [tuple(row) for row in done[SETTING].itertuples(index=False)]


# ---- item 4: one study, several processes -------------------------------------------------------------
def test_two_processes_on_one_sqlite_study_never_repeat_a_setting(tmp_path, dlcli_fork):
    config = _config(tmp_path, trials=4)
    a, b = (dlcli_fork("tune", str(config), cwd=tmp_path) for _ in range(2))
    finished(a), finished(b)
    settings = _settings(_trials(tmp_path))
    assert len(settings) == 4 and len(set(settings)) == 4, settings


def test_after_kill_9_the_rerun_asks_new_settings(tmp_path, dlcli_fork):
    config = _config(tmp_path, trials=4)
    slow = ["-o", "train.epochs=12", "-o", "train.early_stopping=null"]
    proc = dlcli_fork("tune", str(config), *slow, cwd=tmp_path)
    _wait_for_an_epoch(tmp_path, set(), proc)
    proc.kill()
    proc.wait()
    finished(dlcli_fork("tune", str(config), *slow, cwd=tmp_path))
    trials = _trials(tmp_path)
    settings = _settings(trials)
    assert len(settings) == 4 and len(set(settings)) == 4, trials  # trial 3 no longer repeats trial 0
    lost = trials[trials["state"] == "lost, asked again"]
    assert len(lost) == 1 and tuple(lost[SETTING].iloc[0]) in settings  # its retry, its own setting


def test_two_processes_on_one_postgresql_study_never_repeat_a_setting(tmp_path, dlcli_fork, postgres_url):
    config = _config(tmp_path, trials=4)
    a, b = (dlcli_fork("tune", str(config), "--storage", postgres_url, cwd=tmp_path) for _ in range(2))
    finished(a), finished(b)
    settings = _settings(_trials(tmp_path))
    assert len(settings) == 4 and len(set(settings)) == 4, settings
    assert (
        read_json(next((tmp_path / "runs" / "ci-tune").glob("tune-*")) / "tune.json")["storage"]
        == postgres_url
    )


def test_grid_cells_are_each_run_once_by_two_processes(tmp_path, dlcli_fork):
    config = _config(
        tmp_path,
        trials=4,
        sampler="grid",
        parameters={
            "model.layers.0.Dense.units": {"choice": [8, 16]},
            "train.batch_size": {"choice": [16, 32]},
        },
    )
    a, b = (dlcli_fork("tune", str(config), cwd=tmp_path) for _ in range(2))
    finished(a), finished(b)
    trials = _trials(tmp_path)
    done = trials[trials["state"].isin(FINISHED)]
    cells = sorted(zip(done["units"], done["batch_size"], strict=True))
    assert cells == [(8, 16), (8, 32), (16, 16), (16, 32)], trials


# ---- item 7: bounded work -------------------------------------------------------------------------------
def test_jobs_beyond_the_trials_left_start_no_more_processes(tmp_path, dlcli_fork):
    config = _config(tmp_path, trials=1)
    out, _ = finished(dlcli_fork("tune", str(config), "--jobs", "1000", cwd=tmp_path))
    cores = os.cpu_count() or 1
    expected = "1 trial(s) left to run" + (f" and {cores} cores" if cores < 1000 else "")
    assert f"note: --jobs 1000: running 1 process(es) ({expected})" in out
    assert len(_trials(tmp_path)) == 1


def test_jobs_beyond_the_cores_are_capped_with_a_note(tmp_path, dlcli_fork):
    cores = os.cpu_count() or 1
    config = _config(tmp_path, trials=cores + 2)
    out, _ = finished(
        dlcli_fork("tune", str(config), "--jobs", str(cores + 1), "--trials", "2", cwd=tmp_path)
    )
    assert f"note: --jobs {cores + 1}: running" in out
    assert len(_trials(tmp_path)) == 2


@pytest.mark.parametrize("flag", ["--trials", "--jobs"])
def test_zero_trials_or_jobs_is_refused(tmp_path, cli, flag):
    code, _, err = cli("tune", str(_config(tmp_path)), flag, "0")
    assert code == 2 and f"Invalid value for '{flag}'" in " ".join(err.split())


# ---- item 12: storages --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (
            "foo://bar",
            "--storage foo://bar: not a database URL Optuna can use (Can't load plugin: sqlalchemy.dialects:foo)",
        ),
        (
            "postgresql://someone:hunter2@127.0.0.1:1/db",
            "--storage postgresql://someone:***@127.0.0.1:1/db: cannot open the study there (OperationalError:",
        ),
        ("sqlite:////proc/self/study.db", "/proc/self/study.db: cannot be opened for writing"),
    ],
    ids=["scheme", "unreachable", "read-only"],
)
def test_a_storage_that_cannot_be_used_is_named(tmp_path, cli, storage, expected):
    err = fails(cli, "tune", str(_config(tmp_path)), "--storage", storage)
    assert expected in err
    assert "hunter2" not in err


@pytest.mark.parametrize("content", [b"not a database at all\n" * 10, b"SQLite format 3\x00" + b"\xff" * 600])
def test_a_study_db_that_is_not_sqlite_is_named(tmp_path, cli, content):
    config = _config(tmp_path)
    fails(cli, "tune", str(config), "--storage", "foo://x")  # makes the study's folder, nothing else
    (folder,) = (tmp_path / "runs" / "ci-tune").glob("tune-*")
    (folder / "study.db").write_bytes(content)
    err = fails(cli, "tune", str(config))
    assert (
        f"{(folder / 'study.db').resolve()}: not an SQLite database (corrupted, or a file of another kind"
        in err
    )
    assert (folder / "study.db").read_bytes() == content  # left as it was: the user's to move


def test_a_storage_path_that_is_a_folder_is_named(tmp_path, cli):
    err = fails(cli, "tune", str(_config(tmp_path)), "--storage", f"sqlite:///{tmp_path}")
    assert f"{tmp_path}: cannot be opened for writing (unable to open database file)" in err


def test_a_runs_folder_that_cannot_be_written_is_named(tmp_path, cli):
    err = fails(cli, "tune", str(_config(tmp_path)), "--run-dir", "/proc/self/runs")
    assert "/proc/self/runs/ci-tune/tune-" in err and "(the study's folder): cannot be written" in err


# ---- item 14: search spaces refused by validate ------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"model.layers.0.Dense.units": {"choice": [8, -16]}},
            "search.parameters.model.layers.0.Dense.units: model.layers.0.Dense.units cannot take its choice "
            "-16: model.layers.0.Dense.units: Dense: units must be a positive integer (received units=-16)",
        ),
        (
            {"model.layers.0.Dense.units": {"int": [-4, 16]}},
            "model.layers.0.Dense.units: Dense: units must be a positive integer (received units=-4)",
        ),
        (
            {"optimizer.learning_rate": {"loguniform": [0.1, 0.001]}},
            "search.parameters.optimizer.learning_rate: loguniform:",
        ),
    ],
    ids=["negative-choice", "negative-range", "reversed-bounds"],
)
def test_bad_search_values_are_refused_by_validate(tmp_path, cli, parameters, expected):
    path = _config(tmp_path, parameters=parameters)
    err = fails(cli, "validate", str(path))
    assert expected in err


def test_plain_negative_units_are_refused_by_validate(tmp_path, cli):
    raw = yaml.safe_load(_config(tmp_path).read_text())
    raw["model"]["layers"][0]["Dense"]["units"] = -16
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    err = fails(cli, "validate", str(tmp_path / "tune.yaml"))
    assert "model.layers.0.Dense.units: Dense: units must be a positive integer (received units=-16)" in err


def test_tune_without_a_search_section_says_how_to_add_one(tmp_path, cli):
    raw = yaml.safe_load(_config(tmp_path).read_text())
    del raw["search"]
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(raw))
    err = fails(cli, "tune", str(tmp_path / "tune.yaml"))
    assert "tune.yaml: no search section; add one" in err
