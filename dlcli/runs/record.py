"""`run.json`: what a run is and how it went — status, command, seed, versions, device, data hash,
timings — rewritten atomically as it changes, so `dlcli runs` reads the truth at any instant.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dlcli.config.config import Config
from dlcli.utils.errors import RunError
from dlcli.utils.files import read_json, sha256_of, write_json


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
            "artifacts": {},
        }
        seal(self.data, run_dir, "preprocessing.json")
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


def seal(data: dict, run_dir: Path, *names: str) -> None:
    """Record in run.json's `data` the sha256 of each of the run's files `names` (relative paths), as
    dlcli wrote them: check_sealed() refuses a file edited or swapped since (an edited class list
    would invert every label without a word)."""
    sealed = data.setdefault("artifacts", {})
    for name in names:
        if (run_dir / name).is_file():  # a cluster worker's folder has no preprocessing.json
            sealed[name] = sha256_of(run_dir / name)


def seal_file(run_dir: Path, *names: str) -> None:
    """seal() for a finished run: run.json read, updated and written again (export's files)."""
    data = read_json(run_dir / "run.json")
    seal(data, run_dir, *names)
    write_json(run_dir / "run.json", data)


def amend(run_dir: Path, **fields) -> None:
    """Fields added to a finished run's run.json (read, updated, written again atomically)."""
    data = read_json(run_dir / "run.json")
    data.update(fields)
    write_json(run_dir / "run.json", data)


def check_sealed(run_dir: Path, *names: str) -> set[str]:
    """Raise RunError when one of the run's files `names` is not the file dlcli wrote (its sha256
    differs from the one run.json recorded; run.json is read once). Files run.json records nothing for
    (runs of dlcli before 0.3) are not checked. Returns the names it checked."""
    try:
        sealed = read_json(run_dir / "run.json").get("artifacts", {})
    except RunError:
        return set()  # a run.json that cannot be read is reported by whoever needs it
    checked = set()
    for name in names:
        path, recorded = run_dir / name, sealed.get(name)
        if recorded is None or not path.is_file():
            continue
        checked.add(name)
        now = sha256_of(path)
        if now != recorded:
            raise RunError(
                f"{path}: changed since dlcli wrote it (sha256 {now[:12]}…, run.json recorded "
                f"{recorded[:12]}…): it was edited, truncated or copied from another run, and using it "
                "would give wrong answers. Restore it from a copy of the run, or train (or export) again"
            )
    return checked


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
