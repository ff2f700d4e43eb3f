"""The training loop: Keras callbacks (halting on signals and divergence, timing, progress) and `fit`.

Seeds and threads are in compute.py, input pipelines and forward passes in pipeline.py.

A `Listener` (plain Python; the CLI implements it with rich) hears about epochs and batches, so this
module never prints.
"""

from __future__ import annotations

import math
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dlcli import pipeline
from dlcli.config import Config
from dlcli.state import ResumeState


class Listener(Protocol):
    def train_begin(self, epochs: int, steps: int | None) -> None: ...
    def batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def train_end(self) -> None: ...


class Halt:
    """Why training should stop early: a signal (SIGINT/SIGTERM) or a diverged loss."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.diverged: tuple[int, int, float] | None = None

    def __bool__(self) -> bool:
        return self.signum is not None or self.diverged is not None


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
    from dlcli.state import callbacks_classes

    ResumableEarlyStopping, RunState = callbacks_classes()
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
            mode=stop.mode,
            restore_best_weights=False,
            verbose=0,
        )
    out: list[Any] = [*pipeline.dataset_guard(), _halt_class()(plan.halt, plan.steps, plan.epoch_var)]
    out += [early] if early else []
    out += _reduce_lr(config)
    out += _tensorboard(config, plan.run_dir)
    monitor, mode = config.checkpoint_monitor(), config.train.checkpoint.mode
    halted = lambda: bool(plan.halt)  # noqa: E731 - read at each epoch's end
    state = RunState(plan.run_dir, monitor, mode, plan.prior, plan.history, early, halted, plan.phase, model)
    out.append(state)
    if plan.listener is not None:
        out.append(_relay_class()(plan.listener, plan.last_epoch, plan.steps, plan.halt))
    out.append(_timer_class()())  # last: an epoch's time includes the checkpoints written at its end
    return out


def _reduce_lr(config: Config) -> list:
    plateau = config.train.reduce_lr_on_plateau
    if plateau is None:
        return []
    import keras

    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor=plateau.monitor or config.checkpoint_monitor(),
            factor=plateau.factor,
            patience=plateau.patience,
            min_delta=plateau.min_delta,
            min_lr=plateau.min_lr,
            mode=plateau.mode,
            verbose=0,
        )
    ]


def _tensorboard(config: Config, run_dir: Path) -> list:
    if not config.train.tensorboard:
        return []
    import keras

    logs = str(run_dir / "tensorboard")
    return [keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0, update_freq="epoch")]


def _timer_class():
    import time

    import keras

    import dlcli

    class Timer(keras.callbacks.Callback):
        """Wall time of each epoch (training, validation and the files written after it), and the
        time from the start of the process to the end of the first training step."""

        def __init__(self):
            super().__init__()
            self.epoch_s: list[float] = []
            self.first_step_s: float | None = None
            self.began = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.first_step_s is None:
                self.first_step_s = round(time.time() - dlcli.STARTED_AT, 3)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_s.append(round(time.perf_counter() - self.began, 4))

    return Timer


def _halt_class():
    import keras

    class HaltCallback(keras.callbacks.Callback):
        """Stops after the current step on a signal, or when the loss stops being finite.

        With steps_per_execution > 1 Keras reports every N batches, so a divergence is placed at the
        end of the block of N batches in which the loss first went bad.
        """

        def __init__(self, halt: Halt, steps: int | None, epoch_var=None):
            super().__init__()
            self.halt, self.steps, self.epoch, self.epoch_var = halt, steps, 0, epoch_var

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            if self.epoch_var is not None:  # picks this epoch's data order (see training_dataset)
                self.epoch_var.assign(epoch)

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)) and self.halt.diverged is None:
                last = batch + 1 if self.steps is None else min(batch + 1, self.steps)
                self.halt.diverged = (self.epoch, last, float(loss))
            if self.halt:
                self.model.stop_training = True

    return HaltCallback


def _relay_class():
    import keras

    class Relay(keras.callbacks.Callback):
        def __init__(self, listener: Listener, epochs: int, steps: int | None, halt: Halt):
            super().__init__()
            self.listener, self.epochs, self.steps, self.halt = listener, epochs, steps, halt

        def on_train_begin(self, logs=None):
            self.listener.train_begin(self.epochs, self.steps)

        def on_train_batch_end(self, batch, logs=None):
            self.listener.batch_end(batch + 1, _floats(logs))

        def on_epoch_end(self, epoch, logs=None):
            if not self.halt:  # a halted epoch is partial and is not recorded
                self.listener.epoch_end(epoch + 1, _floats(logs))

        def on_train_end(self, logs=None):
            self.listener.train_end()

    return Relay


def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


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
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)
