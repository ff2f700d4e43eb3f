"""`dlcli train` of an earlier checkout against this one, interleaved, on compare.py's configs.

    git worktree add /tmp/before 12e1fdd
    DLCLI_DATA_DIR=../shared/data python benchmarks/before_after.py --before /tmp/before [--rounds 3]

Each round runs both sides (the order alternating) as fresh processes with the same config and seed,
the earlier one by PYTHONPATH (from a folder that is neither checkout: `python -m` puts the working
folder ahead of PYTHONPATH); reported: the median steady-state epoch (first epoch excluded), its
ratio to the earlier side, and the median peak RSS. For a change that should not change speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402 - beside this file

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier dlcli")
    parser.add_argument("--pairs", default="mlp,housing")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = compare.data_dir()
    sides = {"before": str(args.before.resolve()), "after": str(ROOT)}
    pairs = [compare.PAIRS[name] for name in args.pairs.split(",")]
    results: dict[tuple[str, str], list[dict]] = {(p.name, s): [] for p in pairs for s in sides}
    os.chdir(
        tempfile.mkdtemp()
    )  # `python -m dlcli` puts the working folder first on sys.path: not a checkout
    for r in range(args.rounds):
        order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
        for pair in pairs:
            for side, root in order:
                os.environ["PYTHONPATH"] = root
                with tempfile.TemporaryDirectory() as work:
                    out = compare.dlcli_side(pair, data, Path(work), False, 42 + r)
                results[(pair.name, side)].append(out)
                print(
                    f"round {r + 1} {side}: {compare.steady(out['epoch_s']):.3f} s, {out['rss_mb']} MB",
                    flush=True,
                )
    print("| pair | side | steady epoch (s) | ratio | peak RSS (MB) |\n| --- | --- | --- | --- | --- |")
    for pair in pairs:
        epoch = {
            s: statistics.median(compare.steady(o["epoch_s"]) for o in results[(pair.name, s)]) for s in sides
        }
        for side in sides:
            rss = statistics.median(o["rss_mb"] for o in results[(pair.name, side)])
            print(
                f"| {pair.name} | {side} | {epoch[side]:.3f} | {epoch[side] / epoch['before']:.3f} | {rss} |"
            )


if __name__ == "__main__":
    main()
