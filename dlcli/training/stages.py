"""One training process's run in stages, each a function with a typed input and output:

    prepare(config) -> Prepared        seed, load, split, fit preprocessing (writes nothing)
    run(Job) -> TrainResult            keeps run.json (and MLflow) true whatever happens, around:
      _build -> model                  compiled in the strategy's scope, restored when resuming
      _plan -> train.FitPlan           the datasets and what resuming carries over
      _fit -> (epochs, best epoch)     trains; every way of stopping short becomes its error
      _score_and_plot -> TrainResult   metrics.json and plots/

api.py decides which run this is (fresh, resumed, a worker's) and hands it over.
"""

from __future__ import annotations

import inspect
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dlcli.artifacts import saved
from dlcli.config.config import Config
from dlcli.datasets import pipeline, scoring, seriesstream, streamed
from dlcli.devices import compute, distribute
from dlcli.io import data as data_mod
from dlcli.io import hashsplit, shards
from dlcli.models import model as model_mod
from dlcli.models import sparse
from dlcli.preprocessing import preprocessing, stats
from dlcli.preprocessing.base import Preprocessor
from dlcli.runs import plots, runs, tracking
from dlcli.runs import record as record_mod
from dlcli.training import finetune
from dlcli.training import state as state_mod
from dlcli.training import train as train_mod
from dlcli.utils import files
from dlcli.utils.errors import ConfigError, DataError, DlcliError, Interrupted, Pruned, TrainingFailed


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, dict]
    epochs: int
    best_epoch: int | None
    warnings: list[str] = field(default_factory=list)
    placement: dict = field(default_factory=dict)  # run.json's `distribution`
    notes: list[str] = field(default_factory=list)  # how the data was read, what the epoch lines show
    chief: bool = True  # False: a multi_worker worker whose run directory was temporary
    light_model: dict | None = None  # run.json's light_model: the export written, or why not


@dataclass
class Prepared:
    """Stage 1: the data split, the preprocessing fitted on its train split, every split as examples."""

    loaded: data_mod.Loaded
    prep: Preprocessor
    sets: dict[str, scoring.Examples]
    deterministic: bool
    load_s: float
    prior: state_mod.ResumeState | None = None
    class_weight: dict[str, float] | None = None  # train.class_weight per class label
    text: dict | None = None  # run.json's data.text: vocabulary sizes and out-of-vocabulary shares

    def describe(self) -> dict:
        """run.json's `data`."""
        rows = {k: len(v[0]) if isinstance(v, tuple) else len(v) for k, v in self.loaded.splits.items()}
        if self.loaded.stream is not None:
            rows = {name: split.rows for name, split in self.sets.items()}
        out = {"source": self.loaded.source, "sha256": self.loaded.sha256, "rows": rows}
        if self.loaded.stream is not None:
            stream = self.loaded.stream
            out["stream"] = {"files": len(stream.paths), "units": len(stream.units), "bytes": stream.size}
            shard = getattr(self.sets.get("train"), "shard", None)
            if shard is not None:  # which units each worker read in the statistics pass
                out["stream"]["workers"] = shard.read
        if self.loaded.columns is not None:
            out["columns"] = self.loaded.columns.describe()
        if self.text is not None:
            out["text"] = self.text
        if self.loaded.skipped:
            out["skipped_files"] = {"count": len(self.loaded.skipped), "files": self.loaded.skipped}
        if self.loaded.notes:
            out["notes"] = self.loaded.notes
        return out

    def notes(self, config: Config) -> list[str]:
        """What the user should know about how the data was read and what the epoch lines show."""
        notes = list(self.loaded.notes)
        if self.loaded.columns is not None:
            notes.append(self.loaded.columns.summary())
        for column, described in (self.text or {}).items():
            shares = described["oov_share"]
            split = "test" if "test" in shares else "validation" if "validation" in shares else "train"
            notes.append(
                f"text column {column!r}: a vocabulary of {described['vocabulary_size']} tokens from the "
                f"train split; {shares[split]:.1%} of the {split} split's words are out of it"
            )
        target = self.prep.target_encoder
        if self.prep.task == "regression" and (target.scale != "none" or self.prep.differenced):
            what = "changes of the target" if self.prep.differenced else "target"
            scale = f"{target.scale}-scaled " if target.scale != "none" else ""
            notes.append(
                f"per-epoch loss and metrics are on the {scale}{what}; metrics.json and the table below "
                f"are in {target.column}'s own units"
            )
        return notes


