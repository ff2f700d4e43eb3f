"""train and resume as plain functions; no printing. evaluate and predict are in inference.py.

>>> from dlcli import load_config, train, evaluate, predict
>>> result = train(load_config("configs/iris.yaml"))
>>> evaluate(result.run_dir)["accuracy"]
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import compute, distribute, plots, runs, scoring, tracking
from dlcli import data as data_mod
from dlcli import model as model_mod
from dlcli import state as state_mod
from dlcli import train as train_mod
from dlcli.config import Config, load_config
from dlcli.errors import ConfigError, DataError, DlcliError, Interrupted, RunError, TrainingFailed
from dlcli.preprocessing import Preprocessor


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, dict]
    epochs: int
    best_epoch: int | None
    warnings: list[str] = field(default_factory=list)
    placement: dict = field(default_factory=dict)  # run.json's `distribution`
    chief: bool = True  # False: a multi_worker worker whose run directory was temporary


def train(
    config: Config,
    run_root: Path | str = runs.DEFAULT_ROOT,
    listener=None,
    command: list[str] | None = None,
    device: str | None = None,
) -> TrainResult:
    """Validate, load, fit preprocessing on train only, build, train, score every split, save.

    `device`: cpu, gpu or gpu:N (see distribute.py); None uses what TensorFlow finds.
    """
    device = distribute.parse_device(device)
    chief = distribute.is_chief(config)
    folder = Path(run_root) / config.name
    if chief:
        runs.check_writable(folder, f"{folder} (the runs folder)", "choose another with --run-dir")
    compute.import_tensorflow()
    placement = _placement(config, device)
    model_mod.check_layer_arguments(config)  # a bad argument fails before any data or run directory
    command = command or runs.command_line()
    if not chief:
        return _run_as_worker(config, placement, listener, command)
    run_dir = runs.create(Path(run_root), config.name)
    with runs.training_lock(run_dir):
        runs.save_config(run_dir, config)
        record = runs.RunRecord(run_dir, config, command)
        return _run(config, run_dir, record, listener, None, placement)


def _placement(config: Config, device: str | None) -> distribute.Placement:
    """`device` already checked by distribute.parse_device (before TensorFlow was imported)."""
    distribute.select_device(device)
    return distribute.place(config)


def _run_as_worker(
    config: Config,
    placement: distribute.Placement,
    listener,
    command: list[str],
    prior: dict | None = None,
    source: Path | None = None,
) -> TrainResult:
    """A worker other than the chief: the same training, in a temporary folder removed at the end."""
    with _worker_dir(config, placement, source, prior) as work_dir:
        runs.save_config(work_dir, config)
        return _run(config, work_dir, runs.RunRecord(work_dir, config, command), listener, prior, placement)


@contextmanager
def _worker_dir(
    config: Config, placement: distribute.Placement, source: Path | None = None, prior: dict | None = None
):
    """A worker other than the chief writes its checkpoints to a temporary folder, removed at the end.

    On `--resume` it starts from a copy of the chief's run directory: every worker restores the
    chief's checkpoint (their weights were identical when it was written).
    """
    import shutil
    import tempfile

    work_dir = Path(tempfile.mkdtemp(prefix=f"dlcli-{config.name}-worker{placement.worker}-"))
    try:
        if source is not None and prior is not None:
            names = ["preprocessing.json", "history.csv", "checkpoints/resume.json", "checkpoints/best.keras"]
            for name in [*names, f"checkpoints/{prior['checkpoint']}"]:
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
    root: Path | str = runs.DEFAULT_ROOT,
    listener=None,
    command: list[str] | None = None,
    device: str | None = None,
) -> TrainResult:
    """Continue a run from its last completed epoch, in the same run directory.

    Only `train.epochs` and `train.early_stopping.patience` may change; anything else is refused.
    Under multi_worker every worker resumes from the chief's run directory; only the chief writes it.
    """
    device = distribute.parse_device(device)
    run_dir = runs.resolve(run, Path(root))
    config, changed = _resume_config(run, run_dir, overrides, config_path)
    command = command or runs.command_line()
    if not distribute.is_chief(config):
        prior = _prior(run, run_dir, config, changed)
        compute.import_tensorflow()
        placement = _placement(config, device)
        return _run_as_worker(config, placement, listener, command, prior, source=run_dir)
    with runs.training_lock(run_dir):
        prior = _prior(run, run_dir, config, changed)
        compute.import_tensorflow()
        placement = _placement(config, device)
        runs.remove_leftovers(run_dir)
        runs.save_config(run_dir, config)
        record = runs.RunRecord.reopen(run_dir, command)
        return _run(config, run_dir, record, listener, prior, placement)


def _resume_config(run, run_dir: Path, overrides, config_path) -> tuple[Config, list[str]]:
    saved = runs.load_config(run_dir)
    config = load_config(config_path or run_dir / "config.yaml", overrides)
    changed = config_changes(saved, config)
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


def _prior(run, run_dir: Path, config: Config, changed: list[str]) -> dict:
    """The resume state of the run's last committed epoch, or why there is nothing to resume."""
    prior = state_mod.read_resume(run_dir)
    if prior is None:
        raise RunError(
            f"--resume {run}: nothing to resume, no epoch of {run_dir} completed; start a new run "
            f"with `dlcli train CONFIG`"
        )
    stopped = (prior.get("early_stopping") or {}).get("stopped")
    if prior["epoch"] >= config.train.epochs or (
        stopped and "train.early_stopping.patience" not in [c.split(":")[0] for c in changed]
    ):
        why = "stopped early" if stopped and prior["epoch"] < config.train.epochs else "completed"
        raise RunError(
            f"--resume {run}: the run {why} after epoch {prior['epoch']} of {config.train.epochs}; "
            "to train on, raise -o train.epochs=N (or -o train.early_stopping.patience=N)"
        )
    return prior


