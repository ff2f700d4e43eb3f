"""Cross-validation (`dlcli train --folds K`, train.folds): folds that keep the test split out, stratified,
grouped by key, forward-chained for series; a run per fold in one folder, their mean and spread, one
line in `dlcli runs`, a side in `dlcli compare`; killed part way, the same command continues."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, GOOD, ROOT, STUCK_S, fails, forked, ok, read_json

from dlcli.config.config import load_config
from dlcli.io import data

IRIS = str(CONFIGS / "ci" / "iris.yaml")


def _config(tmp_path: Path, text: str, *overrides: str):
    (tmp_path / "c.yaml").write_text(text)
    return load_config(tmp_path / "c.yaml", list(overrides))


def _rows(loaded, split: str) -> set:
    return set(loaded.splits[split].index)


def test_the_folds_divide_what_the_test_split_leaves_stratified(tmp_path):
    folds = [data.load(_config(tmp_path, GOOD, "train.folds=4", f"train.fold={i}")) for i in range(1, 5)]
    tests = [_rows(f, "test") for f in folds]
    assert all(t == tests[0] for t in tests)  # the same test rows in every fold
    validations = [_rows(f, "validation") for f in folds]
    everything = set().union(*tests, *validations)
    assert len(everything) == 150 and sum(map(len, validations)) == 150 - len(tests[0])
    for fold, validation in zip(folds, validations, strict=True):
        assert _rows(fold, "train") == everything - tests[0] - validation
        counts = fold.splits["validation"]["target"].value_counts()
        assert counts.max() - counts.min() <= 1  # each class a third of every fold's validation rows


def test_series_folds_train_on_the_past_and_validate_on_the_next_block(tmp_path):
    text = (CONFIGS / "ci" / "series.yaml").read_text().replace("../../data/", f"{ROOT}/data/")
    ends = []
    for fold in (1, 2, 3):
        splits = data.load(_config(tmp_path, text, "train.folds=3", f"train.fold={fold}")).splits
        train, validation, test = (pd.to_datetime(splits[s]["date"]) for s in ("train", "validation", "test"))
        assert train.max() < validation.min() and validation.max() < test.min()  # never the past
        ends.append((train.max(), validation.max()))
    assert ends[0][1] <= ends[1][0] and ends[1][1] <= ends[2][0]  # each fold trains on the last's rows


def test_a_split_key_keeps_each_keys_rows_in_one_fold(tmp_path):
    frame = pd.DataFrame(
        {"id": np.repeat(np.arange(60), 3), "x": np.arange(180.0), "y": np.arange(180.0) % 7}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    text = GOOD.replace("dataset: iris", "path: t.csv\n  target: y\n  split: {key: id, test: 0.2}")
    text = text.replace("sparse_categorical_crossentropy", "mse").replace(
        "metrics: [accuracy]", "metrics: [mae]"
    )
    text = text.replace("{units: 3, activation: softmax}", "{units: 1}")
    seen = {}
    for fold in (1, 2, 3):
        validation = data.load(_config(tmp_path, text, "train.folds=3", f"train.fold={fold}")).splits[
            "validation"
        ]
        for key, rows in validation.groupby("id").size().items():
            assert rows == 3 and key not in seen  # a key's three rows together, in one fold only
            seen[key] = fold
    assert set(seen.values()) == {1, 2, 3}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.fold=2"],
            "-o: train.fold: fold 2 without train.folds: expected a fold from 1 to train.folds",
        ),
        (["train.folds=3", "train.fold=4"], "train.fold: fold 4 above train.folds (3)"),
        (
            ["train.folds=3", "data.split.column=s"],
            "train.folds: data.split.column fixes each row's split, so there is nothing to fold: remove it, "
            "or use data.split.key to keep groups of rows together",
        ),
        (["train.folds=1"], "train.folds: Input should be greater than or equal to 2"),
    ],
    ids=["fold-alone", "fold-too-high", "split-column", "one-fold"],
)
def test_fold_mistakes(tmp_path, cli, overrides, message):
    (tmp_path / "c.yaml").write_text(GOOD)
    assert message in fails(cli, "validate", "c.yaml", *(a for o in overrides for a in ("-o", o)))


def test_more_folds_than_rows_of_a_class(tmp_path, cli):
    (tmp_path / "c.yaml").write_text(GOOD)
    err = fails(cli, "train", "c.yaml", "--folds", "60", "-q")
    assert err == (
        "error: -o: train.folds: 60 stratified folds need at least 60 rows of every class outside the test "
        "split; class 'setosa' has 40: use fewer folds"
    )
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def folded(tmp_path_factory, dlcli_fork) -> Path:
    """configs/ci/iris.yaml trained with --folds 3 once: its cross-validation folder."""
    where = tmp_path_factory.mktemp("folded")
    ok(forked(dlcli_fork, "train", IRIS, "--folds", "3", "-q", cwd=where))
    (folder,) = (where / "runs" / "ci-iris").glob("cv-*")
    return folder


def test_each_fold_is_a_run_and_the_folder_holds_mean_and_spread_in_runs_and_compare(folded, cli):
    """(One test: the folds are trained once, on one test worker.)"""
    summary = read_json(folded / "cv.json")
    assert summary["folds"] == 3 and summary["runs"] == [str(folded / f"fold-{i}") for i in (1, 2, 3)]
    for split in ("train", "validation", "test"):
        values = [read_json(folded / f"fold-{i}" / "metrics.json")[split]["accuracy"] for i in (1, 2, 3)]
        got = summary["splits"][split]["accuracy"]
        assert got["folds"] == values
        assert got["mean"] == pytest.approx(statistics.fmean(values)) and got["std"] == pytest.approx(
            statistics.stdev(values)
        )
        assert read_json(folded / "metrics.json")[split]["accuracy"] == pytest.approx(got["mean"])
    for i in (1, 2, 3):  # every fold's test metric is what `dlcli evaluate` gives for its run
        code, out, err = cli("evaluate", str(folded / f"fold-{i}"), "--json")
        assert code == 0, err
        assert json.loads(out)["accuracy"] == pytest.approx(
            summary["splits"]["test"]["accuracy"]["folds"][i - 1]
        )
    assert (folded / "plots" / "folds.png").stat().st_size > 0

    _one_line_in_runs_and_a_side_in_compare(folded, cli)


def _one_line_in_runs_and_a_side_in_compare(folded: Path, cli) -> None:
    code, out, err = cli("runs", str(folded.parent.parent), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    test = read_json(folded / "cv.json")["splits"]["test"]["accuracy"]
    assert row["folds"] == {"completed": 3, "planned": 3} and row["status"] == "completed"
    assert row["test"] == {"metric": "accuracy", "value": test["mean"], "spread": test["std"]}
    code, out, err = cli("compare", str(folded), str(folded / "fold-2"), "--json")
    assert code == 0, err
    compared = json.loads(out)
    assert compared["config"] == {"train.fold": [None, 2]}
    assert compared["metrics"]["test.accuracy"] == [test["mean"], test["folds"][1]]
    assert f"{folded}: a cross-validation folder, whose folds are the runs: give one of them" in fails(
        cli, "evaluate", str(folded)
    )


def _started_fold(folder_root: Path, fold: int) -> bool:
    return any(folder_root.glob(f"ci-iris/cv-*/fold-{fold}/checkpoints/resume.json"))


def test_killed_in_fold_3_the_same_command_trains_folds_3_to_5_only(tmp_path, dlcli_fork, cli):
    args = ["train", IRIS, "--folds", "5", "-q", "-o", "train.epochs=4", "-o", "train.plots=false"]
    proc = dlcli_fork(*args, cwd=tmp_path)
    deadline = time.monotonic() + STUCK_S
    while not _started_fold(tmp_path / "runs", 3):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "never reached fold 3"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = (tmp_path / "runs" / "ci-iris").glob("cv-*")
    before = {i: (folder / f"fold-{i}" / "run.json").read_bytes() for i in (1, 2)}
    code, _, err = cli(*args)
    assert code == 0, err
    assert "fold 1/5" not in err and "fold 2/5" not in err
    assert f"fold 3/5: resuming {folder / 'fold-3'}" in err
    assert "fold 4/5: training" in err and "fold 5/5: training" in err
    assert {i: (folder / f"fold-{i}" / "run.json").read_bytes() for i in (1, 2)} == before
    assert sorted(p.name for p in folder.glob("fold-*")) == [f"fold-{i}" for i in range(1, 6)]
    assert read_json(folder / "cv.json")["folds"] == 5


def test_jobs_2_train_every_fold_once(tmp_path, dlcli_fork):
    args = ("--folds", "2", "--jobs", "2", "-q", "-o", "train.plots=false")
    ok(forked(dlcli_fork, "train", IRIS, *args, cwd=tmp_path))
    (folder,) = (tmp_path / "runs" / "ci-iris").glob("cv-*")
    assert sorted(p.name for p in folder.glob("fold-*")) == ["fold-1", "fold-2"]  # none twice
    assert all(read_json(folder / f"fold-{i}" / "run.json")["status"] == "completed" for i in (1, 2))
    threads = {read_json(folder / f"fold-{i}" / "run.json")["compute"]["intra_op_threads"] for i in (1, 2)}
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}  # the cores divided between the two processes
    assert read_json(folder / "cv.json")["folds"] == 2


def test_tune_scores_each_trial_by_the_mean_over_its_folds(tmp_path, cli):
    config = (CONFIGS / "ci" / "tune.yaml").read_text().replace("../../data/", f"{ROOT}/data/")
    (tmp_path / "t.yaml").write_text(config)
    code, out, err = cli("tune", "t.yaml", "--trials", "1", "-o", "search.folds=2", "-o", "train.epochs=3")
    assert code == 0, err
    (searched,) = (tmp_path / "runs" / "ci-tune").glob("tune-*")
    trials = pd.read_csv(searched / "trials.csv")
    assert trials["state"].tolist() == ["completed"]
    for row in trials.itertuples():
        folder = searched / f"trial-{row.trial}"
        best = [pd.read_csv(folder / f"fold-{i}" / "history.csv")["val_loss"].min() for i in (1, 2)]
        assert row.val_loss == pytest.approx(statistics.fmean(best))  # the mean of each fold's best epoch
        assert read_json(folder / "cv.json")["folds"] == 2
    assert "trial 0: val_loss" in out + err and "the mean of 2 folds" in out + err
