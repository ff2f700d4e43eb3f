"""What a run needs to continue after a kill, written once per epoch in an order that survives one.

At the end of every completed epoch `RunState` writes, each atomically (temp file + rename):

1. `checkpoints/resume-<E>.keras`: weights and optimizer state after epoch E;
2. `checkpoints/best.keras`, when the monitored quantity improved: a hard link to the file of step 1
   (the same weights, without saving them twice);
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
from dataclasses import dataclass, field, fields
from pathlib import Path

from dlcli.utils.errors import RunError
from dlcli.utils.files import replace_atomic, write_atomic

RESUME_FILE = "resume.json"


def improved(direction: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if direction == "max" else value < best


@dataclass(frozen=True)
class ResumeState:
    """`checkpoints/resume.json`: the last committed epoch and what continuing from it needs."""

    epoch: int
    checkpoint: str  # the resume-<epoch>.keras file beside resume.json
    monitor: str | None = None
    direction: str | None = None  # min or max, as Keras decided it (older runs: decided again)
    best: float | None = None
    best_epoch: int | None = None
    seed_states: list = field(default_factory=list)
    early_stopping: dict | None = None  # of the current phase
    phase: int = 1  # 2: fine-tuning (train.fine_tune)
    phase_start: int = 0  # epochs completed before phase 2 began

    @property
    def stopped_early(self) -> bool:
        return bool((self.early_stopping or {}).get("stopped"))


def read_resume(run_dir: Path) -> ResumeState | None:
    path = run_dir / "checkpoints" / RESUME_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(ResumeState)}
        state = ResumeState(**{k: v for k, v in data.items() if k in known})
        int(state.epoch)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: unreadable resume state ({exc})") from None
    if not (run_dir / "checkpoints" / state.checkpoint).is_file():
        raise RunError(f"{path}: names {state.checkpoint}, which is missing")
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
    rows = [{k: (int(v) if k in ("epoch", "phase") else float(v)) for k, v in row.items()} for row in rows]
    write_history(path, rows)
    return rows


def write_history(path: Path, rows: list[dict]) -> None:
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


def save_atomic(model, path: Path) -> None:
    replace_atomic(path, model.save)