#: What `--resume` may change: training continues exactly as before otherwise.
RESUMABLE_CHANGES = {"train.epochs", "train.early_stopping.patience"}


def config_changes(old: Config, new: Config) -> list[str]:
    """`key.path: old → new` for every value that differs."""
    a, b = runs.flatten(old.to_yaml_dict()), runs.flatten(new.to_yaml_dict())
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _run(
    config: Config,
    run_dir: Path,
    record: runs.RunRecord,
    listener,
    prior: dict | None,
    placement: distribute.Placement,
) -> TrainResult:
    """Train (fresh or resumed), keeping the status in run.json (and MLflow) true whatever happens."""
    tracker = None
    try:
        tracker = tracking.start(config, run_dir, record.data) if placement.chief else None
        if tracker is not None:
            record.save()  # with the MLflow run id, for --resume
            listener = tracking.Relay(listener, tracker)
        result = _train(config, run_dir, record, listener, prior, placement)
    except Interrupted as exc:
        _finish(record, tracker, "interrupted", str(exc))
        raise
    except DlcliError as exc:
        _finish(record, tracker, "failed", str(exc))
        raise
    except BaseException as exc:
        _finish(record, tracker, "failed", f"{type(exc).__name__}: {exc}")
        raise
    record.finish("completed")
    if not placement.chief:
        return result
    runs.mark_latest(run_dir)
    warning = tracker.finish("completed", result.metrics) if tracker is not None else None
    result.warnings += [warning] if warning else []
    return result


def _finish(record: runs.RunRecord, tracker, status: str, error: str) -> None:
    record.finish(status, error)
    if tracker is not None:
        tracker.finish(status)  # a tracking failure here would hide the run's own error: it only warns


