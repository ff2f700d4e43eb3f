"""train and resume as plain functions; no printing. Which run this is (fresh, resumed, a worker's
of a cluster) is decided here; stages.py carries it out. evaluate and predict are in inference.py.

>>> from dlcli import load_config, train, evaluate, predict
>>> result = train(load_config("configs/iris.yaml"))
>>> evaluate(result.run_dir)["accuracy"]
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from dlcli.artifacts import saved
from dlcli.config.config import Config, load_config
from dlcli.devices import compute, distribute
from dlcli.export import light
from dlcli.models import model as model_mod
from dlcli.runs import record as record_mod
from dlcli.runs import runs
from dlcli.training import finetune, stages
from dlcli.training import state as state_mod
from dlcli.utils import files
from dlcli.utils.errors import ConfigError, RunError


def train(
    config: Config,
    runs_dir: Path | str = runs.DEFAULT_RUNS_DIR,
    listener=None,
    command: list[str] | None = None,
    device: str | None = None,
    run_dir: Path | None = None,
    light_model: bool = True,
) -> stages.TrainResult:
    """Validate, load, fit preprocessing on train only, build, train, score every split, save.

    The data is loaded and checked before the run directory is made: a data error leaves nothing.
    `device`: cpu, gpu or gpu:N (see distribute.py); None uses what TensorFlow finds. `run_dir`:
    this exact (new) directory instead of `runs_dir/<name>/<stamp>` (a trial of `dlcli tune`).
    `light_model`: leave the checked ONNX/TFLite model in export/ (train.light_model permitting).
    """
    device = distribute.parse_device(device)
    chief = distribute.is_chief(config)
    folder = Path(runs_dir) / config.name
    if chief:
        files.check_writable(folder, f"{folder} (the runs folder)", "choose another with --run-dir")
    asked = light.choice(config) if light_model and chief else None  # a bad choice fails first
    compute.import_tensorflow()
    placement = _placement(config, device)
    model_mod.check_layer_arguments(config)  # a bad argument fails before any data or run directory
    command = command or record_mod.command_line()
    prepared = stages.prepare(config, progress=getattr(listener, "rows", None), placement=placement)
    if not chief:
        return _run_as_worker(config, placement, listener, command, prepared)
    if run_dir is None:
        run_dir = runs.create(Path(runs_dir), config.name)
    else:
        run_dir.mkdir(parents=True)
    with runs.training_lock(run_dir):
        saved.save_config(run_dir, config)
        if config.written is not None:  # `dlcli train DATA --target COL`: the config it wrote
            files.write_atomic(run_dir / "init.yaml", config.written)
        files.write_atomic(run_dir / "preprocessing.json", prepared.prep.to_json())
        record = record_mod.RunRecord(run_dir, config, command)
        result = stages.run(stages.Job(config, run_dir, record, prepared, placement, listener))
        return _with_light_model(result, config, asked)


def _with_light_model(result: stages.TrainResult, config: Config, asked: str | None) -> stages.TrainResult:
    """The finished run's light model (export/light.py); none at all for a trial or a fold (None)."""
    if asked is not None:
        result.light_model = light.write(result.run_dir, config, asked)
    return result


def _placement(config: Config, device: str | None) -> distribute.Placement:
    """`device` already checked by distribute.parse_device (before TensorFlow was imported)."""
    distribute.select_device(device)
    return distribute.place(config)


def _run_as_worker(
    config: Config,
    placement: distribute.Placement,
    listener,
    command: list[str],
    prepared: stages.Prepared,
    source: Path | None = None,
) -> stages.TrainResult:
    """A worker other than the chief: the same training, in a temporary folder removed at the end."""
    with _worker_dir(config, placement, source, prepared.prior) as work_dir:
        saved.save_config(work_dir, config)
        record = record_mod.RunRecord(work_dir, config, command)
        return stages.run(stages.Job(config, work_dir, record, prepared, placement, listener))


