"""Atomic file writes: a reader (or a run killed at any instant) sees the old file or the new one,
never half of one. Every file dlcli writes into a run directory goes through `replace_atomic`.

    >>> write_atomic(run_dir / "metrics.json", text)
    >>> replace_atomic(run_dir / "model.keras", model.save)   # a writer that takes a path
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli.errors import RunError


def cache_dir() -> Path:
    """dlcli's own cache (downloads, the Keras catalog of another Keras version): $DLCLI_CACHE_DIR,
    else ~/.cache/dlcli. The one place that says where it is."""
    return Path(os.environ.get("DLCLI_CACHE_DIR", Path.home() / ".cache" / "dlcli")).expanduser()


def _temporary(path: Path) -> Path:
    # beside the target (same file system, so the rename is atomic), hidden, and keeping the suffix:
    # Keras will only save to a name ending in .keras. remove_leftovers() deletes these after a kill.
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def replace_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)  # the rename itself survives a power cut


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `content` to `path` atomically; permissions as `open()` would give (the umask applies)."""
    data = content.encode("utf-8") if isinstance(content, str) else content

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    replace_atomic(path, write)


def link_atomic(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` (a hard link; a copy where links are not supported)."""

    def link(tmp: Path) -> None:
        try:
            os.link(source, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, tmp)

    replace_atomic(target, link)


def symlink_atomic(name: str, link: Path) -> None:
    """Point the symbolic link `link` at `name`, replacing any link there."""
    tmp = _temporary(link)
    os.symlink(name, tmp)
    os.replace(tmp, link)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


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


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
