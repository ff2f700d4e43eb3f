"""Errors a user can cause, each with what happened, what was expected and how to fix it.

The CLI prints any `DlcliError` as one block without a traceback and exits with `exit_code`.
"""

from __future__ import annotations

import signal


class DlcliError(Exception):
    """Base of every error dlcli reports to a user (exit code 2)."""

    exit_code = 2
    prefix = "error"


class ConfigError(DlcliError):
    """The YAML config or an override is wrong.

    Args:
        problems: one line each, already prefixed with `FILE:LINE:COL: key.path:` where known.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DataError(DlcliError):
    """A data file, column or array is not what the config says it should be."""


class RunError(DlcliError):
    """A run directory is missing, incomplete or cannot be used for the requested command."""


class DeviceError(DlcliError):
    """--device, train.distribution or the cluster (TF_CONFIG, Slurm) asks for what is not there."""


class TrainingFailed(DlcliError):
    """The run itself failed (diverged, interrupted); exit code 1."""

    exit_code = 1


class Interrupted(DlcliError):
    """Training stopped on SIGINT (exit 130) or SIGTERM (exit 143) after saving what it had."""

    prefix = "interrupted"

    def __init__(self, signum: int, run_dir, epochs: int):

        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} received; stopped after {epochs} completed epoch(s), all saved in {run_dir}. "
            f"Continue with: dlcli train --resume {run_dir}"
        )


class Pruned(Exception):  # noqa: N818 - a trial's outcome, not a failure
    """`dlcli tune`'s pruner stopped a trial whose validation curve fell behind; its run is marked
    `pruned`. Never reaches the command line: the search goes on."""

    def __init__(self, epoch: int, value: float):
        self.epoch, self.value = epoch, value
        super().__init__(f"pruned after epoch {epoch} ({value:.6g}): behind the other trials at that epoch")