@contextmanager
def _worker_dir(
    config: Config,
    placement: distribute.Placement,
    source: Path | None = None,
    prior: state_mod.ResumeState | None = None,
):
    """A worker other than the chief writes its checkpoints to a temporary folder, removed at the end.

    On `--resume` it starts from a copy of the chief's run directory: every worker restores the
    chief's checkpoint (their weights were identical when it was written).
    """

    work_dir = Path(tempfile.mkdtemp(prefix=f"dlcli-{config.name}-worker{placement.worker}-"))
    try:
        if source is not None and prior is not None:
            names = ["preprocessing.json", "history.csv", "checkpoints/resume.json", "checkpoints/best.keras"]
            for name in [*names, f"checkpoints/{prior.checkpoint}"]:
                if (source / name).is_file():
                    (work_dir / name).parent.mkdir(exist_ok=True)
                    shutil.copyfile(source / name, work_dir / name)
        yield work_dir
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def resume(
    run: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    config_path: str | Path | None = None,
    runs_dir: Path | str = runs.DEFAULT_RUNS_DIR,
    listener=None,
    command: list[str] | None = None,
    device: str | None = None,
    light_model: bool = True,
) -> stages.TrainResult:
    """Continue a run from its last completed epoch, in the same run directory.

    Only `train.epochs` and `train.early_stopping.patience` may change; anything else is refused.
    Under multi_worker every worker resumes from the chief's run directory; only the chief writes it.
    """
    device = distribute.parse_device(device)
    run_dir = runs.resolve(run, Path(runs_dir))
    config, changed = _resume_config(run, run_dir, overrides, config_path)
    command = command or record_mod.command_line()
    if not distribute.is_chief(config):
        prior = _prior(run, run_dir, config, changed)
        compute.import_tensorflow()
        placement = _placement(config, device)
        return _run_as_worker(
            config,
            placement,
            listener,
            command,
            stages.prepare(config, run_dir, prior, getattr(listener, "rows", None), placement),
            run_dir,
        )
    asked = light.choice(config) if light_model and distribute.is_chief(config) else None
    with runs.training_lock(run_dir):
        prior = _prior(run, run_dir, config, changed)
        compute.import_tensorflow()
        placement = _placement(config, device)
        runs.remove_leftovers(run_dir)
        saved.save_config(run_dir, config)
        record = record_mod.RunRecord.reopen(run_dir, command)
        result = stages.run(
            stages.Job(
                config,
                run_dir,
                record,
                stages.prepare(config, run_dir, prior, getattr(listener, "rows", None), placement),
                placement,
                listener,
            )
        )
        return _with_light_model(result, config, asked)


def _resume_config(run, run_dir: Path, overrides, config_path) -> tuple[Config, list[str]]:
    before = saved.load_config(run_dir)
    config = load_config(config_path or run_dir / "config.yaml", overrides)
    changed = config_changes(before, config)
    refused = [c for c in changed if c.split(":")[0] not in RESUMABLE_CHANGES]
    if refused:
        raise ConfigError(
            [
                f"--resume {run}: only {', '.join(sorted(RESUMABLE_CHANGES))} may change when "
                "resuming; these differ from the run's config.yaml:",
                *refused,
            ]
        )
    return config, changed


def _prior(run, run_dir: Path, config: Config, changed: list[str]) -> state_mod.ResumeState:
    """The resume state of the run's last committed epoch, or why there is nothing to resume."""
    prior = state_mod.read_resume(run_dir)
    if prior is None:
        raise RunError(
            f"--resume {run}: nothing to resume, no epoch of {run_dir} completed; start a new run "
            f"with `dlcli train CONFIG`"
        )
    patience_raised = "train.early_stopping.patience" in [c.split(":")[0] for c in changed]
    if config.train.fine_tune is not None:
        if finetune.finished(config, prior) and not (patience_raised and prior.stopped_early):
            raise RunError(
                f"--resume {run}: the run completed both phases after epoch {prior.epoch}; to train "
                "on, raise -o train.fine_tune.epochs=N"
            )
        return prior
    if prior.epoch >= config.train.epochs or (prior.stopped_early and not patience_raised):
        why = "stopped early" if prior.stopped_early and prior.epoch < config.train.epochs else "completed"
        raise RunError(
            f"--resume {run}: the run {why} after epoch {prior.epoch} of {config.train.epochs}; "
            "to train on, raise -o train.epochs=N (or -o train.early_stopping.patience=N)"
        )
    return prior


#: What `--resume` may change: training continues exactly as before otherwise.
RESUMABLE_CHANGES = {"train.epochs", "train.early_stopping.patience", "train.fine_tune.epochs"}


def config_changes(old: Config, new: Config) -> list[str]:
    """`key.path: old → new` for every value that differs."""
    a, b = runs.flatten(old.to_yaml_dict()), runs.flatten(new.to_yaml_dict())
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