def prepare(
    config: Config,
    run_dir: Path | None = None,
    prior: state_mod.ResumeState | None = None,
    progress=None,
    placement: distribute.Placement | None = None,
) -> Prepared:
    """Seed, load and split the data, fit preprocessing on the train split (or, resuming, read the
    run's fitted state), and turn every split into examples. Writes nothing. `progress(what, rows,
    fraction)` hears of a streamed table's statistics pass. Under a multi_worker `placement` a
    streamed table is divided between the workers (shards.py)."""
    clock = time.perf_counter()
    deterministic = config.train.deterministic
    if deterministic == "auto" and config.train.jit_compile is True:
        deterministic = False  # asked-for XLA wins over automatic determinism (they exclude each other)
    deterministic = compute.seed_everything(config.seed, deterministic)
    loaded = data_mod.load(config)
    if loaded.stream is not None:
        shard = _shard(config, loaded.stream, placement)
        return _prepare_stream(config, loaded, deterministic, clock, run_dir, prior, progress, shard)
    if config.has_validation and "validation" not in loaded.splits:
        raise DataError(
            f"{loaded.source}: no validation rows, but the config monitors validation "
            "quantities: give data.split.validation a fraction or add validation rows"
        )
    if prior is not None and run_dir is not None and (run_dir / "preprocessing.json").is_file():
        prep = saved.load_preprocessing(run_dir)
    else:
        prep = preprocessing.fit(config, loaded.splits["train"], loaded.source, loaded.columns)
    sets = scoring.split_examples(prep, loaded)
    text = prep.text.describe(loaded.splits) if prep.text is not None else None
    weights = None
    if config.train.class_weight is not None:
        where = config.where("train", "class_weight")
        weights = prep.class_weights(config.train.class_weight, sets["train"].y, where)
    load_s = round(time.perf_counter() - clock, 3)
    return Prepared(loaded, prep, sets, deterministic, load_s, prior, weights, text)


def _shard(config: Config, stream, placement: distribute.Placement | None):
    """This worker's shard of a streamed table under multi_worker, else None."""

    if placement is None or placement.kind != "multi_worker":
        return None
    split = config.data.split
    if stream.kind != "Parquet" and split.key is None and split.column is None:
        raise ConfigError(
            f"{config.where('data', 'split')}: under multi_worker the workers divide a streamed "
            f"{stream.kind} file by byte ranges, and a row's position is not known until the rows "
            "before it are read, so it cannot decide the split: give data.split.key (a column that "
            "identifies each row) or data.split.column, or stream Parquet files"
        )

    def start():  # TensorFlow's threads are set before its first op, then the strategy starts
        compute.set_intra_op_threads(config, [len(stream.columns)])
        placement.start()
        return placement.strategy

    return shards.Shard(placement.worker, placement.workers, shards.assign(stream, placement.workers), start)


def _prepare_stream(config, loaded, deterministic, clock, run_dir, prior, progress, shard) -> Prepared:
    """prepare() for a streamed table: the statistics pass, then each split as a StreamSplit."""
    stats.refuse_unstreamable(config)
    plan = None
    if config.preprocessing.window is not None:  # a series: each one's rows counted first
        seriesstream.refuse(config, multi_worker=shard is not None)
        plan = seriesstream.plan(config, loaded.stream, progress)
    fitted = stats.fit(config, loaded.stream, progress, shard, plan)
    prep = fitted.prep
    if prior is not None and run_dir is not None and (run_dir / "preprocessing.json").is_file():
        prep = saved.load_preprocessing(run_dir)
    loaded.columns, loaded.notes = fitted.cols, [*loaded.notes, *fitted.notes]
    codes = {"train": hashsplit.TRAIN, "validation": hashsplit.VALIDATION, "test": hashsplit.TEST}
    if fitted.plan is not None:  # a series: the splits' windows, made by index
        every = {
            name: seriesstream.SeriesSplit(
                loaded.stream, fitted.layout, prep, code, name, config, plan=fitted.plan
            )
            for name, code in codes.items()
        }
        sets = {name: split for name, split in every.items() if split.rows}
    else:
        sets = {
            name: streamed.StreamSplit(loaded.stream, fitted.layout, prep, code, name, config, shard=shard)
            for name, code in codes.items()
            if fitted.layout.total(code)
        }
    if config.has_validation and "validation" not in sets:
        raise DataError(f"{loaded.source}: no validation rows, but the config monitors validation quantities")
    weights = None
    if config.train.class_weight is not None:
        weights = stats.class_weights(prep, config, fitted.class_counts)
    load_s = round(time.perf_counter() - clock, 3)
    return Prepared(loaded, prep, sets, deterministic, load_s, prior, weights)


