"""Optional MLflow tracking (`tracking.mlflow` in the config, `pip install 'dlcli[mlflow]'`).

One MLflow run per dlcli run: the resolved config as params, every epoch's logs as metrics (step =
epoch), the final status as the MLflow status, and the run directory as artifacts. The MLflow run id
is kept in run.json, so `--resume` goes on logging into the same MLflow run. It goes through
`MlflowClient` rather than the fluent `mlflow.start_run`, so no global "active run" leaks into a
library user's process.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from dlcli.config.config import Config
from dlcli.runs.runs import flatten
from dlcli.utils.errors import RunError

#: dlcli status → MLflow run status.
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "pruned": "KILLED"}
#: Never uploaded: the training lock, temporary files, the resume checkpoints (best.keras and
#: model.keras already hold the useful weights).
SKIP = (".lock", ".tmp", "resume-", "last.keras")
PARAM_LIMIT = 6000  # MLflow's longest param value


class MlflowTracker:
    def __init__(self, config: Config, run_dir: Path, record_data: dict[str, Any]):
        from mlflow.tracking import MlflowClient

        settings = config.tracking.mlflow
        self.run_dir = run_dir
        saved = record_data.get("tracking", {}).get("mlflow")
        if saved:  # a resumed run keeps logging into its MLflow run, wherever that is
            self.client = MlflowClient(tracking_uri=saved["tracking_uri"])
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        self.client = MlflowClient(tracking_uri=_uri(settings.tracking_uri, config))
        name = settings.experiment or config.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment:
            experiment_id = experiment.experiment_id
        else:  # artifacts of a SQLite store go beside the database, not into whatever folder we run in
            uri = self.client.tracking_uri
            beside = (
                Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
                if uri.startswith("sqlite:///")
                else None
            )
            experiment_id = self.client.create_experiment(name, artifact_location=beside and beside.as_uri())
        run = self.client.create_run(
            experiment_id, run_name=f"{config.name}/{run_dir.name}", tags={"dlcli.run_dir": str(run_dir)}
        )
        self.run_id = run.info.run_id
        record_data["tracking"] = {
            "mlflow": {
                "run_id": self.run_id,
                "experiment_id": experiment_id,
                "tracking_uri": self.client.tracking_uri,
            }
        }
        from mlflow.entities import Param

        params = [
            Param(key, _param(value))
            for key, value in flatten(config.to_yaml_dict()).items()
            if value is not None
        ]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """One completed epoch's logs at step `epoch` (1-based), skipping values MLflow rejects."""

        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), stamp, epoch)
            for key, value in logs.items()
            if math.isfinite(float(value))
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, status: str, metrics: dict[str, dict] | None = None) -> str | None:
        """Final split metrics, the run directory as artifacts and the status; a warning if that failed
        (the run's own outcome stands: the tracking server is not part of it)."""
        try:
            self._finish(status, metrics)
        except Exception as exc:  # noqa: BLE001 - MLflow and its stores raise many types
            return f"tracking.mlflow: could not log the end of the run ({type(exc).__name__}: {exc})"
        return None

    def _finish(self, status: str, metrics: dict[str, dict] | None) -> None:
        from mlflow.entities import Metric

        if metrics:
            final = [
                Metric(f"{split}_{name}", float(value), 0, 0)
                for split, values in metrics.items()
                for name, value in values.items()
                if isinstance(value, (int, float)) and math.isfinite(float(value))
            ]
            for start in range(0, len(final), 1000):
                self.client.log_batch(self.run_id, metrics=final[start : start + 1000])
        for path in sorted(self.run_dir.rglob("*")):
            if path.is_file() and not any(part in path.name for part in SKIP):
                folder = path.parent.relative_to(self.run_dir).as_posix()
                self.client.log_artifact(self.run_id, str(path), None if folder == "." else folder)
        self.client.set_tag(self.run_id, "dlcli.status", status)
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))


def _uri(value: str | None, config: Config) -> str | None:
    """A plain path, relative to the config file like every other path: `x.db` a SQLite store,
    anything else a folder (MLflow's file store, which MLflow 3 accepts only with
    MLFLOW_ALLOW_FILE_STORE=true)."""
    if value is None or ":" in value.split("/")[0]:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and config._source is not None:
        path = Path(config._source).parent / path
    path = path.resolve()
    return f"sqlite:///{path}" if path.suffix == ".db" else path.as_uri()


def _param(value: Any) -> str:
    text = str(value)
    return text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 1] + "…"


def start(config: Config, run_dir: Path, record_data: dict[str, Any]) -> MlflowTracker | None:
    """The run's MLflow tracker (its id goes into `record_data`), or None without tracking.mlflow."""
    if config.tracking.mlflow is None:
        return None
    try:
        return MlflowTracker(config, run_dir, record_data)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types for a bad URI or server
        uri = config.tracking.mlflow.tracking_uri or "the default tracking URI"
        raise RunError(
            f"tracking.mlflow: cannot start an MLflow run at {uri} ({type(exc).__name__}: {exc}); "
            "check tracking_uri, or remove tracking.mlflow to train without MLflow"
        ) from None


class Relay:
    """A training listener that forwards to the user's listener (progress) and logs each epoch."""

    def __init__(self, listener, tracker: MlflowTracker):
        self.listener, self.tracker = listener, tracker
        self.rows = getattr(listener, "rows", None)  # a streamed table's passes

    def notes(self, lines: list[str]) -> None:
        if self.listener is not None and hasattr(self.listener, "notes"):
            self.listener.notes(lines)

    def train_begin(self, epochs: int, steps: int | None) -> None:
        if self.listener is not None:
            self.listener.train_begin(epochs, steps)

    def batch_end(self, step: int, logs: dict[str, float]) -> None:
        if self.listener is not None:
            self.listener.batch_end(step, logs)

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.tracker.log_epoch(epoch, logs)
        if self.listener is not None:
            self.listener.epoch_end(epoch, logs)

    def train_end(self) -> None:
        if self.listener is not None:
            self.listener.train_end()
