"""Runs that survive: kill and resume to identical results, signals, reproducibility, safe loading."""

from __future__ import annotations

import json
import os
import random
import signal
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, STUCK_S, dlcli_popen, fails, finished, forked, ok, read_json, unsealed

CONFIG = str(CONFIGS / "ci" / "regression.yaml")
# small batches and one step per call: epochs long enough to be killed inside
SLOW = [
    "-q",
    "-o",
    "train.batch_size=8",
    "-o",
    "train.steps_per_execution=1",
    "-o",
    "train.tensorboard=false",
    "-o",
    "train.plots=false",
]
SIX = [*SLOW, "-o", "train.epochs=6", "-o", "train.early_stopping=null"]


def _run_dir(root: Path) -> Path:
    (run,) = root.glob("ci-regression/2*")
    return run


def _committed_epoch(run_root: Path) -> int:
    for path in run_root.glob("*/*/checkpoints/resume.json"):
        try:
            return json.loads(path.read_text())["epoch"]
        except (ValueError, KeyError):
            return 0
    return 0


def _kill_after_epoch(proc, run_root: Path, epoch: int, sig=signal.SIGKILL, timeout: float = STUCK_S) -> None:
    deadline = time.monotonic() + timeout
    while _committed_epoch(run_root) < epoch:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never reached the epoch"
        time.sleep(0.005)
    proc.send_signal(sig)


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False).get_weights()


def _same_weights(a: Path, b: Path) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))