@dataclass
class Job:
    """One training process's run: what every stage after `prepare` reads."""

    config: Config
    run_dir: Path
    record: record_mod.RunRecord
    prepared: Prepared
    placement: distribute.Placement
    listener: Any = None

    @property
    def timings(self) -> dict:
        return self.record.data["timings"]


def run(job: Job) -> TrainResult:
    """Train (fresh or resumed), keeping the status in run.json (and MLflow) true whatever happens."""
    tracker, record, prepared = None, job.record, job.prepared
    record.data.update(deterministic=prepared.deterministic, device=compute.device_name())
    record.data["data"] = prepared.describe()
    job.timings["load_s"] = prepared.load_s
    record.save()
    try:
        tracker = tracking.start(job.config, job.run_dir, record.data) if job.placement.chief else None
        if tracker is not None:
            record.save()  # with the MLflow run id, for --resume
            job.listener = tracking.Relay(job.listener, tracker)
        result = _train(job)
    except Interrupted as exc:
        _finish(record, tracker, "interrupted", str(exc))
        raise
    except Pruned as exc:
        _finish(record, tracker, "pruned", str(exc))
        raise
    except DlcliError as exc:
        _finish(record, tracker, "failed", str(exc))
        raise
    except BaseException as exc:
        _finish(record, tracker, "failed", f"{type(exc).__name__}: {exc}")
        raise
    record.finish("completed")
    result.notes = prepared.notes(job.config)
    if not job.placement.chief:
        return result
    runs.mark_latest(job.run_dir)
    warning = tracker.finish("completed", result.metrics) if tracker is not None else None
    result.warnings += [warning] if warning else []
    return result


def _finish(record: record_mod.RunRecord, tracker, status: str, error: str) -> None:
    record.finish(status, error)
    if tracker is not None:
        tracker.finish(status)  # a tracking failure here would hide the run's own error: it only warns


def _train(job: Job) -> TrainResult:
    model = _build(job)
    plan = _plan(job, _trainer(job, model))
    epochs, best_epoch = _fit(job, model, plan)
    shard = getattr(job.prepared.sets["train"], "shard", None)
    if shard is not None:  # run.json: the units each worker read in every pass so far
        read = shard.exchange_arrays({"read": sorted(job.prepared.loaded.stream.reads)})
        for described, (meta, _) in zip(job.record.data["data"]["stream"]["workers"], read, strict=True):
            described["units_read"] = meta["read"]
    if not job.placement.chief and shard is None:  # the chief scores, plots and writes the run directory
        where = job.record.data["distribution"]
        return TrainResult(job.run_dir, {}, epochs, best_epoch, placement=where, chief=False)
    del plan
    result = _score_and_plot(job, model, epochs, best_epoch)  # sharded: every worker scores its units
    if not job.placement.chief:
        return replace(result, metrics={}, chief=False)
    return result


