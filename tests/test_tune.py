"""`dlcli tune` (issue 19) on configs/ci/tune.yaml: trials are ordinary runs, the study lives in
SQLite beside them, a kill -9 mid-trial is recovered on the next start (the trial resumed), processes
share one study, and bad search spaces exit 2 before any trial."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, ROOT, STUCK_S, fails, finished, read_json

CONFIG = CONFIGS / "ci" / "tune.yaml"
FINISHED = ("completed", "pruned", "failed")


def _config(folder: Path, **search) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["data"]["path"] = str(ROOT / "data" / "tiny_regression.csv")
    raw["search"].update(search)
    path = folder / "tune.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _study(cwd: Path) -> Path:
    (folder,) = (cwd / "runs" / "ci-tune").glob("tune-*")
    return folder


def _trials(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "trials.csv")


@pytest.fixture(scope="module")
def searched(tmp_path_factory, dlcli_fork) -> Path:
    cwd = tmp_path_factory.mktemp("tune")
    out, _ = finished(dlcli_fork("tune", str(_config(cwd)), cwd=cwd))
    return _study(cwd)


def test_trials_are_ordinary_runs_and_the_best_config_trains_the_same_model(searched, dlcli_fork, cli):
    trials = _trials(searched)
    assert trials["trial"].tolist() == [0, 1, 2, 3, 4]
    assert set(trials["state"]) <= {"completed", "pruned"}
    study = read_json(searched / "tune.json")
    assert (study["metric"], study["direction"], study["trials"]) == ("val_loss", "minimize", 5)
    for row in trials.itertuples():
        run = searched / f"trial-{row.trial}"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert "search" not in config or config["search"] is None
        assert config["optimizer"]["learning_rate"] == pytest.approx(row.learning_rate)
        assert config["model"]["layers"][0]["Dense"]["units"] == row.units
        assert 1e-3 <= row.learning_rate <= 1e-1 and row.units in (8, 16, 32) and row.batch_size % 16 == 0
        assert read_json(run / "run.json")["status"] == row.state
    best = trials[trials["state"] == "completed"].sort_values("val_loss").iloc[0]
    code, out, err = cli("evaluate", str(searched / f"trial-{best.trial}"))
    assert code == 0, err  # a trial is a run like any other
    # best.yaml trains the best trial's model again: the same curve
    cwd = searched.parent.parent.parent
    finished(dlcli_fork("train", str(searched / "best.yaml"), "-q", "--run-dir", "again", cwd=cwd))
    again = pd.read_csv(cwd / "again" / "ci-tune" / "latest" / "history.csv")
    assert again["val_loss"].min() == pytest.approx(best.val_loss, rel=1e-5)
    assert (searched / "plots" / "history.png").is_file()
    code, out, _ = cli("runs", str(cwd / "runs"), "--json")  # dlcli runs lists the trials
    listed = {Path(r["run"]).name for r in json.loads(out)}
    assert {f"trial-{n}" for n in range(5)} <= listed


def test_a_pruned_trial_stops_its_run_and_marks_it_pruned(tmp_path):
    from dlcli import api
    from dlcli.config.config import load_config
    from dlcli.tune import tune
    from dlcli.utils.errors import Pruned

    class Trial:  # what the pruner says: behind the others from epoch 2
        reports: list = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) >= 2

    config = load_config(_config(tmp_path))
    config.search = None
    with pytest.raises(Pruned, match="pruned after epoch 2"):
        api.train(config, listener=tune.Reporter(Trial(), "val_loss", True), run_dir=tmp_path / "trial-0")
    record = read_json(tmp_path / "trial-0" / "run.json")
    assert record["status"] == "pruned" and record["error"].startswith("pruned after epoch 2")
    assert [step for step, _ in Trial.reports] == [1, 2]


@pytest.mark.parametrize(("trials", "startup"), [(4, 2), (30, 3), (200, 5)])
def test_the_median_pruner_judges_once_a_tenth_of_the_budget_has_finished(tmp_path, trials, startup):
    import optuna

    from dlcli.tune import tune

    s = tune.open_search(_config(tmp_path), trials=trials, runs_dir=tmp_path / "runs")
    study = tune.study(s)
    steps = range(1, s.config.train.epochs + 1)  # configs/ci/tune.yaml: 6 epochs, judged from epoch 1
    good = dict.fromkeys(steps, 0.1)
    for n in range(startup + 1):
        behind = study.ask()
        for step in steps:
            behind.report(1.0, step)
        # behind every finished curve from epoch 1: pruned only once `startup` trials have finished
        assert behind.should_prune() == (n == startup), n
        study.tell(behind, state=optuna.trial.TrialState.PRUNED)
        study.add_trial(
            optuna.trial.create_trial(value=0.1, intermediate_values=good, params={}, distributions={})
        )


def _wait_for_an_epoch(folder: Path, skip: set[str], proc) -> str:
    """A trial's run that has committed an epoch and is still training (not one of `skip`)."""
    deadline = time.monotonic() + STUCK_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "dlcli tune ended before it could be killed"
        for run in folder.glob("runs/ci-tune/tune-*/trial-*"):
            status = (run / "run.json").is_file() and json.loads((run / "run.json").read_text())["status"]
            if (
                run.name not in skip
                and status == "running"
                and (run / "checkpoints" / "resume.json").is_file()
            ):
                return run.name
        time.sleep(0.02)
    raise AssertionError("no trial committed an epoch in time")


