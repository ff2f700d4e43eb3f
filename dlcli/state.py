"""What a run needs to continue after a kill, written once per epoch in an order that survives one.

At the end of every completed epoch `RunState` writes, each atomically (temp file + rename):

1. `checkpoints/resume-<E>.keras`: weights and optimizer state after epoch E;
2. `checkpoints/best.keras`, when the monitored quantity improved;
3. `history.csv`, one row per completed epoch;
4. `checkpoints/resume.json`: the commit point — epoch E, the file of step 1, the best value and
   epoch, early-stopping counters and the dropout seed-generator states (Keras does not save those);
5. `checkpoints/last.keras`, a hard link to the file of step 1; older resume files are removed.

A kill between any two steps leaves `resume.json` naming a complete earlier epoch; resuming repeats
the epochs after it, and because every epoch's data order is a function of (seed, epoch) and the RNG
states are restored, the repeat computes exactly what the uninterrupted run computed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from dlcli.errors import RunError
from dlcli.runs import write_atomic, write_json

RESUME_FILE = "resume.json"


def improved(monitor: str, mode: str, value: float, best: float | None) -> bool:
    """Keras' rule for `mode: auto`: accuracy-like quantities go up, everything else down."""
    if best is None:
        return True
    maximize = mode == "max" or (mode == "auto" and is_accuracy_like(monitor))
    return value > best if maximize else value < best


def is_accuracy_like(monitor: str) -> bool:
    return any(word in monitor for word in ("acc", "auc", "precision", "recall", "f1", "r2"))


def read_resume(run_dir: Path) -> dict | None:
    path = run_dir / "checkpoints" / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        checkpoint = run_dir / "checkpoints" / state["checkpoint"]
        int(state["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: unreadable resume state ({exc})") from None
    if not checkpoint.is_file():
        raise RunError(f"{path}: names {checkpoint.name}, which is missing")
    return state


def truncate_history(run_dir: Path, epochs: int) -> list[dict]:
    """Keep the first `epochs` rows of history.csv (a killed run may have written one more)."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    rows = [
        row
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        if row.get("epoch", "").isdigit() and int(row["epoch"]) <= epochs
    ]
    rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]
    _write_history(path, rows)
    return rows


def _write_history(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def seed_states(model) -> list[list[int]]:
    return [v.numpy().tolist() for v in model.variables if v.path.endswith("seed_generator_state")]


def restore_seed_states(model, states: list[list[int]]) -> None:
    variables = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for variable, value in zip(variables, states, strict=True):
        variable.assign(value)


def callbacks_classes():
    """Keras callback classes, made on first use so this module imports without Keras."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """Keras' EarlyStopping whose counters can be set back to where a killed run left them."""

        def __init__(self, prior: dict | None = None, **kwargs):
            super().__init__(**kwargs)
            self.prior = prior

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.prior:
                self.wait, self.best, self.best_epoch = (
                    self.prior["wait"],
                    self.prior["best"],
                    self.prior["best_epoch"],
                )

        def state(self) -> dict[str, Any]:
            best = None if self.best is None else float(self.best)
            return {
                "wait": int(self.wait),
                "best": best,
                "best_epoch": int(self.best_epoch),
                "stopped": bool(self.stopped_epoch),
            }

    class RunState(keras.callbacks.Callback):
        """Commits each completed epoch (see the module docstring); skips a halted, partial one."""

        def __init__(
            self,
            run_dir: Path,
            monitor: str,
            mode: str,
            prior: dict | None,
            history: list[dict],
            early_stopping=None,
            halted=lambda: False,
        ):
            super().__init__()
            self.dir, self.monitor, self.mode = Path(run_dir), monitor, mode
            self.best = prior["best"] if prior else None
            self.best_epoch = prior["best_epoch"] if prior else None
            self.history, self.early_stopping, self.halted = history, early_stopping, halted

        def on_epoch_end(self, epoch, logs=None):
            if self.halted():
                return
            done, logs = epoch + 1, {k: float(v) for k, v in (logs or {}).items()}
            ckpt = self.dir / "checkpoints"
            name = f"resume-{done}.keras"
            save_atomic(self.model, ckpt / name)
            value = logs.get(self.monitor)
            if value is not None and improved(self.monitor, self.mode, value, self.best):
                self.best, self.best_epoch = value, done
                save_atomic(self.model, ckpt / "best.keras")
            self.history.append({"epoch": done, **logs})
            _write_history(self.dir / "history.csv", self.history)
            write_json(
                ckpt / RESUME_FILE,
                {
                    "epoch": done,
                    "checkpoint": name,
                    "monitor": self.monitor,
                    "best": self.best,
                    "best_epoch": self.best_epoch,
                    "seed_states": seed_states(self.model),
                    "early_stopping": self.early_stopping.state() if self.early_stopping else None,
                },
            )
            link_atomic(ckpt / name, ckpt / "last.keras")
            for old in ckpt.glob("resume-*.keras"):
                if old.name != name:
                    old.unlink(missing_ok=True)

    return ResumableEarlyStopping, RunState


def save_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")  # Keras wants the .keras suffix
    model.save(tmp)
    os.replace(tmp, path)


def link_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a file system without hard links
        tmp.write_bytes(source.read_bytes())
    os.replace(tmp, target)
