"""What one input is worth: a shipped config trained with and without it, interleaved, over seeds.

    DLCLI_DATA_DIR=../shared/data python benchmarks/ablation.py titanic [--seeds 1,2,3,4,5]

`titanic`: configs/titanic.yaml, and the same config with the passenger's `Name` dropped (no text
input, no branches). Each seed trains both sides (the order alternating) as fresh `dlcli train -q`
processes on the same split; reported: each side's test accuracy per seed, the medians, and the
median of the per-seed gains.
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

#: name → (config, {side: overrides}, the metric read from metrics.json's test split)
ABLATIONS = {
    "titanic": (
        ROOT / "configs" / "titanic.yaml",
        {
            "with Name": [],
            "without Name": [
                "preprocessing.text=null",
                "model.branches=null",
                "data.drop=[PassengerId, Ticket, Cabin, Name]",
            ],
        },
        "accuracy",
    ),
}


def train(config: Path, overrides: list[str], seed: int, where: Path) -> float:
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
    config, sides, metric = ABLATIONS[args.name]
    seeds = [int(s) for s in args.seeds.split(",")]
    scores: dict[str, list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(seeds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for side in order:
                where = Path(tmp) / f"{side.replace(' ', '_')}-{seed}"
                scores[side].append(train(config, sides[side], seed, where)[metric])
            print(f"seed {seed}: " + ", ".join(f"{s} {scores[s][-1]:.4f}" for s in sides), flush=True)
    first, second = list(sides)
    gains = [a - b for a, b in zip(scores[first], scores[second], strict=True)]
    print(f"\n| {args.name} | seeds | " + " | ".join(f"{s}: test {metric}" for s in sides) + " | gain |")
    print("| --- | --- | " + " | ".join("---" for _ in sides) + " | --- |")
    cells = [
        " / ".join(f"{v:.4f}" for v in scores[s]) + f" (median {statistics.median(scores[s]):.4f})"
        for s in sides
    ]
    print(
        f"| {config.name} | {args.seeds} | "
        + " | ".join(cells)
        + f" | median {statistics.median(gains):+.4f} |"
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
