"""Issue 19, item 2: the same `dlcli tune` search with the median pruner and without pruning. The wall
time of each whole search and its best trial (validation metric, and that trial's test r2), over
several rounds, the two sides interleaved (their order alternating), medians and the ratio.

    python benchmarks/tune_pruning.py [--config configs/housing_search.yaml] [--trials 30] [--rounds 3]

Each search starts fresh (its own --run-dir under --work) with the config's seed, so both sides draw
the same first trials; TPE then follows what each side has seen. Writes its block of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, run, write_block  # noqa: E402

START, END = "<!-- tune_pruning.py:start -->", "<!-- tune_pruning.py:end -->"


def search(config: Path, pruner: str, trials: int, work: Path) -> dict:
    """One whole `dlcli tune`: its wall time, its best trial, and how many trials were pruned."""
    runs = work / f"runs-{pruner}"
    command = [sys.executable, "-m", "dlcli", "tune", str(config), "--trials", str(trials)]
    wall, _ = run([*command, "-o", f"search.pruner={pruner}", "--run-dir", str(runs)])
    (folder,) = runs.glob("*/tune-*")
    metric = json.loads((folder / "tune.json").read_text())["metric"]
    rows = [line.split(",") for line in (folder / "trials.csv").read_text().splitlines()]
    header, rows = rows[0], [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    done = [r for r in rows if r["state"] == "completed"]
    best = min(done, key=lambda r: float(r[metric]))
    test = json.loads((Path(best["run"]) / "metrics.json").read_text())["test"]
    return {
        "wall": wall,
        "best": float(best[metric]),
        "test_r2": test.get("r2"),
        "pruned": sum(r["state"] == "pruned" for r in rows),
        "metric": metric,
        "columns": header,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "housing_search.yaml")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"median": [], "none": []}
    for r in range(args.rounds):
        order = ["median", "none"] if r % 2 == 0 else ["none", "median"]
        for pruner in order:
            with tempfile.TemporaryDirectory() as tmp:
                results[pruner].append(search(args.config, pruner, args.trials, Path(tmp)))
            print(pruner, results[pruner][-1], flush=True)
    med = {
        k: {f: statistics.median(x[f] for x in v) for f in ("wall", "best", "pruned")}
        for k, v in results.items()
    }
    metric = results["median"][0]["metric"]
    lines = [
        START,
        f"## dlcli tune: the median pruner against none ({date.today()})",
        "",
        f"{machine()}. `python benchmarks/tune_pruning.py --trials {args.trials} --rounds {args.rounds}` on "
        f"{args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config}: whole "
        "searches, the two sides interleaved, medians.",
        "",
        f"| pruner | wall (each round) | best {metric} (each round) | its test r2 | pruned trials |",
        "| --- | --- | --- | --- | --- |",
    ]
    for pruner, runs_ in results.items():
        walls = " / ".join(f"{x['wall']:.0f} s" for x in runs_)
        bests = " / ".join(f"{x['best']:.4f}" for x in runs_)
        r2 = " / ".join(f"{x['test_r2']:.4f}" if x["test_r2"] is not None else "-" for x in runs_)
        lines.append(f"| {pruner} | {walls} | {bests} | {r2} | {med[pruner]['pruned']:.0f} |")
    ratio = med["median"]["wall"] / med["none"]["wall"]
    lines += [
        "",
        f"Median wall, pruned / unpruned: {ratio:.2f}×; best {metric}: {med['median']['best']:.4f} against "
        f"{med['none']['best']:.4f} (difference {med['median']['best'] - med['none']['best']:+.4f}).",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
