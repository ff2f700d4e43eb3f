"""Commented starter configs written by `dlcli init TEMPLATE [PATH]`."""

from __future__ import annotations

from pathlib import Path

from dlcli.utils.errors import ConfigError
from dlcli.utils.files import write_atomic

HERE = Path(__file__).parent
TEMPLATES = (
    "tabular-classification",
    "tabular-regression",
    "image-classification",
    "image-folder",
    "text-classification",
    "timeseries",
)


def template_text(name: str, path: Path) -> str:
    if name not in TEMPLATES:
        from dlcli.config.checks import suggest

        raise ConfigError(
            f"init: unknown template {name!r}{suggest(name, list(TEMPLATES))} "
            f"(expected one of {', '.join(TEMPLATES)})"
        )
    return (HERE / f"{name}.yaml").read_text(encoding="utf-8").replace("{path}", str(path))


def write_template(name: str, path: Path | None = None, force: bool = False) -> Path:
    """Write the template to `path` (default `NAME.yaml`); never overwrites unless `force`."""
    path = Path(path) if path is not None else Path(f"{name}.yaml")
    return write_new(path, template_text(name, path), force)


def write_new(path: Path, text: str, force: bool = False) -> Path:
    """`dlcli init`'s one writer (a template, or a config written from data): `text` to `path`,
    atomically, never over an existing file unless `force`."""
    if path.exists() and not force:
        raise ConfigError(f"init: {path} already exists; choose another path or pass --force")
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise ConfigError(f"init: cannot write {path} ({exc})") from None
    return path
