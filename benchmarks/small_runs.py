"""Small runs against the import floor, and the light model every run now leaves (issue 36, items 2-3).

    DLCLI_DATA_DIR=../shared/data python benchmarks/small_runs.py [--rounds 5] [--before REV]

1. The floor and a small run, interleaved, whole processes: `python -c "import tensorflow"`; `dlcli
   train configs/breast_cancer.yaml -o train.epochs=20` (plots, TensorBoard and all; the light model
   off, it is timed apart in 2.) with this tree, and with `--before`'s tree (a git worktree, the
   commit before issue 36's work by default). Medians of the wall time and peak RSS, and of the run's
   own timings (run.json: to the first step, fit, evaluating, plots).
2. The light model: `dlcli train` of the shipped small configs as they are (the light model on, as a
   user gets it), its seconds (run.json), then `dlcli predict` of 100 rows straight after, with no
   export step: wall, peak RSS, and the runtime it took.

Writes its block of benchmarks/RESULTS.md. Targets: the small run within 3 s of the floor, peak RSS no
higher than before; the light model under 2 s on housing; predict ≤ 1.5 s and ≤ 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, data_dir, machine, write_block  # noqa: E402

START, END = "<!-- small_runs.py:start -->", "<!-- small_runs.py:end -->"
#: The commit before issue 36's work on small runs (the last stop's).
BEFORE = "47179bb"
SMALL = ["-o", "train.epochs=20", "-o", "train.light_model=off"]
#: (config, rows file for predict, its target column)
LIGHT = [
    ("breast_cancer.yaml", "data/breast_cancer.csv", "target"),
    ("wine.yaml", "data/wine.csv", "target"),
    ("iris.yaml", "data/iris.csv", "target"),
    ("housing.yaml", "housing.csv", "median_house_value"),
]
STAGES = ("first_step_s", "fit_s", "evaluate_s", "plots_s")


def measured(command: list[str], cwd: Path, env: dict) -> tuple[float, int, str]:
    """(wall, peak RSS, output) of `command` under /usr/bin/time (each process's own peak RSS)."""
    report = Path(tempfile.mkstemp(suffix=".rss")[1])
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-o", str(report), "-f", "%M", *command],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{proc.stderr[-3000:]}")
    rss = round(int(report.read_text().split()[-1]) / 1024)
    report.unlink()
    return wall, rss, proc.stdout + proc.stderr


def newest_run(folder: Path) -> Path:
    return max((p for p in folder.glob("*/2*") if p.is_dir()), key=lambda p: p.stat().st_mtime)


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("DLCLI_LIGHT_MODEL", None)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = work / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before), args.before],
            check=True,
        )
        try:
            trees = {"after": ROOT, "before": before}
            sides: dict[str, list] = {"import tensorflow": [], "before": [], "after": []}
            stages: dict[str, list[dict]] = {"before": [], "after": []}
            for round_ in range(args.rounds):
                sides["import tensorflow"].append(measured([py, "-c", "import tensorflow"], work, env)[:2])
                for side, tree in trees.items():
                    runs = work / f"runs-{side}"
                    # `python -m dlcli` from the tree's folder imports that tree's dlcli
                    config = str(tree / "configs" / "breast_cancer.yaml")
                    cmd = [py, "-m", "dlcli", "train", config, "-q", "--run-dir", str(runs), *SMALL]
                    wall, rss, _ = measured(cmd if side == "after" else cmd[:-2], tree, env)
                    sides[side].append((wall, rss))
                    stages[side].append(json.loads((newest_run(runs) / "run.json").read_text())["timings"])
                print(round_ + 1, {k: v[-1] for k, v in sides.items()}, flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True)

        light = []
        for config, rows_file, target in LIGHT:
            source = ROOT / rows_file if rows_file.startswith("data/") else data / rows_file
            rows = pd.read_csv(source).drop(columns=[target]).sample(100, random_state=0)
            rows.to_csv(work / "rows.csv", index=False)
            runs = work / "runs-light"
            wall, rss, _ = measured(
                [py, "-m", "dlcli", "train", str(ROOT / "configs" / config), "-q", "--run-dir", str(runs)],
                ROOT,
                env,
            )
            run = newest_run(runs)
            entry = json.loads((run / "run.json").read_text())["light_model"]
            predicts = [
                measured(
                    [py, "-m", "dlcli", "predict", str(run), "--input", "rows.csv", "--output", "p.csv"],
                    work,
                    env,
                )
                for _ in range(args.rounds)
            ]
            light.append((config, wall, entry, predicts))
            print(config, wall, entry, [p[:2] for p in predicts], flush=True)

    def median(values):
        return statistics.median(values)

    floor = median(w for w, _ in sides["import tensorflow"])
    lines = [
        START,
        "## Small runs and the light model (`benchmarks/small_runs.py`, issue 36)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/small_runs.py --rounds {args.rounds}` on: {machine()}. "
        "Whole processes, interleaved, medians.",
        "",
        "`dlcli train configs/breast_cancer.yaml -o train.epochs=20` (plots, TensorBoard, checkpoints every "
        f"epoch; the light model off here, timed below), before ({args.before}) and after issue 36, against "
        '`python -c "import tensorflow"`:',
        "",
        "| process | wall (s) | over the import (s) | peak RSS (MB) | to first step (s) | fit (s) | evaluate (s) | plots (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| `import tensorflow` | {floor:.2f} | 0 | {median(r for _, r in sides['import tensorflow']):.0f} | | | | |",
    ]
    for side in ("before", "after"):
        wall = median(w for w, _ in sides[side])
        stage = {k: median(t.get(k, 0.0) for t in stages[side]) for k in STAGES}
        lines.append(
            f"| `dlcli train`, {side} | {wall:.2f} | {wall - floor:.2f} | {median(r for _, r in sides[side]):.0f} | "
            + " | ".join(f"{stage[k]:.2f}" for k in STAGES)
            + " |"
        )
    lines += [
        "",
        "Each shipped config trained as a user runs it (the light model on), then `dlcli predict` of 100 of "
        "its rows straight after, with no export step:",
        "",
        "| config | train (s) | light model | its seconds | predict wall (s) | predict peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for config, wall, entry, predicts in light:
        lines.append(
            f"| {config} | {wall:.1f} | {entry.get('path') or entry.get('reason')} | {entry['seconds']:.2f} | "
            f"{median(p[0] for p in predicts):.2f} | {median(p[1] for p in predicts):.0f} |"
        )
    lines += [
        "",
        "Targets: a small run within 3 s of the import, peak RSS no higher than before; the light model "
        "under 2 s on housing; predict ≤ 1.5 s and ≤ 250 MB.",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
