"""The training loop: Keras callbacks (halting on signals and divergence, timing, progress) and `fit`.

Seeds and threads are in compute.py, input pipelines and forward passes in pipeline.py.

A `Listener` (plain Python; the CLI implements it with rich) hears about epochs and batches, so this
module never prints.
"""

from __future__ import annotations

import signal
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from dlcli.config.config import Config
from dlcli.training import direction
from dlcli.training.callbacks.dataset_guard import dataset_guard
from dlcli.training.callbacks.early_stopping import ResumableEarlyStopping
from dlcli.training.callbacks.halt import Halt, HaltCallback
from dlcli.training.callbacks.relay import Listener, Relay
from dlcli.training.callbacks.run_state import RunState
from dlcli.training.callbacks.timer import Timer
from dlcli.training.state import ResumeState


@contextmanager
def stop_on_signals(halt: Halt):
    """SIGINT and SIGTERM ask training to stop after the current step instead of killing it."""

    def handler(signum, frame):
        halt.signum = signum

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield halt
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class FitPlan:
    """What one `fit` call trains on and where it commits each epoch."""

    config: Config
    run_dir: Path
    train_ds: Any
    val_ds: Any
    steps: int  # training steps per epoch
    epoch_var: Any  # picks each epoch's data order (pipeline.training_dataset)
    halt: Halt = field(default_factory=Halt)
    listener: Listener | None = None
    prior: ResumeState | None = None  # set when resuming, and for a fine-tuning phase
    history: list[dict] = field(default_factory=list)  # history.csv rows of the epochs before
    epochs: int | None = None  # the last epoch of this fit (default train.epochs)
    phase: tuple[int, int] | None = None  # (phase, epochs before it) with train.fine_tune
    trainer: Any = None  # a sparse.Trainer: its model trains the saved model's layers on sparse text vectors

    @property
    def first_epoch(self) -> int:
        return self.prior.epoch if self.prior else 0

    @property
    def last_epoch(self) -> int:
        return self.epochs or self.config.train.epochs


def callbacks(plan: FitPlan, model) -> list:
    """Keras callbacks for `plan` training `model` (what the checkpoints save), in order; the last is
    the Timer."""
    config = plan.config
    (plan.run_dir / "checkpoints").mkdir(exist_ok=True)
    stop = config.train.early_stopping
    early = None
    if stop is not None:
        early = ResumableEarlyStopping(
            prior=plan.prior.early_stopping if plan.prior else None,
            monitor=stop.monitor,
            patience=stop.patience,
            min_delta=stop.min_delta,
            mode=direction.mode_for(config, stop.monitor, stop.mode),
            restore_best_weights=False,
            verbose=0,
        )
    out: list[Any] = [*dataset_guard(), HaltCallback(plan.halt, plan.steps, plan.epoch_var)]
    out += [early] if early else []
    out += _reduce_lr(config)
    out += _tensorboard(config, plan.run_dir)
    monitor = config.checkpoint_monitor()
    mode = direction.mode_for(config, monitor, config.train.checkpoint.mode)
    halted = lambda: bool(plan.halt)  # noqa: E731 - read at each epoch's end
    state = RunState(plan.run_dir, monitor, mode, plan.prior, plan.history, early, halted, plan.phase, model)
    out.append(state)
    if plan.listener is not None:
        out.append(Relay(plan.listener, plan.last_epoch, plan.steps, plan.halt))
    out.append(Timer())  # last: an epoch's time includes the checkpoints written at its end
    return out


def _reduce_lr(config: Config) -> list:
    plateau = config.train.reduce_lr_on_plateau
    if plateau is None:
        return []

    monitor = plateau.monitor or config.checkpoint_monitor()
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            factor=plateau.factor,
            patience=plateau.patience,
            min_delta=plateau.min_delta,
            min_lr=plateau.min_lr,
            mode=direction.mode_for(config, monitor, plateau.mode),
            verbose=0,
        )
    ]


def _tensorboard(config: Config, run_dir: Path) -> list:
    if not config.train.tensorboard:
        return []

    logs = str(run_dir / "tensorboard")
    return [keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0, update_freq="epoch")]


def fit(model, plan: FitPlan):
    """Train epochs `plan.first_epoch`.. of the config; returns the Timer (epoch times, first step).

    The model ends with the best checkpoint's weights, also after a divergence or a signal.
    """
    hooks = callbacks(plan, model)
    (model if plan.trainer is None else plan.trainer.model).fit(
        plan.train_ds,
        validation_data=plan.val_ds,
        epochs=plan.last_epoch,
        initial_epoch=plan.first_epoch,
        verbose=0,
        shuffle=False,
        callbacks=hooks,
    )
    best = plan.run_dir / "checkpoints" / "best.keras"
    if best.is_file():
        load_best(model, best)
    return hooks[-1]


def load_best(model, path: Path) -> None:
    """The best checkpoint's weights. One saved in the phase before fine-tuning carries that phase's
    optimizer, which the fine-tuning optimizer does not take (Keras warns and skips it: expected)."""

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)
