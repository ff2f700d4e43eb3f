"""What the CLI prints: its two consoles, the tables of metrics, runs and trials, and live progress
(rich). Importing it imports no TensorFlow, Keras or pandas (tests/test_startup.py).
"""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlcli.runs.scores import by_output, flatten

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def trials_table(rows: list[dict]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    names = [n for n in rows[0] if n != "run"] if rows else []
    for name in names:
        table.add_column(name, justify="left" if name == "state" else "right")
    for row in rows:
        table.add_row(*(fmt(row[n]) if isinstance(row[n], float) else escape(str(row[n])) for n in names))
    return table


def print_wide(table: Table) -> None:
    """A table at its natural width when output is not a terminal (a pipe, a file): no wrapped cells."""
    if out.is_terminal:
        out.print(table)
        return
    width = out.measure(table, options=out.options.update(width=1000)).maximum
    Console(file=out.file, width=max(width, 80), soft_wrap=True).print(table)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def cell(value) -> str:
    if isinstance(value, dict) and "metric" in value:
        return f"{value['metric']} {fmt(value['value'])} @{value.get('epoch')}"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return escape(str(value)) if value is not None else "—"
    if isinstance(value, (int, float)):
        return fmt(value)
    return escape(json.dumps(value))


def metrics_table(metrics: dict[str, dict]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("metric")
    splits = list(metrics)
    for split in splits:
        table.add_column(split, justify="right")
    flat = {split: flatten(values, " ") for split, values in metrics.items()}
    names: list[str] = []
    for values in flat.values():
        names += [k for k in values if k not in names]
    for name in names:
        table.add_row(escape(name), *(fmt(flat[s].get(name)) for s in splits))
    return table


def spread_table(splits: dict[str, dict]) -> Table:
    """Cross-validation: each metric's mean ± spread (standard deviation over the folds) per split."""
    table = Table(show_edge=False, header_style="bold")
    table.add_column("metric")
    for split in splits:
        table.add_column(f"{split} (mean ± sd)", justify="right")
    names: list[str] = []
    for values in splits.values():
        names += [k for k in values if k not in names]
    for name in names:
        cells = [splits[s].get(name) for s in splits]
        table.add_row(escape(name), *(f"{fmt(c['mean'])} ± {fmt(c['std'])}" if c else "" for c in cells))
    return table


def importance_table(found: dict) -> Table:
    """`dlcli explain`: each column's drop in the metric when shuffled, mean ± spread, largest first."""
    title = (
        f"drop in {found['metric']} when a column is shuffled ({found['repeats']} times; "
        f"{found['metric']} {fmt(found['baseline'])} on {found['rows']} rows)"
    )
    table = Table(show_edge=False, header_style="bold", title=escape(title), title_justify="left")
    for name in ("column", "importance", "spread"):
        table.add_column(name, justify="left" if name == "column" else "right")
    for row in found["columns"]:
        table.add_row(escape(row["column"]), fmt(row["importance"]), fmt(row["spread"]))
    return table


#: Classes beyond this many are left to metrics.json (per_class) rather than printed.
MAX_PRINTED_CLASSES = 20


def print_per_class(metrics: dict[str, dict]) -> None:
    """Precision, recall, F1 and support of each class on the test split (else the last one scored)."""
    split = "test" if "test" in metrics else list(metrics)[-1]
    for output, values in by_output(metrics[split]).items():
        per_class = values.get("per_class")
        if not per_class or len(per_class) > MAX_PRINTED_CLASSES:
            continue
        title = f"per class ({split}{', ' + output if output else ''})"
        table = Table(show_edge=False, header_style="bold", title=escape(title), title_justify="left")
        for name in ("class", "precision", "recall", "f1", "support"):
            table.add_column(name, justify="left" if name == "class" else "right")
        for label, row in per_class.items():
            table.add_row(escape(label), *(fmt(row[k]) for k in ("precision", "recall", "f1", "support")))
        out.print(table)


def fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def print_notes(lines: list[str]) -> None:
    for line in lines:
        err.print(f"note: {escape(line)}", highlight=False)


def print_light_model(entry: dict | None) -> None:
    """The run's light model (train.light_model): where it is, or why predict stays on TensorFlow."""
    if entry is None:
        return
    if entry["format"] is not None:
        err.print(
            f"note: light model {escape(entry['path'])} ({entry['format']}, checked on the test rows, "
            f"{entry['seconds']:.1f} s): predict and serve use it without TensorFlow",
            highlight=False,
        )
    else:
        err.print(
            f"note: no light model ({escape(entry['reason'])}): predict and serve use TensorFlow",
            highlight=False,
        )


class Rows:
    """Live progress of a pass over a streamed table (rich): rows done, rows per second, time left.
    Called as `rows(what, done, fraction)`; a pass is done when its fraction reaches 1."""

    def __init__(self, console=None) -> None:
        self.console, self.progress, self.task, self.what, self.clock = console or err, None, None, None, 0.0

    def __call__(self, what: str, done: int, fraction: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[rows]} rows  {task.fields[speed]} rows/s"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
        if what != self.what:
            self.what, self.clock = what, time.perf_counter()
            self.task = self.progress.add_task(what, total=1.0, rows="0", speed="-")
        speed = done / max(time.perf_counter() - self.clock, 1e-9)
        self.progress.update(self.task, completed=fraction, rows=f"{done:,}", speed=f"{speed:,.0f}")
        if fraction >= 1:
            self.progress.remove_task(self.task)
            self.progress.console.print(f"{what}: {done:,} rows at {speed:,.0f} rows/s", highlight=False)
            self.what = None

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class Progress:
    """Live per-epoch progress (rich), fed by dlcli.training.train's Keras callback, with rows per second when
    the batch size is known; `rows` shows a streamed table's passes (statistics, scoring)."""

    def __init__(self, batch_size: int | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            console=out,
            transient=True,
        )
        self.task = None
        self.epoch = 1
        self.rows = Rows(out)
        self.batch_size, self.clock = batch_size, 0.0

    def notes(self, lines: list[str]) -> None:
        print_notes(lines)

    def train_begin(self, epochs: int, steps: int | None) -> None:
        self.rows.close()
        self.epochs, self.steps = epochs, steps
        self.progress.start()
        self._new_task()

    def _new_task(self) -> None:
        self.clock, self.step = time.perf_counter(), 0
        self.task = self.progress.add_task(f"epoch {self.epoch}/{self.epochs}", total=self.steps, logs="")

    def _speed(self) -> str:
        if not self.batch_size or not self.step:
            return ""
        return f"{self.step * self.batch_size / max(time.perf_counter() - self.clock, 1e-9):,.0f} rows/s  "

    def batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.step = step
        self.progress.update(self.task, completed=step, logs=self._speed() + logline(logs))

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.progress.remove_task(self.task)
        self.progress.console.print(
            f"epoch {epoch}/{self.epochs}  {self._speed()}{logline(logs)}", highlight=False, soft_wrap=True
        )
        self.epoch = epoch + 1
        if epoch < self.epochs:
            self._new_task()

    def train_end(self) -> None:
        self.progress.stop()


def logline(logs: dict[str, float]) -> str:
    return "  ".join(f"{k} {fmt(v)}" for k, v in logs.items() if k != "learning_rate")
