"""The run directory as a place: create it, lock it while training, find `latest`, clean up after a
kill. What goes in it: record.py (run.json), saved.py (config and model), files.py (atomic writes).

runs/<name>/<YYYYmmdd-HHMMSS>/   config.yaml run.json preprocessing.json model.keras
                                 checkpoints/ history.csv metrics.json plots/ tensorboard/
runs/<name>/latest → the newest completed run of that name
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dlcli.utils.errors import RunError
from dlcli.utils.files import symlink_atomic

DEFAULT_RUNS_DIR = Path("runs")


def config_id(data) -> str:
    """A short, stable digest of a resolved config (and what else decides a folder): the folder of a
    search (`tune-<id>`) or of a cross-validation (`cv-<id>`), found again by the same command."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def create(runs_dir: Path, name: str) -> Path:
    """A new, empty run directory; two runs started in the same second get distinct names."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = Path(runs_dir) / name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(
            f"{parent}: cannot create the run directory ({exc}); choose another with --run-dir"
        ) from None
    for attempt in range(1000):
        run_dir = parent / (stamp if attempt == 0 else f"{stamp}-{attempt + 1}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(f"{run_dir}: cannot create the run directory ({exc})") from None
        return run_dir
    raise RunError(f"{parent}: too many runs started in the same second")


@contextmanager
def held(lock: Path) -> Iterator[bool]:
    """Whether this process holds the file lock `lock` (exclusive, not waited for) for the block.

    The kernel drops it when the process dies, however it dies. Where `fcntl` is missing (Windows),
    every lock is held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield True
        return
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


@contextmanager
def training_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir/.lock` while training: a second `--resume` of the same run refuses, not races
    (`held`: a killed run never stays locked)."""
    with held(run_dir / ".lock") as mine:
        if not mine:
            raise RunError(
                f"{run_dir}: another dlcli process is training this run now; wait for it to end "
                "or stop it (Ctrl-C) before resuming"
            )
        yield


def is_training(run_dir: Path) -> bool:
    """Whether a live process holds the run's training lock (the lock file is not created or taken)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no locks, so no way to tell
        return False
    try:
        with open(run_dir / ".lock") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while anyone holds LOCK_EX
    except BlockingIOError:
        return True
    except OSError:  # no lock file: never trained, or not by this version
        return False
    return False


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → `{"a.b.c": value}` (lists and empty dicts are values)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def remove_leftovers(run_dir: Path) -> None:
    """Temporary files a killed process left behind (never a file a reader would look at)."""
    for folder in (run_dir, run_dir / "checkpoints"):
        for path in folder.glob(".*.tmp*"):
            path.unlink(missing_ok=True)


def mark_latest(run_dir: Path) -> None:
    """Point `<runs_dir>/<name>/latest` at `run_dir`, replacing the link atomically."""
    symlink_atomic(run_dir.name, run_dir.parent / "latest")


def resolve(run: str | Path, runs_dir: Path = DEFAULT_RUNS_DIR, folds: bool = False) -> Path:
    """A run directory from a path, `latest` (newest under `runs_dir`) or `NAME/latest`; a
    cross-validation folder (`dlcli train --folds`) only with `folds` (compare takes it as one side)."""
    text = str(run)
    if text == "latest":
        links = [p for p in Path(runs_dir).glob("*/latest") if p.exists()]
        if not links:
            raise RunError(
                f"latest: no completed runs under {Path(runs_dir).resolve()}; train one first "
                "with `dlcli train CONFIG`, or pass the run directory"
            )
        return max((p.resolve() for p in links), key=lambda d: (d.name, str(d)))
    path = Path(text)
    if not path.exists() and (Path(runs_dir) / text).exists():
        path = Path(runs_dir) / text
    path = path.resolve()
    if not (path / "run.json").is_file():
        raise RunError(f"{run}: not a dlcli run directory (no run.json in {path})")
    if not folds and ((path / "cv.json").is_file() or (path / "fold-1").is_dir()):
        raise RunError(
            f"{run}: a cross-validation folder, whose folds are the runs: give one of them "
            f"({path / 'fold-1'} …), or list them with `dlcli runs {path}`"
        )
    return path
