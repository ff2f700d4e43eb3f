"""The run directory: create it, write into it atomically, find `latest`, load it back safely.

runs/<name>/<YYYYmmdd-HHMMSS>/   config.yaml run.json preprocessing.json model.keras
                                 checkpoints/ history.csv metrics.json plots/ tensorboard/
runs/<name>/latest → the newest completed run of that name
"""

from __future__ import annotations

import errno
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dlcli.config import Config, validate
from dlcli.errors import DlcliError, RunError
from dlcli.yamlio import dump

DEFAULT_ROOT = Path("runs")


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is this a dlcli run directory?") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None


def check_writable(folder: Path, label: str, fix: str) -> None:
    """Fail now, before minutes of work, when `folder` cannot be created or written to.

    Probes the nearest folder that exists, so a refused command leaves nothing behind.
    """
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(probe))
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise RunError(f"{label}: cannot be written ({exc.strerror or exc}); {fix}") from None


def create(root: Path, name: str) -> Path:
    """A new, empty run directory; two runs started in the same second get distinct names."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = Path(root) / name
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
def training_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir/.lock` while training: a second `--resume` of the same run refuses, not races.

    The kernel drops the lock when the process dies, however it dies, so a killed run never stays
    locked. Where `fcntl` is missing (Windows) runs are not locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    handle = open(run_dir / ".lock", "a")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"{run_dir}: another dlcli process is training this run now; wait for it to end "
                "or stop it (Ctrl-C) before resuming"
            ) from None
        yield
    finally:
        handle.close()


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
    """Point `<root>/<name>/latest` at `run_dir`, replacing the link atomically."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, link)


def resolve(run: str | Path, root: Path = DEFAULT_ROOT) -> Path:
    """A run directory from a path, `latest` (newest under `root`) or `NAME/latest`."""
    text = str(run)
    if text == "latest":
        links = [p for p in Path(root).glob("*/latest") if p.exists()]
        if not links:
            raise RunError(
                f"latest: no completed runs under {Path(root).resolve()}; train one first "
                "with `dlcli train CONFIG`, or pass the run directory"
            )
        return max((p.resolve() for p in links), key=lambda d: (d.name, str(d)))
    path = Path(text)
    if not path.exists() and (Path(root) / text).exists():
        path = Path(root) / text
    path = path.resolve()
    if not (path / "run.json").is_file():
        raise RunError(f"{run}: not a dlcli run directory (no run.json in {path})")
    return path


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


def save_config(run_dir: Path, config: Config) -> None:
    write_atomic(run_dir / "config.yaml", dump(config.to_yaml_dict()))


def load_config(run_dir: Path) -> Config:
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None
    try:
        return validate(raw, {}, path)
    except DlcliError as exc:
        raise RunError(f"{path}: the saved config is no longer valid:\n{exc}") from None


def load_model(run_dir: Path):
    """`model.keras`, loaded with `safe_mode=True`: a run directory never executes code."""
    import keras

    path = run_dir / "model.keras"
    if not path.is_file():
        record = read_json(run_dir / "run.json")
        why = {
            "failed": f"the run failed before any model was kept: {record.get('error')}",
            "running": f"the run is still training or was killed; `dlcli train --resume {run_dir}` "
            "continues it",
            "interrupted": "the run was interrupted before it finished an epoch",
        }.get(record.get("status"), "the run did not finish")
        raise RunError(f"{path}: missing; {why} (see {run_dir / 'run.json'})")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a broken archive
        raise RunError(f"{path}: cannot be loaded safely ({type(exc).__name__}: {exc})") from None


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
