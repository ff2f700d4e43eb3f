"""Helper processes a command starts beside itself (`tune --jobs`, `train --folds --jobs`): started
together, terminated if the command fails, waited for when it ends.

    >>> with started([[sys.executable, "-m", "dlcli", "tune", ...]]):
    ...     run_my_share()
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def started(commands: list[list[str]]) -> Iterator[list[subprocess.Popen]]:
    """One process per command; on an exception (Ctrl-C included) each is terminated; all waited for."""
    children = [subprocess.Popen(command) for command in commands]
    try:
        yield children
    except BaseException:
        for child in children:
            child.terminate()
        raise
    finally:
        for child in children:
            child.wait()
