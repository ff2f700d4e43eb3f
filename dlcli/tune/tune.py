"""`dlcli tune CONFIG`: a hyperparameter search on Optuna, made of ordinary runs.

The search lives in one folder, `runs/<name>/tune-<id>/`, where `<id>` is a digest of the resolved
config (its search section and overrides included): the same command finds the same folder, so
rerunning it after a kill continues the study, and two processes started with it share one study.

    runs/<name>/tune-<id>/
      tune.json          the study's name, storage, metric, direction and the trials asked for
      study.db           Optuna's study in SQLite (unless --storage names another database)
      trial-<n>/         one ordinary run directory per trial (evaluate, predict, compare, --resume)
      trials.csv         every trial: parameters, metric, epochs, state, duration
      best.yaml          the best trial's resolved config, without the search section: `dlcli train` it
      plots/             optimization history, parameter importances, parallel coordinates

A trial is asked for under a file lock, only while fewer than the wanted trials are finished or
running, so processes that share the study never run more than asked. Each epoch's validation value
is reported to the pruner; a pruned trial's run is marked `pruned`. A trial whose process died (a
RUNNING trial of this machine whose process is gone) is marked failed and asked again with the same
parameters, resuming its run directory from its last epoch.

    >>> result = tune(Path("configs/housing_search.yaml"), trials=30, jobs=2)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import keras
import optuna
import pandas as pd
from optuna.trial import TrialState

from dlcli import api
from dlcli.config import search
from dlcli.config.config import Config, load_config
from dlcli.crossval import crossval
from dlcli.models import model as model_mod
from dlcli.runs import runs
from dlcli.training import direction
from dlcli.utils import files, processes
from dlcli.utils.errors import ConfigError, DataError, DlcliError, Pruned, RunError, TrainingFailed


@dataclass
class Search:
    """One study: its folder, config, space and how trials are judged."""

    path: Path
    overrides: list[str]
    config: Config
    space: list[search.Param]
    folder: Path
    storage: str
    study_name: str
    metric: str
    direction: str
    trials: int
    worker: int = 0
    threads: int | None = None
    say: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)


def direction_of(config: Config, metric: str) -> str:
    asked = config.search.direction
    if asked != "auto":
        return asked
    found = direction.configured_direction(
        direction.metric_of(config, metric), config.where("search", "metric")
    )
    return "maximize" if found == "max" else "minimize"


def open_search(
    path: Path,
    overrides: list[str] | tuple[str, ...] = (),
    trials: int | None = None,
    storage: str | None = None,
    runs_dir: Path | str = runs.DEFAULT_RUNS_DIR,
    say: Callable[[str], None] = print,
) -> Search:
    """The search CONFIG describes: its folder (made if new) and its checked space."""
    config = load_config(path, overrides)
    if config.search is None:
        raise ConfigError(
            f"{path}: no search section; add one (`search: {{parameters: {{optimizer.learning_rate: "
            "{loguniform: [1.0e-4, 1.0e-2]}}}}`) to say what dlcli tune varies"
        )
    space = search.parse(config.search.parameters, config.where)
    metric = config.search.metric or config.checkpoint_monitor()  # checked by validate (checks.py)
    digest = runs.config_id([config.to_yaml_dict(), list(overrides)])
    folder = Path(runs_dir) / config.name / f"tune-{digest}"
    files.check_writable(folder, f"{folder} (the study's folder)", "choose another with --run-dir")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = trials or config.search.trials
    if config.search.sampler == "grid":
        size = math.prod(len(p.grid()) for p in space)
        wanted = min(wanted, size)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    name = f"{config.name}-{digest}"
    found = Search(
        path, list(overrides), config, space, folder, url, name, metric, direction_of(config, metric), wanted
    )
    found.say = say
    _write_description(found)
    return found


def _write_description(s: Search) -> None:
    described = {
        "study": s.study_name,
        "storage": shown_url(s.storage),
        "config": str(Path(s.path).resolve()),
        "overrides": s.overrides,
        "metric": s.metric,
        "direction": s.direction,
        "trials": s.trials,
        "sampler": s.config.search.sampler,
        "pruner": s.config.search.pruner,
    }
    files.write_json(s.folder / "tune.json", described)


def sampler_for(s: Search, number: int):
    """The sampler that draws trial `number`'s values, seeded by the config's seed and that number:
    whichever process asks (a second `dlcli tune`, a --jobs worker, a rerun after a kill, another
    machine on a shared database), each trial draws from its own random stream, so no two trials
    repeat one another's values (TPE learns from the study's history as before)."""
    settings = s.config.search
    seed = int.from_bytes(hashlib.sha256(f"{s.config.seed}:{number}".encode()).digest()[:4], "big")
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna shuffles the grid by the seed and records a trial's cell by its place in that order, so
    # every trial's sampler shuffles alike (the config's seed): a seed per trial made one cell's number
    # mean another cell to the next trial, which then ran a cell twice and skipped one. The cells still
    # go once each: a new one is drawn from those no trial has started.
    return optuna.samplers.GridSampler({p.path: p.grid() for p in s.space}, seed=s.config.seed)


def study(s: Search):
    """The Optuna study (made or joined); each trial's sampler comes from sampler_for()."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = s.config.search
    sampler = sampler_for(s, 0)
    # no trial is judged on its first epochs (a tenth of them, 1 to 10): an epoch-1 loss ranks batch
    # sizes and learning rates by how fast they start, not by where they end
    warmup = max(1, min(10, s.config.train.epochs // 10))
    if settings.pruner == "median":
        # the bar is the median of the finished curves, and none is pruned before a tenth of the
        # budget (2 to 5) has finished: Optuna's 5 is for open-ended studies, and of 30 trials it
        # leaves a sixth unprunable (benchmarks/tune_pruning.py measures the difference)
        startup = max(2, min(5, s.trials // 10))
        pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    elif settings.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=s.config.train.epochs)
    else:
        pruner = optuna.pruners.NopPruner()
    try:
        storage = s.storage
        if storage.startswith("sqlite"):  # processes sharing the file wait for its lock, not fail
            storage = optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 120}})
        return optuna.create_study(
            study_name=s.study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=s.direction,
            load_if_exists=True,
        )
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, its drivers and Optuna raise many kinds
        raise DataError(storage_problem(s.storage, exc)) from None