def test_kill_in_epoch_3_then_resume_equals_an_uninterrupted_run(tmp_path, dlcli_fork):
    # every process is forked (tests/forkserver.py) from one that imported TensorFlow and ran nothing
    finished(dlcli_fork("train", CONFIG, *SIX, "--run-dir", "whole", cwd=tmp_path))
    proc = dlcli_fork("train", CONFIG, *SIX, "--run-dir", "killed", cwd=tmp_path)
    _kill_after_epoch(proc, tmp_path / "killed", 2)
    proc.wait()
    killed = _run_dir(tmp_path / "killed")
    assert read_json(killed / "run.json")["status"] == "running"  # SIGKILL leaves no time to say more
    assert read_json(killed / "checkpoints" / "resume.json")["epoch"] < 6

    ok(forked(dlcli_fork, "train", "--resume", str(killed), "-q", cwd=tmp_path))
    whole = _run_dir(tmp_path / "whole")
    history = pd.read_csv(killed / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    pd.testing.assert_frame_equal(history, pd.read_csv(whole / "history.csv"))
    assert read_json(killed / "metrics.json") == read_json(whole / "metrics.json")
    assert _same_weights(killed / "model.keras", whole / "model.keras")
    status = read_json(killed / "run.json")
    assert status["status"] == "completed" and len(status["resumes"]) == 1


def test_early_stopping_and_best_checkpoint_survive_a_resume(tmp_path, cli, dlcli_fork):
    stop = [
        *SLOW,
        "-o",
        "train.epochs=40",
        "-o",
        "optimizer.learning_rate=0.05",
        "-o",
        "train.early_stopping={monitor: val_loss, patience: 2}",
    ]
    finished(dlcli_fork("train", CONFIG, *stop, "--run-dir", "whole", cwd=tmp_path))
    whole = _run_dir(tmp_path / "whole")
    stopped_at = len(pd.read_csv(whole / "history.csv"))
    best = read_json(whole / "checkpoints" / "resume.json")["best_epoch"]
    assert stopped_at == best + 2 < 40  # early stopping fired: patience 2 after the best epoch

    proc = dlcli_fork("train", CONFIG, *stop, "--run-dir", "killed", cwd=tmp_path)
    _kill_after_epoch(proc, tmp_path / "killed", best - 1 if best > 2 else 1)
    proc.wait()
    killed = _run_dir(tmp_path / "killed")
    ok(forked(dlcli_fork, "train", "--resume", str(killed), "-q", cwd=tmp_path))
    assert len(pd.read_csv(killed / "history.csv")) == stopped_at
    assert read_json(killed / "checkpoints" / "resume.json")["best_epoch"] == best
    assert _same_weights(killed / "checkpoints" / "best.keras", whole / "checkpoints" / "best.keras")
    # a run that stopped early goes on only when asked for more patience (in this process)
    assert f"the run stopped early after epoch {stopped_at} of 40" in fails(
        cli, "train", "--resume", str(killed)
    )
    code, _, err = cli("train", "--resume", str(killed), "-q", "-o", "train.early_stopping.patience=4")
    assert code == 0, err
    epochs = pd.read_csv(killed / "history.csv")["epoch"].tolist()
    assert epochs[:stopped_at] == list(range(1, stopped_at + 1)) and len(epochs) > stopped_at
    assert epochs == list(range(1, len(epochs) + 1))


def test_sigint_stops_cleanly_and_prints_a_resume_command_that_works(tmp_path, cli, dlcli_fork):
    proc = dlcli_fork(
        "train", CONFIG, *SLOW, "-o", "train.epochs=8", "-o", "train.early_stopping=null", cwd=tmp_path
    )
    _kill_after_epoch(proc, tmp_path / "runs", 1, sig=signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run = _run_dir(tmp_path / "runs")
    assert "interrupted: SIGINT received; stopped after" in err
    assert f"Continue with: dlcli train --resume {run}" in err
    status = read_json(run / "run.json")
    assert status["status"] == "interrupted" and status["error"].startswith("SIGINT received")
    assert not (run.parent / "latest").exists()
    command = err.split("Continue with: ")[1].split()
    assert command[:3] == ["dlcli", "train", "--resume"]
    code, _, err = cli(*command[1:], "-q")  # in this process
    assert code == 0, err
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(1, 9))
    assert read_json(run / "run.json")["status"] == "completed"


def test_a_run_in_training_cannot_be_resumed_twice_and_sigterm_exits_143(tmp_path, dlcli_fork):
    # 200 epochs and no early stop: still training while a second process starts (a loaded machine
    # took 7 epochs to import TensorFlow there, and early stopping had ended the first run)
    longer = ["-o", "train.epochs=200", "-o", "train.early_stopping=null"]
    proc = dlcli_fork("train", CONFIG, *SLOW, *longer, cwd=tmp_path)
    _kill_after_epoch(proc, tmp_path / "runs", 1, sig=0)  # signal 0: only wait for epoch 1
    run = _run_dir(tmp_path / "runs")
    second = forked(dlcli_fork, "train", "--resume", str(run), cwd=tmp_path)
    assert second.returncode == 2
    assert f"error: {run}: another dlcli process is training this run now" in second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "interrupted: SIGTERM received" in err
    assert read_json(_run_dir(tmp_path / "runs") / "run.json")["status"] == "interrupted"


def test_resume_refusals(tmp_path, cli):
    code, _, err = cli("train", CONFIG, "-q", "-o", "train.epochs=2", "-o", "train.early_stopping=null")
    assert code == 0, err
    run = _run_dir(tmp_path / "runs")
    err = fails(cli, "train", "--resume", str(run))
    assert "the run completed after epoch 2 of 2; to train on, raise -o train.epochs=N" in err
    err = fails(cli, "train", "--resume", str(run), "-o", "optimizer.learning_rate=0.5", "-o", "seed=1")
    assert (
        "only train.early_stopping.patience, train.epochs, train.fine_tune.epochs may change when resuming"
        in err
    )
    assert "optimizer.learning_rate: 0.01 → 0.5" in err and "seed: 42 → 1" in err
    assert "runs/nope/1: not a dlcli run directory" in fails(cli, "train", "--resume", "runs/nope/1")
    # extending a finished run appends exactly the new epochs
    code, _, err = cli("train", "--resume", str(run), "-q", "-o", "train.epochs=4")
    assert code == 0, err
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2, 3, 4]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 4