def _build(job: Job):
    """Stage 2: the compiled model inside the strategy's scope, with the checkpoint's weights and
    optimizer state when resuming."""
    config, placement, record = job.config, job.placement, job.record
    prep, prior = job.prepared.prep, job.prepared.prior
    rescale = prep.image["rescale"] if prep.image else None
    threads = compute.set_intra_op_threads(config, prep.input_shape)  # before the first op runs
    placement.start()  # the strategy: TensorFlow's runtime starts here
    record.data["distribution"] = placement.describe()
    steps_per_execution = compute.steps_per_execution(config, placement.distributed)
    with placement.scope():  # variables (model, optimizer, metrics) are made in the strategy's scope
        model = model_mod.build(
            config,
            prep.input_shape,
            prep.input_dtype,
            prep.n_classes,
            rescale,
            prep.embeddings,
            prep.text,
            prep.image_input,
        )
        if prior is not None and prior.phase == 2:  # resuming a fine-tuning phase: its trainable set
            finetune.compile_phase_two(model, config, steps_per_execution)
        else:
            model_mod.compile_model(model, config, steps_per_execution)
        if prior is not None:
            model.optimizer.build(model.trainable_variables)
    record.data["compute"] = {
        "steps_per_execution": steps_per_execution,
        "jit_compile": bool(model.jit_compile),
        "dtype_policy": model.dtype_policy.name,
        "intra_op_threads": threads,
    }
    if prior is not None:
        model.load_weights(job.run_dir / "checkpoints" / prior.checkpoint)  # weights and optimizer state
        state_mod.restore_seed_states(model, prior.seed_states)
    return model


def _trainer(job: Job, model):
    """sparse.py's trainer where the text columns are vectors that can stay sparse, else None."""

    text, compute = job.prepared.prep.text, job.record.data["compute"]
    if text is None or text.output_mode == "int":
        return None
    if not sparse.usable(job.config, text, job.placement.distributed, bool(job.prepared.prep.embeddings)):
        compute["text_vectors"] = "dense"  # run.json: vectorized in the model at every step
        return None
    compute["text_vectors"] = "sparse"  # run.json: trained on sparse rows, vectorized once
    return sparse.Trainer(model, job.config, text, compute["steps_per_execution"])


def _read_images_once(job: Job, trainer=None) -> None:
    """Where the training and validation image files fit in memory decoded (pipeline.
    decoded_in_memory), those splits hold their pixels from here on: the epochs and their scoring
    read no file again. Not for a stream or sparse text."""
    prepared = job.prepared
    load = prepared.prep.loader()
    if load is None or trainer is not None or prepared.loaded.stream is not None:
        return
    names = [name for name in ("train", "validation") if name in prepared.sets]
    clock = time.perf_counter()
    done = pipeline.decoded_in_memory([prepared.sets[name].x for name in names], load)
    # run.json: where the epochs read the images from
    job.record.data["compute"]["image_files"] = "read once" if done is not None else "read every epoch"
    if done is None:
        return
    job.timings["images_read_s"] = round(time.perf_counter() - clock, 3)
    for name, x in zip(names, done, strict=True):
        prepared.sets[name] = replace(prepared.sets[name], x=x, decoded=True)


