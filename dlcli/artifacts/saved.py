"""A run directory read back for evaluate, predict and resume, without executing anything from it:
the config with `yaml.safe_load`, the preprocessing state as checked JSON, `model.keras` with
`safe_mode=True` after its archive is checked (bounded reads, a clear word for a broken file).

Evaluate and predict check only what they use: the config's types, not today's machine (an optional
extra a run was tracked with, the installed Keras catalog), so a run stays usable where it was not made.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import yaml

from dlcli.config.config import Config, validate
from dlcli.config.keypaths import problem_lines
from dlcli.preprocessing import preprocessing
from dlcli.runs.record import check_sealed, config_digest
from dlcli.utils.errors import DataError, DlcliError, RunError
from dlcli.utils.files import read_json, write_atomic
from dlcli.utils.yamlio import dump

#: The JSON members of a Keras archive (config.json, metadata.json) are a few kB to a few MB; a larger
#: one is crafted or broken, and Keras would read it whole into memory.
MAX_ARCHIVE_JSON = 32 * 1024 * 1024


def save_config(run_dir: Path, config: Config) -> None:
    write_atomic(run_dir / "config.yaml", dump(config.to_yaml_dict()))


def _read_config(run_dir: Path) -> tuple[Path, dict]:
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None
    if not isinstance(raw, dict):
        raise RunError(f"{path}: not a dlcli config (expected a mapping of keys)")
    return path, raw


def load_config(run_dir: Path) -> Config:
    """The run's config checked as a new one is (for --resume, which trains on this machine)."""
    path, raw = _read_config(run_dir)
    try:
        return validate(raw, {}, path)
    except DlcliError as exc:
        raise RunError(f"{path}: the saved config is no longer valid:\n{exc}") from None


def edited_config(run_dir: Path) -> str | None:
    """Why config.yaml no longer says how the run trained (its sha256 is not the one run.json
    recorded), or None. Runs of dlcli before 0.2 recorded none: nothing to compare."""
    recorded = read_json(run_dir / "run.json").get("config_sha256")
    if recorded is None or recorded == config_digest(run_dir):
        return None
    return (
        f"{run_dir / 'config.yaml'} was edited after training (its sha256 differs from the one in "
        "run.json); the model and preprocessing.json are as trained, whatever it says: train a new "
        "run to use the changes"
    )


def inference_config(run_dir: Path) -> tuple[Config, list[str]]:
    """The run's config for evaluate and predict, and warnings.

    Only its types are checked: nothing about this machine. Keys this dlcli does not know (a run from
    another version) are dropped with a warning.
    """
    from pydantic import ValidationError

    path, raw = _read_config(run_dir)
    warnings: list[str] = []
    try:
        return Config.model_validate(raw), warnings
    except ValidationError as exc:
        unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        others = [e for e in exc.errors() if e["type"] != "extra_forbidden"]
        if others:
            problems = "; ".join(problem_lines(others, Config)[:5])
            raise RunError(f"{path}: not a config this dlcli can read ({problems})") from None
    for loc in unknown:
        parent = raw
        for part in loc[:-1]:
            parent = parent[part]
        parent.pop(loc[-1], None)
    dotted = ", ".join(".".join(map(str, loc)) for loc in unknown)
    warnings.append(f"{path}: keys this dlcli does not know were ignored ({dotted})")
    return Config.model_validate(raw), warnings


def load_preprocessing(run_dir: Path):
    """`preprocessing.json` as a Preprocessor, checked against state_schema before anything uses it."""

    path = run_dir / "preprocessing.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; the run did not get past loading its data")
    prep = preprocessing.from_json(path.read_text(encoding="utf-8"), str(path))  # its schema first
    check_sealed(run_dir, "preprocessing.json")  # then: the very file training wrote
    return prep


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
    check_archive(path)
    check_sealed(run_dir, "model.keras")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a broken archive
        raise RunError(f"{path}: cannot be loaded safely ({type(exc).__name__}: {exc})") from None


def check_archive(path: Path) -> None:
    """Refuse a `.keras` file that is not a whole zip archive, or whose JSON members are larger than
    MAX_ARCHIVE_JSON, before Keras reads any of it. The sizes come from the archive's directory, and
    Python's zipfile never returns more than the size stated there."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RunError(
            f"{path}: truncated or not a Keras archive ({exc}); retrain, or copy the run directory again"
        ) from None
    if "config.json" not in members:
        raise RunError(f"{path}: truncated or not a Keras archive (it holds no config.json)")
    for name, info in members.items():
        if name.endswith(".json") and info.file_size > MAX_ARCHIVE_JSON:
            raise RunError(
                f"{path}: its {name} is {info.file_size:,} bytes once unpacked (a Keras model's is "
                f"under {MAX_ARCHIVE_JSON:,}); refusing to read a crafted or broken archive"
            )