def shown_url(url: str) -> str:
    """A database URL without its password, for messages and tune.json."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def storage_problem(url: str, exc: Exception) -> str:
    """What is wrong with a study's storage, in words: a URL that is not a database's, a missing
    driver, a server that does not answer, a file that is not SQLite or cannot be written."""
    shown, text = shown_url(url), str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    name = type(exc).__name__
    where = f"--storage {shown}" if not url.startswith("sqlite:///") else url.removeprefix("sqlite:///")
    if name in ("ArgumentError", "NoSuchModuleError"):
        return (
            f"{where}: not a database URL Optuna can use ({first}); expected sqlite:///path/study.db, "
            "postgresql://user:password@host:5432/database or mysql://…, or leave --storage out for "
            "SQLite in the study's folder"
        )
    if isinstance(exc, ModuleNotFoundError) or "Failed to import DB access module" in first:
        return (
            f"{where}: the database driver for this URL is not installed ({first}); for PostgreSQL it "
            "comes with the 'tune' extra (pip install 'dlcli[tune]'), for others install their driver"
        )
    if "file is not a database" in first or "malformed" in first:
        return (
            f"{where}: not an SQLite database (corrupted, or a file of another kind: {first}); move it "
            "away to start the study afresh, or restore it from a copy"
        )
    if "readonly" in first or "unable to open database file" in first or "Permission" in first:
        return f"{where}: cannot be opened for writing ({first}); make its folder writable, or choose another"
    return (
        f"{where}: cannot open the study there ({name}: {first}); check that the database server runs, "
        "answers at that address and lets that user in"
    )


@contextmanager
def _asking(folder: Path):
    """One process at a time asks for a trial (a file lock in the study's folder)."""

    with open(folder / ".ask.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def counted(study_) -> int:
    """Trials that count towards the number asked for: finished (completed, pruned, or failed in
    training) or running; not those lost with their process (asked again: their retry counts)."""
    trials = study_.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return sum(
        1 for t in trials if t.state in live or (t.state == TrialState.FAIL and t.number not in retried)
    )


def retried_numbers(trials) -> set[int]:
    """The numbers of trials lost with their process and asked again (their retries name them)."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def recover_lost(study_, s: Search) -> None:
    """RUNNING trials of this machine whose process is gone: failed, and asked again with the same
    parameters, to resume their run directory."""
    host = socket.gethostname()
    for t in study_.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None or _alive(pid):
            continue
        tell(study_, t.number, state=TrialState.FAIL)
        run_dir = t.user_attrs.get("run_dir")
        study_.enqueue_trial(t.params, user_attrs={"resume_run": run_dir, "retry_of": t.number})
        s.say(f"trial {t.number}: its process is gone; asked again with its parameters, to resume {run_dir}")


def tell(study_, trial, value=None, state=None) -> None:
    """`study.tell`, where the grid sampler's "the grid is done, stop" (Study.stop, which works only
    inside Optuna's own optimize loop) is no error: the trial's state is written all the same, and
    run_trials stops by counting the study's trials."""
    try:
        study_.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Reporter:
    """A training listener that reports each epoch's `metric` to the trial and stops a trial the
    pruner gives up on (errors.Pruned, which marks its run `pruned`)."""

    def __init__(self, trial, metric: str, prune: bool):
        self.trial, self.metric, self.prune, self.epochs = trial, metric, prune, 0

    def train_begin(self, epochs: int, steps: int | None) -> None:
        pass

    def batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def epoch_end(self, epoch: int, logs: dict[str, float], replay: bool = False) -> None:
        self.epochs = epoch
        value = logs.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), epoch)
        if self.prune and not replay and self.trial.should_prune():
            raise Pruned(epoch, float(value))

    def train_end(self) -> None:
        pass


