"""Atomic file writes: a reader (or a run killed at any instant) sees the old file or the new one,
never half of one. Every file dlcli writes into a run directory goes through `replace_atomic`.

    >>> write_atomic(run_dir / "metrics.json", text)
    >>> replace_atomic(run_dir / "model.keras", model.save)   # a writer that takes a path
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli.utils.errors import DataError, RunError


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
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit(tmp: Path, path: Path) -> None:
    """Rename the finished `tmp` (a file, or a folder) over `path` on the same file system, flushed to
    disk before and after: the one way every file dlcli writes comes into place (runs, exports,
    streamed predictions)."""
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(Path(path).parent)  # the rename itself survives a power cut


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

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_directory_of(path: Path) -> Path | None:
    """The dlcli run directory (a folder holding run.json) that `path` is or lies inside, or None."""
    for folder in (path, *path.parents):
        if (folder / "run.json").is_file():
            return folder
    return None


def check_destination(
    path: Path,
    flag: str,
    *,
    kind: str,
    suffixes: tuple[str, ...] = (),
    folder: bool = False,
    replaceable: Callable[[Path], bool] = lambda _: True,
    inside_run: str | None = None,
) -> Path:
    """The one check of a path a user names for dlcli to write `kind` (a plural: "ONNX models") to
    (export's and predict's `--output`). Returns the path, absolute; raises a DataError naming it when:

    - its suffix is not one of `suffixes` (a `.tflite` name holding ONNX bytes misleads every reader);
    - it is, or lies inside, a run directory's own files (only the run's `inside_run` subfolder, such
      as `export`, may be written there), or holds a run directory;
    - it exists and is a folder where a file goes (or a file where a folder goes), or is not a file
      `replaceable` recognizes as an earlier output of the same kind;
    - its folder cannot be created or written to.
    """
    shown = f"{flag} {path}"
    target = Path(os.path.abspath(Path(path).expanduser()))
    if suffixes and target.suffix.lower() not in suffixes:
        got = repr(target.suffix) if target.suffix else "no suffix"
        raise DataError(
            f"{shown}: {kind} are written to names ending {' or '.join(suffixes)}, not {got}; "
            f"name it {target.with_suffix(suffixes[0]).name}"
        )
    real = target.resolve()  # through symbolic links: a link into a run is that run
    run_dir = run_directory_of(real)
    if run_dir is not None:
        parts = real.relative_to(run_dir).parts
        if inside_run is None or len(parts) < 2 or parts[0] != inside_run:
            where = "the run directory" if not parts else "inside the run directory"
            instead = f"{run_dir / inside_run}/" if inside_run else "a folder outside it"
            raise DataError(
                f"{shown}: that is {where} {run_dir}, whose files (model.keras, run.json, checkpoints, "
                f"...) dlcli never writes over; write {kind} to {instead}"
            )
    if real.is_dir() and next(real.glob("**/run.json"), None) is not None:
        raise DataError(f"{shown}: the folder holds dlcli runs, which writing {kind} there would replace")
    if target.exists() or target.is_symlink():
        if folder and not real.is_dir():
            raise DataError(f"{shown}: a file is there, and {kind} are folders; choose a new name")
        if not folder and real.is_dir():
            raise DataError(f"{shown}: that is a folder, and {kind} are files; name a file inside it")
        if not replaceable(real):
            raise DataError(
                f"{shown}: exists and is not one of dlcli's {kind}; dlcli replaces only what it "
                "wrote itself: remove it yourself, or choose a new name"
            )
    check_writable(target.parent, f"{shown}: the folder {Path(path).parent}", f"choose another {flag}")
    return target


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
