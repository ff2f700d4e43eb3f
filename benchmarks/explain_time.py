"""Issue 35, item 3: the time of `dlcli explain` on housing's test split (3,096 rows, 9 input columns,
5 shuffles each: 46 scorings of the split), as a fresh process, TensorFlow's import included.

    DLCLI_DATA_DIR=../shared/data python benchmarks/explain_time.py [--rounds 3]

Trains configs/housing.yaml once into a temporary folder, then runs `dlcli explain RUN` `--rounds`
times; reports the median wall time and peak RSS, and `python -c "import tensorflow"` interleaved as
the floor. Target (issue 35): under 30 s on 2 cores. Writes its block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, run, script_arguments, write_block  # noqa: E402

START, END = "<!-- explain_time.py:start -->", "<!-- explain_time.py:end -->"


def main() -> None:
    args, _ = script_arguments(__doc__, rounds=3)
    with tempfile.TemporaryDirectory() as tmp:
        train = [sys.executable, "-m", "dlcli", "train", str(ROOT / "configs" / "housing.yaml"), "-q"]
        subprocess.run([*train, "--run-dir", tmp], check=True, capture_output=True)
        (run_dir,) = Path(tmp).glob("housing/2*")
        explain = [sys.executable, "-m", "dlcli", "explain", str(run_dir), "--repeats", "5"]
        floor = [sys.executable, "-c", "import tensorflow"]
        timed: dict[str, list] = {"explain": [], "import": []}
        for _ in range(args.rounds):
            timed["explain"].append(run(explain))
            timed["import"].append(run(floor))
    wall = {k: statistics.median(t[0] for t in v) for k, v in timed.items()}
    rss = {k: statistics.median(t[1] for t in v) for k, v in timed.items()}
    write_block(
        args.output,
        START,
        END,
        [
            START,
            f"## dlcli explain on housing's test split ({date.today()}, `benchmarks/explain_time.py`)",
            "",
            f"{machine()}. 3,096 rows, 9 input columns, 5 shuffles each; {args.rounds} rounds, medians.",
            "",
            "| command | wall s | peak RSS MB |",
            "| --- | --- | --- |",
            f"| `dlcli explain RUN` | {wall['explain']:.1f} | {rss['explain']:.0f} |",
            f'| `python -c "import tensorflow"` (the floor) | {wall["import"]:.1f} | {rss["import"]:.0f} |',
            "",
            f"Target under 30 s: {'met' if wall['explain'] < 30 else 'missed'}.",
            END,
        ],
    )


if __name__ == "__main__":
    main()
