"""Helper processes a command starts beside itself (`tune --jobs`, `train --folds --jobs`): started
together, terminated if the command fails, waited for when it ends.

    >>> with started([[sys.executable, "-m", "dlcli", "tune", ...]]):
    ...     run_my_share()
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def bounded(jobs: int, left: int, what: str, say: Callable[[str], None]) -> tuple[int, int]:
    """`(processes, threads)`: --jobs never above the `left` pieces of work (`what`: "trial(s)") nor
    the cores, each process training on its share of them; a note says what was capped."""
    cores = os.cpu_count() or 1
    count = max(1, min(jobs, left, cores))
    if count < jobs:
        why = [f"{left} {what} left to run" if left < jobs else "", f"{cores} cores" if cores < jobs else ""]
        say(f"note: --jobs {jobs}: running {count} process(es) ({' and '.join(w for w in why if w)})")
    return count, max(1, cores // count)


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
