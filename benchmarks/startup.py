"""Start-up latency: `dlcli --help` and `dlcli validate` (no TensorFlow), against `python -c pass`.

    python benchmarks/startup.py [--runs 15]

Interleaves the commands, reports the median wall time of each and the ratio to bare Python start-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dlcli --help": [sys.executable, "-m", "dlcli", "--help"],
    "dlcli validate housing": [
        sys.executable,
        "-m",
        "dlcli",
        "validate",
        str(ROOT / "configs" / "housing.yaml"),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # interleaved: A B C A B C ...
        for name, command in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["python -c pass"])
    print("| command | median (s) | vs python -c pass | runs |\n| --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {median / base:.1f}x | {len(values)} |")


if __name__ == "__main__":
    main()