def run_trials(s: Search) -> None:
    """Ask for and run trials until the study has as many as wanted (or the timeout passed)."""
    with _asking(s.folder):  # one process at a time makes the database's tables
        study_ = study(s)
    _check_layers(s)
    timeout = s.config.search.timeout
    while True:
        with _asking(s.folder):
            recover_lost(study_, s)
            if counted(study_) >= s.trials or (timeout and time.monotonic() - s.started > timeout):
                return
            # the grid sampler picks its cell as the trial is made, the others their values at
            # suggest time: both by the sampler of the trial's number (the next one, under the lock)
            study_.sampler = sampler_for(s, len(study_.get_trials(deepcopy=False)))
            trial = study_.ask()
            study_.sampler = sampler_for(s, trial.number)
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            params = search.sample(trial, s.space)  # an asked-again trial gets its own values back
        _one(study_, trial, params, s, optuna)


def _check_layers(s: Search) -> None:
    """The layer arguments searched, each extreme value in a constructed layer (Keras checks them)."""

    for param in s.space:
        if not param.path.startswith(("model.layers.", "model.branches.", "model.heads.")):
            continue
        for what, value in param.extremes():
            config = load_config(s.path, [*s.overrides, search.override(param.path, value)])
            try:
                model_mod.check_layer_arguments(config)
            except ConfigError as exc:
                where = s.config.where("search", "parameters", param.path)
                raise ConfigError(search.rejected(where, param, what, value, exc)) from None


def trial_config(s: Search, params: dict[str, Any]) -> Config:
    """The config of one trial: the searched values in place, the search section left out."""
    threads = [f"train.intra_op_threads={s.threads}"] if s.threads else []
    config = load_config(s.path, [*s.overrides, *search.overrides(params), *threads])
    config.search = None
    return config


def _one(study_, trial, params: dict[str, Any], s: Search, optuna) -> None:
    if s.config.search.folds:
        return _folded(study_, trial, params, s, optuna)
    resume = trial.user_attrs.get("resume_run")
    run_dir = Path(resume) if resume and _has_epochs(Path(resume)) else s.folder / f"trial-{trial.number}"
    trial.set_user_attr("run_dir", str(run_dir))
    reporter = Reporter(trial, s.metric, s.config.search.pruner != "none")
    shown = ", ".join(f"{k} {_short(v)}" for k, v in params.items())
    try:
        if run_dir.exists():
            _replay(reporter, run_dir)
            if _status(run_dir) != "completed":
                s.say(f"trial {trial.number}: resuming {run_dir} ({shown})")
                api.resume(run_dir, listener=reporter, light_model=False)
        else:
            s.say(f"trial {trial.number}: {shown}")
            api.train(trial_config(s, params), listener=reporter, run_dir=run_dir, light_model=False)
    except Pruned as exc:
        trial.set_user_attr("epochs", exc.epoch)
        tell(study_, trial, state=optuna.trial.TrialState.PRUNED)
        s.say(f"trial {trial.number}: pruned after epoch {exc.epoch} ({s.metric} {exc.value:.4g})")
        return
    except TrainingFailed as exc:  # a diverged loss: an outcome of these values, not of the search
        tell(study_, trial, state=optuna.trial.TrialState.FAIL)
        s.say(f"trial {trial.number}: failed: {exc}")
        return
    except DlcliError as exc:
        from dlcli.utils.errors import Interrupted

        if not isinstance(exc, Interrupted):  # interrupted: left running, resumed by the next start
            tell(study_, trial, state=optuna.trial.TrialState.FAIL)
        raise
    finally:
        keras.backend.clear_session(free_memory=True)
    value, epochs = best_of(run_dir, s)
    trial.set_user_attr("epochs", epochs)
    tell(study_, trial, value)
    s.say(f"trial {trial.number}: {s.metric} {value:.4g} after {epochs} epochs")