def test_same_config_and_seed_give_identical_runs(tmp_path, dlcli_fork):
    for folder in ("a", "b"):  # two processes (forked before any op)
        finished(dlcli_fork("train", CONFIG, *SIX, "--run-dir", folder, cwd=tmp_path))
    a, b = _run_dir(tmp_path / "a"), _run_dir(tmp_path / "b")
    assert read_json(a / "metrics.json") == read_json(b / "metrics.json")
    assert _same_weights(a / "model.keras", b / "model.keras")
    status = read_json(a / "run.json")
    assert status["seed"] == 42 and status["deterministic"] is True
    assert status["versions"]["tensorflow"] and status["versions"]["keras"]


def _wait_for(proc, ready, timeout: float = STUCK_S, every: float = 0.005) -> bool:
    """Poll `every` seconds until `ready()`; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run never reached the phase"
        time.sleep(every)
    return True


def _temp_file_in(folder: Path):
    def seen() -> bool:
        try:
            return any(entry.name.startswith(".") and ".tmp" in entry.name for entry in os.scandir(folder))
        except FileNotFoundError:
            return False

    return seen


def _kill_in_phase(root: Path, proc, phase: str, epoch: int, rng: random.Random) -> None:
    """SIGKILL the run in the given phase: the instant a phase is seen, plus a random delay."""
    runs = lambda: list(root.glob("ci-regression/2*"))  # noqa: E731
    if phase == "start-up":
        time.sleep(rng.uniform(0.1, 2.5))  # importing TensorFlow, validating, maybe creating the run
    elif phase == "data loading":
        _wait_for(proc, lambda: any((run / "run.json").exists() for run in runs()))
        time.sleep(rng.uniform(0, 0.05))
    elif phase == "mid-epoch":
        _wait_for(proc, lambda: _committed_epoch(root) >= epoch)
        time.sleep(rng.uniform(0, 0.1))  # an epoch here lasts about 0.2 s
    else:  # "checkpoint writing": a temporary file exists while a checkpoint or state file is written
        _wait_for(proc, lambda: _committed_epoch(root) >= epoch - 1 and bool(runs()))
        _wait_for(proc, _temp_file_in(runs()[0] / "checkpoints"), every=0.001)  # a file lives for ms
    proc.kill()
    proc.wait()


def _kill_and_inspect(tmp_path: Path, start, seed: int, phase: str, epoch: int) -> Path | None:
    """Kill a run in `phase`; check every file a reader would open parses. The run directory, if any.
    The start-up phase (importing TensorFlow) needs a whole new process; the others are forked from
    a process that has imported it (the `dlcli_fork` fixture)."""
    root = tmp_path / f"kill-{seed}"
    args = ["train", CONFIG, *SLOW, "-o", "train.epochs=4", "-o", f"seed={seed}", "--run-dir", str(root)]
    proc = (dlcli_popen if phase == "start-up" else start)(*args, cwd=tmp_path)
    _kill_in_phase(root, proc, phase, epoch, random.Random(seed))
    runs = list(root.glob("ci-regression/2*"))
    if not runs:
        return None
    (run,) = runs
    for path in run.rglob("*"):
        if path.name.startswith("."):  # a killed writer's temporary file, never read by dlcli
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text())
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:  # a truncated archive fails here
                assert archive.testzip() is None, path
    status = read_json(run / "run.json")["status"]
    assert status in {"running", "completed"}, status  # SIGKILL: the status is the last one written
    return run


def _resume_after_kill(run: Path | None, cli) -> str:
    if run is None:
        return "killed before the run directory existed"
    committed = _committed_epoch(run.parents[1])
    code, _, err = cli("train", "--resume", str(run), "-q")
    if 0 < committed < 4:  # a completed epoch and more to do: the run must continue
        assert code == 0, err
        assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2, 3, 4]
        assert read_json(run / "run.json")["status"] == "completed"
        assert not [p for p in run.rglob(".*") if p.name != ".lock"]  # the resume swept leftovers
        return f"resumed after epoch {committed}"
    assert code == 2 and "Traceback" not in err, err
    reason = "nothing to resume" if committed == 0 else "the run completed after epoch 4 of 4"
    assert reason in err, err
    return f"refused: {reason}"


def test_twenty_random_kills_leave_a_usable_run(tmp_path, dlcli_fork):
    phases = ["start-up", "data loading"] * 2 + ["mid-epoch", "checkpoint writing"] * 8
    rng = random.Random(7)
    cases = [(seed, phase, rng.randint(1, 3)) for seed, phase in enumerate(phases)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # the kills run two at a time in subprocesses
        killed = list(pool.map(lambda case: _kill_and_inspect(tmp_path, dlcli_fork, *case), cases))

    def resume(*args: str) -> tuple[int, str, str]:  # forked from the process that imported TensorFlow
        proc = forked(dlcli_fork, *args, cwd=tmp_path)
        return proc.returncode, proc.stdout, proc.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:  # and resumed two at a time too
        outcomes = list(pool.map(lambda run: _resume_after_kill(run, resume), killed))
    print(*(f"{case}: {outcome}" for case, outcome in zip(cases, outcomes, strict=True)), sep="\n")
    assert sum(outcome.startswith("resumed") for outcome in outcomes) >= 8


# ---- a run directory someone handed you never runs code -----------------------------------------------
@pytest.fixture
def finished_run(regression_run) -> Path:
    return regression_run  # the tests below copy it before changing anything


def _copy(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


def test_model_with_a_lambda_layer_is_refused_and_never_runs(finished_run, tmp_path, cli):
    import keras

    marker = tmp_path / "PWNED"
    crafted = _copy(finished_run, tmp_path / "crafted")
    payload = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(eval(payload)), keras.layers.Dense(1)])  # noqa: S307 - the test builds the attack
    model.save(crafted / "model.keras")
    unsealed(crafted)  # a run whose run.json keeps no sha256 (dlcli before 0.3): safe loading still holds
    marker.unlink(missing_ok=True)  # building the model ran the lambda once, here in the test
    frame = pd.DataFrame({"area": [50.0], "rooms": [2.0], "city": ["north"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    for args in (["evaluate", str(crafted)], ["predict", str(crafted), "--input", str(tmp_path / "in.csv")]):
        assert f"{crafted / 'model.keras'}: cannot be loaded safely" in fails(cli, *args)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {**s, "extra": 1}, "extra: Extra inputs are not permitted"),
        (
            lambda s: {**s, "numeric": {**s["numeric"], "center_": "oops"}},
            "numeric.center_: Input should be a valid array",
        ),
        (
            lambda s: {**s, "kind": "pickle"},
            "kind: Input should be 'table', 'timeseries', 'image' or 'image_files'",
        ),
    ],
    ids=["extra-field", "mistyped-field", "unknown-kind"],
)
def test_tampered_preprocessing_state_is_refused(finished_run, tmp_path, cli, change, message):
    crafted = _copy(finished_run, tmp_path / "crafted")
    state = json.loads((crafted / "preprocessing.json").read_text())
    (crafted / "preprocessing.json").write_text(json.dumps(change(state)))
    pd.DataFrame({"area": [50.0], "rooms": [2.0], "city": ["north"]}).to_csv(tmp_path / "in.csv", index=False)
    for args in (["evaluate", str(crafted)], ["predict", str(crafted), "--input", str(tmp_path / "in.csv")]):
        code, _, err = cli(*args)  # in this process: the same code path, TensorFlow imported once
        assert code == 2 and "Traceback" not in err
        assert f"error: {crafted / 'preprocessing.json'}: not a valid dlcli preprocessing state (" in err
        assert message in err
