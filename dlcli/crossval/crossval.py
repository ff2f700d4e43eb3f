"""`dlcli train CONFIG --folds K`: one ordinary run per fold, in one folder, and their mean and spread.

The folder is `runs/<name>/cv-<id>/`, `<id>` a digest of the resolved config (its folds included):
the same command finds the same folder, so after a kill it continues with the folds that are not done
(a fold killed after an epoch resumes from its last epoch; one killed before any is trained again
beside it, as `fold-<i>.2`). `--jobs N` starts N - 1 more processes on the same folder; each fold is
claimed under a lock, so no fold trains twice.

    runs/<name>/cv-<id>/
      fold-<i>/       an ordinary run (train.fold: i): evaluate, predict, export, compare it
      cv.json         every metric of every split: mean, spread (standard deviation) and per fold
      metrics.json    the means, as a run's metrics.json: `dlcli compare` takes the folder as one side
      run.json        the folder's status, for `dlcli runs` (one line, the test metric's mean ± spread)
      config.yaml     the config the folds share
      plots/folds.png the headline metric per fold, validation and test

    >>> result = cross_validate(config, Path("runs"))
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import keras

from dlcli import api
from dlcli.artifacts import saved
from dlcli.config.config import Config
from dlcli.io import data
from dlcli.runs import listing, plots, runs, scores
from dlcli.utils import files, processes
from dlcli.utils.errors import RunError


@dataclass
class CrossValidation:
    """What `dlcli train --folds` did: the folder, each fold's run, the summary (cv.json)."""

    folder: Path
    folds: list[Path]
    summary: dict = field(default_factory=dict)
    trained: list[int] = field(default_factory=list)  # the folds this process trained or resumed
    complete: bool = False


def folder_of(config: Config, runs_dir: Path) -> Path:
    """`runs_dir/<name>/cv-<digest of the resolved config>`: the same command, the same folder (the
    threads each process of --jobs is given change how fast, not what, so they are left out)."""
    raw = config.to_yaml_dict()
    raw["train"].pop("intra_op_threads", None)
    return Path(runs_dir) / config.name / f"cv-{runs.config_id(raw)}"


def fold_config(config: Config, fold: int) -> Config:
    """The config of one fold's run: the shared one with `train.fold` set."""
    return config.model_copy(update={"train": config.train.model_copy(update={"fold": fold})})


def cross_validate(
    config: Config,
    runs_dir: Path = runs.DEFAULT_RUNS_DIR,
    listener=None,
    jobs: int = 1,
    command: list[str] | None = None,
    worker: bool = False,
    say=print,
    device: str | None = None,
    folder: Path | None = None,
) -> CrossValidation:
    """Train every fold that is not done (`jobs` processes at once; `command` repeats this one for the
    others, `worker` marks one of them), then summarize when all are. `folder`: this one instead of
    `folder_of` (a trial of `dlcli tune` with search.folds)."""
    folder = (folder or folder_of(config, runs_dir)).absolute()
    if not (folder / "run.json").is_file():
        data.load(fold_config(config, 1))  # folds that cannot be made fail before the folder exists
    files.check_writable(folder, f"{folder} (the folds' folder)", "choose another with --run-dir")
    folder.mkdir(parents=True, exist_ok=True)
    if not worker:
        _start(folder, config)
    result = CrossValidation(folder, [])
    with _workers(jobs, command, folder, config, say) as threads, _quiet_retracing():
        if threads:  # this process's share of the cores, as each worker's
            config = config.model_copy(
                update={"train": config.train.model_copy(update={"intra_op_threads": threads})}
            )
        with runs.training_lock(folder) if not worker else nullcontext():
            for fold in range(1, config.train.folds + 1):
                if _train_fold(config, folder, fold, listener, say, device):
                    result.trained.append(fold)
    result.folds = [f for f in (_latest(folder, i) for i in range(1, config.train.folds + 1)) if f]
    done = [f for f in result.folds if _completed(f)]
    if not worker and len(done) == config.train.folds:
        result.summary, result.complete = summarize(folder, config, done), True
    return result


@contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Each fold builds its own model, whose functions TensorFlow traces again: its warning that
    functions are retraced in a loop says nothing here (WARNING lines of the `tensorflow` logger)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _start(folder: Path, config: Config) -> None:
    if not (folder / "config.yaml").is_file():
        saved.save_config(folder, config)
    record = _record(folder)
    if record.get("status") != "completed":
        record.setdefault("started_at", datetime.now().isoformat(timespec="seconds"))
        record.update(name=config.name, folds=config.train.folds, status="running")
        files.write_json(folder / "run.json", record)


