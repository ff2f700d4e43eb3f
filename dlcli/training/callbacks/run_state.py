"""The commit of each completed epoch, in the order dlcli/training/state.py's docstring writes down."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import keras

from dlcli.training.direction import monitor_direction
from dlcli.training.state import (
    RESUME_FILE,
    ResumeState,
    improved,
    save_atomic,
    seed_states,
    write_history,
)
from dlcli.utils.files import link_atomic, write_json


class RunState(keras.callbacks.Callback):
    """Commits each completed epoch (see the module docstring); skips a halted, partial one."""

    def __init__(
        self,
        run_dir: Path,
        monitor: str,
        mode: str,
        prior: ResumeState | None,
        history: list[dict],
        early_stopping=None,
        halted=lambda: False,
        phase: tuple[int, int] | None = None,
        saved=None,
    ):
        super().__init__()
        self.saved = saved  # the model the checkpoints hold, when another trains its layers
        self.dir, self.monitor, self.mode = Path(run_dir), monitor, mode
        self.phase = phase  # (phase, phase_start) with train.fine_tune, else None
        known = (prior.direction, prior.best, prior.best_epoch) if prior else (None, None, None)
        self.direction, self.best, self.best_epoch = known
        self.history, self.early_stopping, self.halted = history, early_stopping, halted

    def on_epoch_end(self, epoch, logs=None):
        if self.halted():
            return
        done, logs = epoch + 1, {k: float(v) for k, v in (logs or {}).items()}
        saved = self.model if self.saved is None else self.saved
        ckpt, name = self.dir / "checkpoints", f"resume-{done}.keras"
        save_atomic(saved, ckpt / name)
        value = logs.get(self.monitor)
        if value is not None and self.direction is None:
            self.direction = monitor_direction(self.model, self.monitor, self.mode, logs)
        if value is not None and improved(self.direction, value, self.best):
            self.best, self.best_epoch = value, done
            link_atomic(ckpt / name, ckpt / "best.keras")  # this epoch's checkpoint: not saved twice
        self.history.append({"epoch": done, **({"phase": self.phase[0]} if self.phase else {}), **logs})
        write_history(self.dir / "history.csv", self.history)
        state = ResumeState(
            epoch=done,
            checkpoint=name,
            monitor=self.monitor,
            direction=self.direction,
            best=self.best,
            best_epoch=self.best_epoch,
            seed_states=seed_states(saved),
            early_stopping=self.early_stopping.state() if self.early_stopping else None,
            phase=self.phase[0] if self.phase else 1,
            phase_start=self.phase[1] if self.phase else 0,
        )
        write_json(ckpt / RESUME_FILE, asdict(state))
        link_atomic(ckpt / name, ckpt / "last.keras")
        for old in ckpt.glob("resume-*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)
