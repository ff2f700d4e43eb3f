"""Two configs side by side over seeds, interleaved: what one input is worth, or what a second
target costs the first.

    DLCLI_DATA_DIR=../shared/data python benchmarks/ablation.py titanic [--seeds 1,2,3,4,5]
    DLCLI_DATA_DIR=../shared/data python benchmarks/ablation.py housing_multitask --seeds 1,2,3

`titanic`: configs/titanic.yaml, and the same config with the passenger's `Name` dropped (no text
input, no branches). `housing_multitask`: configs/housing_multitask.yaml's house value against
configs/housing.yaml, the same value predicted alone (its test r2; the multi-task side also reports
ocean_proximity's accuracy). Each seed trains both sides (the order alternating) as fresh `dlcli
train -q` processes; reported: each side's test metric per seed, the medians, and the median of the
per-seed differences (first side minus second).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = ROOT / "configs"
#: name → {side: (config, overrides, the metric's path in metrics.json's test split)}
ABLATIONS = {
    "titanic": {
        "with Name": (CONFIGS / "titanic.yaml", [], ("accuracy",)),
        "without Name": (
            CONFIGS / "titanic.yaml",
            [
                "preprocessing.text=null",
                "model.branches=null",
                "data.drop=[PassengerId, Ticket, Cabin, Name]",
            ],
            ("accuracy",),
        ),
    },
    "housing_multitask": {
        "two targets": (CONFIGS / "housing_multitask.yaml", [], ("median_house_value", "r2")),
        "value alone": (CONFIGS / "housing.yaml", [], ("r2",)),
    },
}
#: Also reported per seed: another metric of a side.
ALSO = {("housing_multitask", "two targets"): ("ocean_proximity", "accuracy")}


def train(config: Path, overrides: list[str], seed: int, where: Path) -> dict:
    args = [sys.executable, "-m", "dlcli", "train", str(config), "-q", "--run-dir", str(where)]
    for override in [*overrides, f"seed={seed}"]:
        args += ["-o", override]
    subprocess.run(args, check=True, capture_output=True, text=True)
    (metrics,) = where.glob("*/2*/metrics.json")
    return json.loads(metrics.read_text())["test"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(ABLATIONS))
    parser.add_argument("--seeds", default="1,2,3,4,5")
    args = parser.parse_args()
    sides = ABLATIONS[args.name]
    seeds = [int(s) for s in args.seeds.split(",")]
    scores: dict[str, list[float]] = {side: [] for side in sides}
    also: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(seeds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for side in order:
                config, overrides, path = sides[side]
                where = Path(tmp) / f"{side.replace(' ', '_')}-{seed}"
                test = train(config, overrides, seed, where)
                scores[side].append(_at(test, path))
                if (args.name, side) in ALSO:
                    also.append(_at(test, ALSO[args.name, side]))
            first = list(sides)[0]
            extra = f", {'.'.join(ALSO[args.name, first])} {also[-1]:.4f}" if also else ""
            print(f"seed {seed}: " + ", ".join(f"{s} {scores[s][-1]:.4f}" for s in sides) + extra, flush=True)
    first, second = list(sides)
    gains = [a - b for a, b in zip(scores[first], scores[second], strict=True)]
    names = [f"{s}: test {'.'.join(sides[s][2])}" for s in sides]
    print(f"\n| {args.name} | seeds | " + " | ".join(names) + " | difference |")
    print("| --- | --- | " + " | ".join("---" for _ in sides) + " | --- |")
    cells = [
        " / ".join(f"{v:.4f}" for v in scores[s]) + f" (median {statistics.median(scores[s]):.4f})"
        for s in sides
    ]
    print(
        f"| {args.name} | {args.seeds} | "
        + " | ".join(cells)
        + f" | median {statistics.median(gains):+.4f} |"
    )
    if also:
        print(f"{'.'.join(ALSO[args.name, first])} ({first}): " + " / ".join(f"{v:.4f}" for v in also))


def _at(values: dict, path: tuple) -> float:
    for key in path:
        values = values[key]
    return float(values)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