def _folded(study_, trial, params: dict[str, Any], s: Search, optuna) -> None:
    """search.folds: the trial is a cross-validation folder; its value the mean over the folds of each
    fold's best epoch (folds killed part way are continued when the trial is asked again)."""
    folder = Path(trial.user_attrs.get("resume_run") or s.folder / f"trial-{trial.number}")
    trial.set_user_attr("run_dir", str(folder))
    shown = ", ".join(f"{k} {_short(v)}" for k, v in params.items())
    s.say(f"trial {trial.number}: {shown} ({s.config.search.folds} folds)")
    config = trial_config(s, params)
    config.train.folds = s.config.search.folds
    try:
        done = crossval.cross_validate(config, folder=folder, say=lambda _: None)
    except TrainingFailed as exc:
        tell(study_, trial, state=optuna.trial.TrialState.FAIL)
        s.say(f"trial {trial.number}: failed: {exc}")
        return
    bests = [best_of(run, s) for run in done.folds]
    value = sum(b[0] for b in bests) / len(bests)
    trial.set_user_attr("epochs", sum(b[1] for b in bests))
    tell(study_, trial, value)
    s.say(f"trial {trial.number}: {s.metric} {value:.4g}, the mean of {len(bests)} folds")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _has_epochs(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "resume.json").is_file() or _status(run_dir) == "completed"


def _replay(reporter: Reporter, run_dir: Path) -> None:
    """The epochs a run already has, reported to its new trial (so the pruner sees the whole curve)."""

    if (run_dir / "history.csv").is_file():
        for row in pd.read_csv(run_dir / "history.csv").to_dict("records"):
            reporter.epoch_end(int(row["epoch"]), row, replay=True)


def best_of(run_dir: Path, s: Search) -> tuple[float, int]:
    """The trial's value (the best epoch's `metric`, as early stopping keeps it) and its epochs."""

    history = pd.read_csv(run_dir / "history.csv")
    values = history[s.metric].astype("float64")
    values = values[values.map(math.isfinite)]
    if values.empty:
        raise RunError(f"{run_dir}: no finite {s.metric} in history.csv")
    return float(values.max() if s.direction == "maximize" else values.min()), len(history)


@contextmanager
def workers(s: Search, jobs: int):
    """`jobs - 1` more `dlcli tune` processes on the same study, the cores divided between all
    (train.intra_op_threads); each stops when the study has its trials. Waited for at the end."""

    commands = []
    jobs = _bounded_jobs(s, jobs)
    if jobs > 1 and s.worker == 0:
        s.threads = s.threads or max(1, (os.cpu_count() or 1) // jobs)
        command = [sys.executable, "-m", "dlcli", "tune", str(s.path), "--trials", str(s.trials)]
        command += [a for o in s.overrides for a in ("-o", o)]
        command += ["--run-dir", str(s.folder.parent.parent), "--threads", str(s.threads)]
        if not s.storage.startswith("sqlite"):
            command += ["--storage", s.storage]
        commands = [[*command, "--worker", str(j)] for j in range(1, jobs)]
    with processes.started(commands):
        yield


def _bounded_jobs(s: Search, jobs: int) -> int:
    """--jobs, never above the trials left to run nor the cores (each process trains on at least
    one): a note says what was capped."""
    if jobs <= 1 or s.worker != 0:
        return jobs
    with _asking(s.folder):
        left = max(0, s.trials - counted(study(s)))
    return processes.bounded(jobs, left, "trial(s)", s.say)[0]