def _train(
    config: Config,
    run_dir: Path,
    record: runs.RunRecord,
    listener,
    prior: dict | None,
    placement: distribute.Placement,
) -> TrainResult:
    timings = record.data["timings"]
    clock = time.perf_counter()
    deterministic = config.train.deterministic
    if deterministic == "auto" and config.train.jit_compile is True:
        deterministic = False  # asked-for XLA wins over automatic determinism (they exclude each other)
    record.data["deterministic"] = compute.seed_everything(config.seed, deterministic)
    record.data["device"] = compute.device_name()
    loaded = data_mod.load(config)
    record.data["data"] = {
        "source": loaded.source,
        "sha256": loaded.sha256,
        "rows": {k: _rows(v) for k, v in loaded.splits.items()},
    }
    if config.has_validation and "validation" not in loaded.splits:
        raise DataError(
            f"{loaded.source}: no validation rows, but the config monitors validation "
            "quantities: give data.split.validation a fraction or add validation rows"
        )
    state_path = run_dir / "preprocessing.json"
    if prior is not None and state_path.is_file():
        prep = Preprocessor.from_json(state_path.read_text(encoding="utf-8"), str(state_path))
    else:
        prep = Preprocessor.fit(config, loaded.splits["train"], loaded.source)
        runs.write_atomic(state_path, prep.to_json())
    sets = scoring.split_examples(prep, loaded)
    timings["load_s"] = round(time.perf_counter() - clock, 3)
    record.save()

    rescale = prep.image["rescale"] if prep.image else None
    threads = compute.set_intra_op_threads(config, prep.input_shape)  # before the first op runs
    placement.start()  # the strategy: TensorFlow's runtime starts here
    record.data["distribution"] = placement.describe()
    steps_per_execution = compute.steps_per_execution(config, placement.distributed)
    with placement.scope():  # variables (model, optimizer, metrics) are made in the strategy's scope
        model = model_mod.build(config, prep.input_shape, prep.input_dtype, prep.n_classes, rescale)
        model_mod.compile_model(model, config, steps_per_execution)
        if prior is not None:
            model.optimizer.build(model.trainable_variables)
    record.data["compute"] = {
        "steps_per_execution": steps_per_execution,
        "jit_compile": bool(model.jit_compile),
        "dtype_policy": model.dtype_policy.name,
        "intra_op_threads": threads,
    }
    first_epoch, history_rows = 0, []
    if prior is not None:
        first_epoch = prior["epoch"]
        model.load_weights(run_dir / "checkpoints" / prior["checkpoint"])  # weights and optimizer state
        state_mod.restore_seed_states(model, prior["seed_states"])
        history_rows = state_mod.truncate_history(run_dir, first_epoch)
    x, y = scoring.training_arrays(prep, sets["train"])
    batch = config.train.batch_size
    steps = -(-len(x) // batch)
    train_ds, epoch_var = compute.training_dataset(x, y, batch, config.seed)
    val_ds = sets["validation"].dataset(prep, batch) if "validation" in sets else None
    clock = time.perf_counter()
    halt = train_mod.Halt()
    resume_from = run_dir.resolve() if placement.chief else "<the chief's run directory>"
    try:
        with train_mod.stop_on_signals(halt):
            timer = train_mod.fit(
                model,
                train_ds,
                val_ds,
                config,
                run_dir,
                listener,
                steps,
                halt,
                first_epoch,
                prior,
                history_rows,
                epoch_var,
            )
    except Exception as exc:
        if placement.kind != "multi_worker" or not distribute.is_cluster_error(exc):
            raise
        done = state_mod.read_resume(run_dir)
        raise TrainingFailed(
            f"{distribute.cluster_error_summary(exc)}; stopped after {done['epoch'] if done else 0} "
            f"completed epoch(s). Restart every worker with: dlcli train --resume {resume_from}"
        ) from None
    timings["fit_s"] = round(timings.get("fit_s", 0) + time.perf_counter() - clock, 3)
    if prior is None:
        timings["first_step_s"] = timer.first_step_s
    done = state_mod.read_resume(run_dir)
    epochs = done["epoch"] if done else 0
    best_epoch = done["best_epoch"] if done else None
    # one time per committed epoch: a partial epoch (signal, divergence) is not one
    timings["epoch_s"] = (timings.get("epoch_s", [])[:first_epoch] + timer.epoch_s)[:epochs]
    record.data["epochs"] = {"completed": epochs, "best": best_epoch, "monitor": config.checkpoint_monitor()}
    has_best = (run_dir / "checkpoints" / "best.keras").is_file()
    if not halt or has_best:
        state_mod.save_atomic(model, run_dir / "model.keras")  # after a stop: the best checkpoint's weights
    if halt and config.train.plots:
        plots.learning_curves(run_dir, config.checkpoint_monitor(), best_epoch if has_best else None)
    if halt.signum is not None:
        raise Interrupted(halt.signum, resume_from, epochs)
    if halt.diverged is not None:
        raise TrainingFailed(
            _divergence_message(
                halt.diverged, config, model.optimizer, best_epoch if has_best else None, resume_from
            )
        )
    if placement.distributed:  # every replica of every worker ends with these same weights
        record.data["distribution"]["weights_sha256"] = compute.weights_digest(model)
    if not placement.chief:  # the chief scores, plots and writes the run directory
        return TrainResult(
            run_dir, {}, epochs, best_epoch, placement=record.data["distribution"], chief=False
        )

    del train_ds, val_ds, x, y
    compute.release_training_memory(model)
    if placement.distributed:  # score as `dlcli evaluate` does: the saved model, outside the strategy
        del model
        model = runs.load_model(run_dir)
    clock = time.perf_counter()
    metrics, predicted = {}, {}
    for name, ex in sets.items():
        metrics[name], predicted[name] = scoring.score(prep, config, model, ex)
    runs.write_json(run_dir / "metrics.json", metrics)
    timings["evaluate_s"] = round(time.perf_counter() - clock, 3)
    warnings = list(prep.warnings)
    if config.train.plots:
        clock = time.perf_counter()
        split = next(s for s in ("test", "validation", "train") if s in predicted)
        shown = (split, sets[split].y_raw, predicted[split], sets[split].when)
        # the inputs are no longer needed: drawing then adds nothing to the run's peak memory
        del sets, loaded, predicted, ex
        compute.release_training_memory(model)
        warnings += plots.write_run_plots(run_dir, prep, config.checkpoint_monitor(), best_epoch, *shown)
        timings["plots_s"] = round(time.perf_counter() - clock, 3)
    return TrainResult(run_dir, metrics, epochs, best_epoch, warnings, record.data["distribution"])


def _rows(part: Any) -> int:
    return len(part[0]) if isinstance(part, tuple) else len(part)


def _divergence_message(
    diverged: tuple, config: Config, optimizer, best_epoch: int | None, run_dir: Path
) -> str:
    epoch, batch, value = diverged
    kept = (
        f"model.keras holds the best checkpoint (epoch {best_epoch}); `dlcli evaluate {run_dir}` works on it"
        if best_epoch
        else "no epoch finished with a finite loss, so there is no model to keep"
    )
    return (
        f"the loss became {value} in epoch {epoch} at batch {batch}; training stopped and the run is marked "
        f"failed. {kept}. Lower optimizer.learning_rate{_lower_rate(config, optimizer)}, or scale the "
        "inputs and target (preprocessing.numeric.scale, preprocessing.target.scale)"
    )


def _lower_rate(config: Config, optimizer) -> str:
    """A learning rate to try: the optimizer's default when far below the one used, else a tenth."""
    import inspect

    parameter = inspect.signature(type(optimizer).__init__).parameters.get("learning_rate")
    default = parameter.default if parameter is not None else None
    rate = (config.optimizer.model_extra or {}).get("learning_rate", default)
    if not isinstance(rate, int | float):
        return ""
    if isinstance(default, float) and rate > 10 * default:
        return f" (now {rate:g}; try {default:g}, {config.optimizer.name}'s default)"
    return f" (now {rate:g}; try {rate / 10:g})"