def _training_data(job: Job, trainer=None):
    """The training batches, the variable naming the epoch, the steps per epoch, and (sparse text)
    the function each batch's x passes through."""
    config, prepared = job.config, job.prepared
    batch = config.train.batch_size
    if prepared.loaded.stream is not None:  # a streamed table: batches made as its pieces are read
        weights = prepared.class_weight
        job.record.data["class_weight"] = weights
        per_class = list(weights.values()) if weights is not None else None
        if "validation" in prepared.sets:
            prepared.sets["train"].keep_while_training(prepared.sets["validation"])
        return prepared.sets["train"].training(batch, config.seed, config.data.shuffle_buffer, per_class)
    x, y, windows = scoring.training_arrays(prepared.prep, prepared.sets["train"])
    finish = None
    if trainer is not None:
        x, finish = trainer.inputs(x), trainer.finish
    weights = None
    if config.train.class_weight is not None:
        per_class = prepared.prep.class_weights(
            config.train.class_weight, y, config.where("train", "class_weight")
        )
        job.record.data["class_weight"] = per_class
        weights = prepared.prep.row_weights(per_class, y)
    load = prepared.sets["train"].loader(prepared.prep)
    train_ds, epoch_var = pipeline.training_dataset(x, y, batch, config.seed, weights, load, finish, windows)
    return train_ds, epoch_var, -(-len(y) // batch)


def _plan(job: Job, trainer=None) -> train_mod.FitPlan:
    config, run_dir, prepared = job.config, job.run_dir, job.prepared
    prior = prepared.prior
    clock = time.perf_counter()
    batch = config.train.batch_size
    _read_images_once(job, trainer)
    train_ds, epoch_var, steps = _training_data(job, trainer)
    val = prepared.sets.get("validation")
    val_ds = None
    if val is not None:
        val_ds = val.dataset(prepared.prep, batch) if trainer is None else _sparse_set(trainer, val, batch)
    if trainer is not None:  # run.json: the one vectorizing pass over the train and validation texts
        job.timings["text_vectors_s"] = round(time.perf_counter() - clock, 3)
    fine, phase, last = config.train.fine_tune, None, None
    if fine is not None:  # history.csv gets a phase column; a resumed phase 2 ends where it would have
        phase = (2, prior.phase_start) if prior is not None and prior.phase == 2 else (1, 0)
        last = prior.phase_start + fine.epochs if phase[0] == 2 else None
    return train_mod.FitPlan(
        config,
        run_dir,
        train_ds,
        val_ds,
        steps=steps,
        epoch_var=epoch_var,
        listener=job.listener,
        prior=prior,
        history=state_mod.truncate_history(run_dir, prior.epoch) if prior is not None else [],
        epochs=last,
        phase=phase,
        trainer=trainer,
    )


def _sparse_set(trainer, examples, batch: int):
    return pipeline.array_dataset(trainer.inputs(examples.x), examples.y, batch, finish=trainer.finish)


def _fit(job: Job, model, plan: train_mod.FitPlan) -> tuple[int, int | None]:
    """Stage 3: train, keep model.keras, and turn every way training stops short into its error."""
    config, run_dir, halt, timings, placement = job.config, job.run_dir, plan.halt, job.timings, job.placement
    resume_from = run_dir.resolve() if placement.chief else "<the chief's run directory>"
    clock = time.perf_counter()
    if plan.listener is not None and hasattr(plan.listener, "notes"):
        plan.listener.notes(job.prepared.notes(config))  # before the epoch lines they explain
    try:
        with train_mod.stop_on_signals(halt):
            timers = _fit_phases(job, model, plan)
    except Exception as exc:
        stream = job.prepared.loaded.stream
        if stream is not None and stream.failure is not None:  # raised inside tf.data: say it plainly
            failure = stream.failure
            if not isinstance(failure, TrainingFailed):  # data that was good at the first pass
                failure = TrainingFailed(str(failure))
            raise failure from None
        if placement.kind != "multi_worker" or not distribute.is_cluster_error(exc):
            raise
        done = state_mod.read_resume(run_dir)
        raise TrainingFailed(
            f"{distribute.cluster_error_summary(exc)}; stopped after {done.epoch if done else 0} "
            f"completed epoch(s). Restart every worker with: dlcli train --resume {resume_from}"
        ) from None
    timings["fit_s"] = round(timings.get("fit_s", 0) + time.perf_counter() - clock, 3)
    if plan.prior is None and timers:
        timings["first_step_s"] = timers[0].first_step_s
    done = state_mod.read_resume(run_dir)
    epochs, best_epoch = (done.epoch, done.best_epoch) if done else (0, None)
    # one time per committed epoch: a partial epoch (signal, divergence) is not one
    epoch_s = [t for timer in timers for t in timer.epoch_s]
    timings["epoch_s"] = (timings.get("epoch_s", [])[: plan.first_epoch] + epoch_s)[:epochs]
    job.record.data["epochs"] = {
        "completed": epochs,
        "best": best_epoch,
        "monitor": config.checkpoint_monitor(),
    }
    has_best = (run_dir / "checkpoints" / "best.keras").is_file()
    if not halt or has_best:
        state_mod.save_atomic(model, run_dir / "model.keras")  # after a stop: the best checkpoint's weights
        record_mod.seal(job.record.data, run_dir, "model.keras")
        job.record.save()
    if halt and config.train.plots:
        plots.learning_curves(run_dir, config.checkpoint_monitor(), best_epoch if has_best else None)
    if halt.signum is not None:
        raise Interrupted(halt.signum, resume_from, epochs)
    if halt.diverged is not None:
        best = best_epoch if has_best else None
        raise TrainingFailed(_divergence_message(halt.diverged, config, model.optimizer, best, resume_from))
    if placement.distributed:  # every replica of every worker ends with these same weights
        job.record.data["distribution"]["weights_sha256"] = compute.weights_digest(model)
    return epochs, best_epoch


def _fit_phases(job: Job, model, plan: train_mod.FitPlan) -> list:
    """Train the plan; with train.fine_tune, then (or, resuming, only) the fine-tuning phase.
    Returns each phase's Timer."""
    config, prior, fine = job.config, plan.prior, job.config.train.fine_tune
    if fine is None:
        return [train_mod.fit(model, plan)]
    timers = []
    if prior is None or prior.phase == 1:
        if not finetune.phase_one_done(config, prior):
            timers.append(train_mod.fit(model, plan))  # ends with the best checkpoint's weights
            if plan.halt:
                return timers
        elif (job.run_dir / "checkpoints" / "best.keras").is_file():  # resumed between the phases
            train_mod.load_best(model, job.run_dir / "checkpoints" / "best.keras")
        prior = finetune.phase_two_prior(state_mod.read_resume(job.run_dir))
        with job.placement.scope():
            finetune.compile_phase_two(model, config, job.record.data["compute"]["steps_per_execution"])
        start = prior.phase_start
        plan = replace(plan, prior=prior, epochs=start + fine.epochs, phase=(2, start))
    if plan.listener is not None and hasattr(plan.listener, "notes"):
        plan.listener.notes([finetune.note(config, model, prior.phase_start)])
    timers.append(train_mod.fit(model, plan))
    return timers


def _score_and_plot(job: Job, model, epochs: int, best_epoch: int | None) -> TrainResult:
    """Stage 4: metrics of every split (metrics.json) and the plots.

    The split the plots show (test, else validation, else train) is scored first, and the plots are
    drawn in a thread while the other splits are scored: drawing is mostly Python, scoring mostly
    TensorFlow kernels that release the GIL, so on MNIST the two overlap almost entirely. Both come
    after the training functions are released, below the peak memory of training.
    """

    config, run_dir, prepared, timings = job.config, job.run_dir, job.prepared, job.timings
    prep, sets = prepared.prep, prepared.sets
    prepared.loaded.splits = {}  # the raw tables: every split is in `sets` as the model sees it
    for split in sets.values():  # a streamed split: its scoring pass shows rows and rows/s
        split.progress = getattr(job.listener, "rows", None)
    pipeline.release_training_memory(model, pipeline.nbytes(getattr(sets["train"], "x", None)))
    if job.placement.distributed:  # score as `dlcli evaluate` does: the saved model, outside the strategy
        model = saved.load_model(run_dir)
    shown = next(s for s in ("test", "validation", "train") if s in sets)
    clock = time.perf_counter()
    metrics, drawing = {}, None
    with ThreadPoolExecutor(1, thread_name_prefix="dlcli-plots") as pool:
        for name in [shown, *(n for n in sets if n != shown)]:
            metrics[name], predicted = scoring.score(prep, config, model, sets[name])  # streamed: a sample
            if name == shown and config.train.plots and job.placement.chief:
                ex, monitor = sets[name], config.checkpoint_monitor()
                args = (run_dir, prep, monitor, best_epoch, name, ex.y_raw, predicted, ex.when)
                drawing = pool.submit(_timed, plots.write_run_plots, *args)
        timings["evaluate_s"] = round(time.perf_counter() - clock, 3)
    metrics = {name: metrics[name] for name in sets}  # train, validation, test
    files.write_json(run_dir / "metrics.json", metrics)
    warnings = list(prep.warnings)
    if drawing is not None:
        drawn, timings["plots_s"] = drawing.result()
        warnings += drawn
    return TrainResult(run_dir, metrics, epochs, best_epoch, warnings, job.record.data["distribution"])


def _timed(fn, *args):
    clock = time.perf_counter()
    return fn(*args), round(time.perf_counter() - clock, 3)


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

    parameter = inspect.signature(type(optimizer).__init__).parameters.get("learning_rate")
    default = parameter.default if parameter is not None else None
    rate = (config.optimizer.model_extra or {}).get("learning_rate", default)
    if not isinstance(rate, int | float):
        return ""
    if isinstance(default, float) and rate > 10 * default:
        return f" (now {rate:g}; try {default:g}, {config.optimizer.name}'s default)"
    return f" (now {rate:g}; try {rate / 10:g})"