def _record(folder: Path) -> dict:
    """The folder's run.json so far ({} before the first start)."""
    return files.read_json(folder / "run.json") if (folder / "run.json").is_file() else {}


def _candidates(folder: Path, fold: int) -> list[Path]:
    """fold-<i>, then fold-<i>.2, .3 … (a fold killed before its first epoch is trained again beside it)."""
    return [folder / f"fold-{fold}"] + [folder / f"fold-{fold}.{n}" for n in range(2, 100)]


def _latest(folder: Path, fold: int) -> Path | None:
    existing = [p for p in _candidates(folder, fold) if p.exists()]
    return existing[-1] if existing else None


def _train_fold(config: Config, folder: Path, fold: int, listener, say, device: str | None) -> bool:
    """Train (or resume) fold `fold` unless it is done or another process holds it; whether it did."""
    with runs.held(folder / f".fold-{fold}.lock") as mine:  # another process of --jobs may hold it
        if not mine:
            return False
        last = _latest(folder, fold)
        if _completed(last):
            return False
        try:
            if last is not None and (last / "checkpoints" / "resume.json").is_file():
                say(f"fold {fold}/{config.train.folds}: resuming {last}")
                api.resume(last, listener=listener, device=device, light_model=False)
            else:  # never started, or killed before its first epoch: a directory of its own
                run_dir = next(p for p in _candidates(folder, fold) if not p.exists())
                say(f"fold {fold}/{config.train.folds}: training {run_dir}")
                api.train(
                    fold_config(config, fold),
                    listener=listener,
                    run_dir=run_dir,
                    device=device,
                    light_model=False,
                )
        finally:
            keras.backend.clear_session(free_memory=True)
        return True


def summarize(folder: Path, config: Config, done: list[Path]) -> dict:
    """cv.json, metrics.json (the means), run.json completed and plots/folds.png, from the folds' runs."""
    per_fold = [json.loads((run / "metrics.json").read_text()) for run in done]
    summary: dict = {"folds": len(done), "runs": [str(run) for run in done], "splits": {}}
    for split in per_fold[0]:
        flat = [scores.flatten(m.get(split, {})) for m in per_fold]
        names = [k for k, v in flat[0].items() if isinstance(v, (int, float)) and "per_class" not in k]
        summary["splits"][split] = {
            name: _spread([f[name] for f in flat if isinstance(f.get(name), (int, float))]) for name in names
        }
    files.write_json(folder / "cv.json", summary)
    means = {split: {k: v["mean"] for k, v in values.items()} for split, values in summary["splits"].items()}
    files.write_json(folder / "metrics.json", means)
    record = _record(folder)
    rows = [listing.summary(run) for run in done]
    record.update(
        status="completed",
        duration_s=round(sum(r["duration_s"] or 0 for r in rows), 3),
        epochs={"completed": sum(r["epochs"] or 0 for r in rows)},
    )
    files.write_json(folder / "run.json", record)
    if config.train.plots:
        plots.folds(summary["splits"], folder / "plots" / "folds.png")
    return summary


def _spread(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "folds": values,
    }


@contextmanager
def _workers(jobs: int, command: list[str] | None, folder: Path, config: Config, say) -> Iterator[int | None]:
    """`jobs - 1` more processes of `command` (this `dlcli train --folds`, marked as a worker), the
    cores divided between all (train.intra_op_threads: yields each one's share); waited for at the end."""
    threads, commands = None, []
    left = sum(1 for f in range(1, config.train.folds + 1) if not _completed(_latest(folder, f)))
    count, share = processes.bounded(jobs, left, "fold(s)", say) if jobs > 1 else (1, None)
    if count > 1:
        if command is None:
            raise RunError("--jobs needs the command to repeat for its other processes")
        threads = share
        extra = ["--fold-worker", "-q", "-o", f"train.intra_op_threads={threads}"]
        commands = [[sys.executable, "-m", "dlcli", *command, *extra]] * (count - 1)
    with processes.started(commands):
        yield threads


def _completed(run: Path | None) -> bool:
    """Whether `run` (a fold's run directory, or None: not started) completed."""
    return run is not None and listing.summary(run)["status"] == "completed"