def test_kill_9_twice_mid_trial_then_rerun_completes_exactly_the_trials(tmp_path, dlcli_fork):
    config = _config(tmp_path, trials=4, pruner="none")
    slow = ["-o", "train.epochs=12", "-o", "train.early_stopping=null"]  # trials long enough to kill
    killed = set()
    for _ in range(2):
        proc = dlcli_fork("tune", str(config), *slow, cwd=tmp_path)
        killed.add(_wait_for_an_epoch(tmp_path, killed, proc))
        proc.kill()
        proc.wait()
    out, _ = finished(dlcli_fork("tune", str(config), *slow, cwd=tmp_path))
    assert out.count("its process is gone; asked again with its parameters") == 1  # the second kill's
    trials = _trials(_study(tmp_path))
    assert trials["trial"].is_unique
    assert (trials["state"].isin(FINISHED)).sum() == 4  # exactly the asked number
    lost = trials[trials["state"] == "lost, asked again"]
    # the first kill's trial was found lost by the second start, the second kill's by the rerun:
    # each was asked again with its parameters and resumed in its own run directory
    assert sorted(Path(r).name for r in lost["run"]) == sorted(killed)
    for name in killed:
        (again,) = trials[
            (trials["run"].map(lambda r: Path(r).name) == name) & trials["state"].isin(FINISHED)
        ].itertuples()
        run = _study(tmp_path) / name
        assert read_json(run / "run.json")["status"] == "completed"
        history = pd.read_csv(run / "history.csv")
        assert history["epoch"].tolist() == list(range(1, 13))  # resumed: every epoch once
        assert again.epochs == 12


def test_jobs_2_and_another_process_share_one_study(tmp_path, dlcli_fork):
    config = _config(tmp_path, trials=6)
    a = dlcli_fork("tune", str(config), "--jobs", "2", cwd=tmp_path)
    b = dlcli_fork("tune", str(config), cwd=tmp_path)
    (_, err_a), (_, err_b) = finished(a), finished(b)
    assert "locked" not in err_a + err_b
    trials = _trials(_study(tmp_path))
    assert trials["trial"].is_unique and trials["state"].isin(FINISHED).sum() == 6
    assert len(trials) == 6  # none asked beyond the six


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"optimizer.learnig_rate": {"loguniform": [1.0e-3, 1.0e-1]}},
            "tune.yaml:40:5: search.parameters.optimizer.learnig_rate: not a key of this config: "
            "optimizer.learnig_rate: Adam has no argument 'learnig_rate'; did you mean 'learning_rate'?",
        ),
        (
            {"model.layers.0.Dense.units": {"choice": []}},
            "tune.yaml:40:5: search.parameters.model.layers.0.Dense.units: choice: expected a non-empty "
            "list of values, got []",
        ),
        (
            {"optimizer.learning_rate": {"loguniform": [0, 0.1]}},
            "tune.yaml:40:5: search.parameters.optimizer.learning_rate: loguniform: a log scale needs a "
            "positive low bound, got 0",
        ),
        (
            {"train.batch_size": {"choice": [16, 0]}},
            "tune.yaml:40:5: search.parameters.train.batch_size: train.batch_size cannot take its choice 0: "
            "train.batch_size: Input should be greater than 0 (got 0)",
        ),
        (
            {"model.layers.0.Dense.activation": {"choice": ["relu", "relux"]}},
            "tune.yaml:40:5: search.parameters.model.layers.0.Dense.activation: "
            "model.layers.0.Dense.activation cannot take its choice 'relux': model.layers.0.Dense.activation: "
            "unknown activation 'relux'; did you mean 'relu'?",
        ),
    ],
)
def test_bad_search_spaces_exit_2_before_any_trial(tmp_path, cli, parameters, message):
    raw = yaml.safe_load(_config(tmp_path).read_text())
    raw["search"]["parameters"] = parameters
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert message in fails(cli, "tune", str(path))
    assert not list(tmp_path.glob("runs/ci-tune/tune-*/trial-*"))


def test_an_unknown_metric_is_named_with_a_did_you_mean(tmp_path, cli):
    path = _config(tmp_path, metric="val_los")
    message = fails(cli, "validate", str(path))
    assert (
        "search.metric: 'val_los' is not a quantity this model reports (expected one of loss, mae, "
        in message
    )
    assert "val_loss, val_mae); did you mean 'val_loss'?" in message


# ---- the functions, called directly ---------------------------------------------------------------
def test_a_study_is_opened_with_keras_direction_and_a_sampler_per_trial(tmp_path):
    pytest.importorskip("optuna", reason="the tune extra is not installed")
    from dlcli.tune import tune

    for metric, expected in (("val_loss", "minimize"), ("val_r2_score", "maximize"), ("val_mae", "minimize")):
        path = _config(tmp_path, metric=metric)
        raw = yaml.safe_load(path.read_text())
        raw["metrics"] = ["mae", "r2_score"]
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        found = tune.open_search(path, runs_dir=tmp_path / "runs", say=lambda _: None)
        assert (found.metric, found.direction) == (metric, expected)
    import optuna

    def first_draw(number: int) -> float:
        study = optuna.create_study(sampler=tune.sampler_for(found, number))
        return study.ask().suggest_float("x", 0.0, 1.0)

    draws = [first_draw(n) for n in (0, 1, 0)]
    assert draws[0] == draws[2] != draws[1]  # a trial's stream depends on its number alone
