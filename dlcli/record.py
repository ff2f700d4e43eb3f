"""`run.json`: what a run is and how it went — status, command, seed, versions, device, data hash,
timings — rewritten atomically as it changes, so `dlcli runs` reads the truth at any instant.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dlcli.config import Config
from dlcli.files import read_json, write_json


class RunRecord:
    """`run.json`: status, command, seed, versions, device, data hash and timings, kept up to date."""

    def __init__(self, run_dir: Path, config: Config, command: list[str]):
        self.path = run_dir / "run.json"
        self.started = time.time()
        self.data: dict[str, Any] = {
            "status": "running",
            "name": config.name,
            "run_dir": str(run_dir.resolve()),
            "command": command,
            "seed": config.seed,
            "started_at": _iso(self.started),
            "finished_at": None,
            "duration_s": None,
            "versions": versions(),
            "device": None,
            "data": {},
            "timings": {},
            "epochs": {},
            "error": None,
            "config_sha256": config_digest(run_dir),
        }
        self.save()

    @classmethod
    def reopen(cls, run_dir: Path, command: list[str]) -> RunRecord:
        """The record of an existing run, marked running again for a resume."""
        record = cls.__new__(cls)
        record.path = run_dir / "run.json"
        record.data = read_json(record.path)
        record.started = time.time()
        record.data.setdefault("resumes", []).append({"at": _iso(record.started), "command": command})
        record.data.update(status="running", error=None, finished_at=None)
        record.data["config_sha256"] = config_digest(run_dir)  # --resume may have raised train.epochs
        record.save()
        return record

    def save(self) -> None:
        write_json(self.path, self.data)

    def finish(self, status: str, error: str | None = None) -> None:
        now = time.time()
        self.data.update(
            status=status, error=error, finished_at=_iso(now), duration_s=round(now - self.started, 3)
        )
        self.save()


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


#: The libraries whose versions run.json records.
LIBRARIES = ("dlcli", "tensorflow", "keras", "numpy", "pandas", "scikit-learn")


def versions(dists: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def config_digest(run_dir: Path) -> str | None:
    """sha256 of the run's config.yaml as dlcli wrote it: an edit made afterwards shows."""
    try:
        return hashlib.sha256((run_dir / "config.yaml").read_bytes()).hexdigest()
    except OSError:
        return None


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
