"""`dlcli runs` and `dlcli compare`: what a folder of run directories holds, read without TensorFlow.

Every run is listed, whatever state it is in: `running` (a live process holds its training lock),
`killed` (run.json still says running but no process holds the lock: `--resume` continues it),
`completed`, `failed`, `interrupted`, and `broken` (run.json missing or unreadable).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dlcli.runs import runs, scores
from dlcli.utils.errors import RunError

STAMP = re.compile(r"^\d{8}-\d{6}(-\d+)?$")
STATUSES = ("running", "completed", "failed", "interrupted", "pruned")
#: The test metric a row shows: the first of these that metrics.json has.
HEADLINE = ("accuracy", "r2", "mae", "loss")


def find(root: Path) -> list[Path]:
    """Run directories under `root` (a runs folder, one name's folder, or a run directory)."""
    root = Path(root)
    if (root / "run.json").is_file():
        return [root]
    found = set()
    for pattern in ("*", "*/*", "tune-*/trial-*", "*/tune-*/trial-*"):  # dlcli tune's trials too
        for path in root.glob(pattern):
            if path.is_symlink() or not path.is_dir():
                continue
            if (path / "run.json").is_file() or STAMP.match(path.name):
                found.add(path)
    return sorted(found)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def summary(run_dir: Path) -> dict[str, Any]:
    """One row of `dlcli runs`: never raises for a damaged directory, it says `broken`."""
    row: dict[str, Any] = {
        "run": str(run_dir),
        "name": run_dir.parent.name,
        "id": run_dir.name,
        "started_at": None,
        "status": "broken",
        "epochs": None,
        "epochs_planned": None,
        "best": None,
        "test": None,
        "duration_s": None,
        "error": None,
    }
    record = _json(run_dir / "run.json")
    if not isinstance(record, dict) or record.get("status") not in STATUSES:
        row["error"] = "run.json is missing or unreadable"
        return row
    config = _yaml(run_dir / "config.yaml")
    train = config.get("train") if isinstance(config, dict) else None
    resume = _json(run_dir / "checkpoints" / "resume.json")
    resume = resume if isinstance(resume, dict) else {}
    status = record["status"]
    if status == "running" and not runs.is_training(run_dir):
        status = "killed"
    row.update(
        name=record.get("name", row["name"]),
        started_at=record.get("started_at"),
        status=status,
        epochs=resume.get("epoch", (record.get("epochs") or {}).get("completed", 0)),
        epochs_planned=train.get("epochs") if isinstance(train, dict) else None,
        error=record.get("error"),
    )
    monitor = resume.get("monitor") or (record.get("epochs") or {}).get("monitor")
    if monitor and resume.get("best") is not None:
        row["best"] = {"metric": monitor, "value": resume["best"], "epoch": resume.get("best_epoch")}
    metrics = _json(run_dir / "metrics.json")
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if isinstance(test, dict):
        row["test"] = _headline(test)
    if isinstance(record.get("folds"), int):  # a cross-validation folder (dlcli train --folds)
        _folds(run_dir, record, row)
    row["duration_s"] = record.get("duration_s")
    if status == "running" and row["started_at"]:
        try:
            started = datetime.fromisoformat(row["started_at"]).timestamp()
            row["duration_s"] = round(time.time() - started, 3)
        except ValueError:
            pass
    return row


def _folds(folder: Path, record: dict, row: dict[str, Any]) -> None:
    """A cross-validation folder's row: its folds done of all, the test metric's mean ± spread."""
    done = [p for p in folder.glob("fold-*") if (_json(p / "run.json") or {}).get("status") == "completed"]
    row.update(epochs=None, folds={"completed": len(done), "planned": record["folds"]})
    summary = _json(folder / "cv.json")
    spread = (summary or {}).get("splits", {}).get("test", {}) if isinstance(summary, dict) else {}
    if row["test"] and isinstance(spread.get(row["test"]["metric"]), dict):
        row["test"]["spread"] = spread[row["test"]["metric"]].get("std")


def _headline(test: dict) -> dict | None:
    """The test metric a row shows; several targets: the first output's (`<output>.<metric>`)."""
    for output, values in scores.by_output(test).items():
        name = next((m for m in HEADLINE if isinstance(values.get(m), (int, float))), None)
        if name:
            return {"metric": f"{output}.{name}" if output else name, "value": values[name]}
    return None


def _start(row: dict[str, Any]) -> float:
    """When a run started: run.json's time, else (a broken run) the time its directory name gives."""
    try:
        if row["started_at"]:
            return datetime.fromisoformat(row["started_at"]).timestamp()
        return datetime.strptime(row["id"][:15], "%Y%m%d-%H%M%S").timestamp()
    except ValueError:
        return 0.0


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every run under `root`, newest first."""
    rows = [summary(path) for path in find(root)]
    return sorted(rows, key=lambda r: (_start(r), r["id"]), reverse=True)


def compare(run_dirs: list[Path]) -> dict[str, Any]:
    """The config keys whose values differ, and every metric, side by side (one list entry per run)."""
    if len(run_dirs) < 2:
        raise RunError("compare: give at least two runs, e.g. dlcli compare runs/a/latest runs/b/latest")
    configs = []
    for path in run_dirs:
        raw = _yaml(path / "config.yaml")
        if not isinstance(raw, dict):
            raise RunError(f"{path / 'config.yaml'}: missing or unreadable; cannot compare this run")
        configs.append(runs.flatten(raw))
    keys = sorted(set().union(*configs))
    config = {
        k: [c.get(k) for c in configs] for k in keys if any(c.get(k) != configs[0].get(k) for c in configs)
    }
    flat = []
    for path in run_dirs:
        metrics = _json(path / "metrics.json")
        flat.append(
            {
                name: value
                for split, values in (metrics.items() if isinstance(metrics, dict) else [])
                if isinstance(values, dict)
                for name, value in scores.flatten(values, prefix=f"{split}.").items()
            }
        )
    order = list(dict.fromkeys(k for f in flat for k in f))
    rows = [summary(path) for path in run_dirs]
    return {
        "runs": [f"{row['name']}/{row['id']}" for row in rows],
        "summary": {
            "status": [row["status"] for row in rows],
            "epochs": [row["epochs"] for row in rows],
            "best": [row["best"] for row in rows],
            "duration_s": [row["duration_s"] for row in rows],
        },
        "config": config,
        "metrics": {k: [f.get(k) for f in flat] for k in order},
    }
