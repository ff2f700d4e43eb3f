"""A 10-million-step series with 30-step windows, trained at bounded memory: windows are cut by index
as batches are made, never copied out. Reports the peak RSS of `dlcli train` (one epoch, a whole
process), in memory (pipeline.training_dataset) and streamed (data.stream: true, seriesstream.py),
against what copying the windows out would add, against the same process on a series a tenth as
long (memory that grows with the series' columns), and against windows ten times as long (memory
that would grow with the windows: it does not).

    python benchmarks/series_memory.py [--steps 10000000] [--length 30]

The series: value_t = sin(2πt / 500) + 0.5 sin(2πt / 37) + Normal(0, 0.1), seeded; the target is the
next value. Writes its block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, run, write_block  # noqa: E402

START, END = "<!-- series_memory.py:start -->", "<!-- series_memory.py:end -->"
CONFIG = """
name: series-bench
seed: 1
data:
  path: {path}
  target: value
  stream: {stream}
  split: {{validation: 0.02, test: 0.02}}
preprocessing:
  numeric: {{scale: standard}}
  window: {{length: {length}, horizon: 1}}
model:
  layers:
    - Flatten: {{}}
    - Dense: {{units: 16, activation: relu}}
    - Dense: {{units: 1}}
optimizer: {{name: adam, learning_rate: 0.003}}
loss: mse
train: {{epochs: 1, batch_size: 4096, plots: false, tensorboard: false}}
"""


def series(path: Path, steps: int) -> None:
    import pandas as pd

    t = np.arange(steps)
    rng = np.random.default_rng(0)
    value = np.sin(2 * np.pi * t / 500) + 0.5 * np.sin(2 * np.pi * t / 37) + rng.normal(0, 0.1, steps)
    pd.DataFrame({"value": np.round(value, 4)}).to_csv(path, index=False)


def train(work: Path, steps: int, length: int, stream: bool = False) -> dict:
    data = work / f"series-{steps}.csv"
    if not data.is_file():
        series(data, steps)
    config = work / f"series-{steps}.yaml"
    config.write_text(CONFIG.format(path=data, length=length, stream=str(stream).lower()))
    runs = work / f"runs-{steps}-{length}-{stream}"
    wall, rss = run([sys.executable, "-m", "dlcli", "train", str(config), "-q", "--run-dir", str(runs)])
    (run_dir,) = runs.glob("series-bench/2*")
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    rows = json.loads((run_dir / "run.json").read_text())["data"]["rows"]["train"]
    return {
        "stream": stream,
        "length": length,
        "steps": steps,
        "wall": wall,
        "rss": rss,
        "train_rows": rows,
        "mae": metrics["mae"],
        "naive": metrics["naive_mae"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = train(Path(tmp), args.steps // 10, args.length)
        large = train(Path(tmp), args.steps, args.length)
        longer = train(Path(tmp), args.steps, 10 * args.length)  # windows ten times as long
        sizes = (args.steps // 10, args.steps, 2 * args.steps)
        streamed = [train(Path(tmp), steps, args.length, stream=True) for steps in sizes]
        streamed.append(train(Path(tmp), args.steps, 10 * args.length, stream=True))
    copied = large["train_rows"] * args.length * 4 / 2**20  # float32 windows of one value each
    copied_long = longer["train_rows"] * 10 * args.length * 4 / 2**20
    peaks = " → ".join(f"{r['rss']:,}" for r in streamed[:3])
    lines = [
        START,
        f"## A {args.steps:,}-step series, {args.length}-step windows ({date.today()})",
        "",
        f"{machine()}. `python benchmarks/series_memory.py`: `dlcli train` of one epoch (Flatten, Dense 16, "
        "Dense 1; batch 4096), whole processes.",
        "",
        "| data | steps | window | peak RSS | wall | test MAE (persistence) | copying the windows would add |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in (small, large, longer, *streamed):
        windows = r["train_rows"] * r["length"] * 4 / 2**20
        lines.append(
            f"| {'streamed' if r['stream'] else 'in memory'} | {r['steps']:,} | {r['length']} | {r['rss']:,} MB "
            f"| {r['wall']:.0f} s | {r['mae']:.4f} ({r['naive']:.4f}) | {windows:,.0f} MB |"
        )
    lines += [
        "",
        f"Copying the training windows out ({large['train_rows']:,} windows × {args.length} × 4 bytes) would add "
        f"{copied:,.0f} MB; ten times the steps added {large['rss'] - small['rss']:,} MB "
        f"({(large['rss'] - small['rss']) / copied:.0%} of that): the series' own columns (read, split, "
        "scaled, its targets), about 100 bytes a step, whatever the window. Windows ten times as long "
        f"({10 * args.length} steps) changed peak RSS by {longer['rss'] - large['rss']:+,} MB, where copying "
        f"them out would add {copied_long:,.0f} MB.",
        "",
        "Streamed (data.stream: true: the series read unit by unit, each unit's windows cut by index over "
        "its rows and the rows before it): peak RSS "
        f"{peaks} MB for {' → '.join(f'{n:,}' for n in sizes)} "
        "steps; the first is one unit of the file, the others hold the units read ahead (two threads), "
        f"so doubling the steps changed it by {streamed[2]['rss'] - streamed[1]['rss']:+,} MB. Windows ten "
        f"times as long changed it by {streamed[3]['rss'] - streamed[1]['rss']:+,} MB. At "
        f"{args.steps:,} steps the streamed run peaks {large['rss'] - streamed[1]['rss']:,} MB below the "
        "in-memory one.",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
