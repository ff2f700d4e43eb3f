"""The whole process: the tutorials' MNIST script against `dlcli train configs/mnist.yaml` as shipped
(validation split, plots and TensorBoard on), start to exit, interleaved.

    DLCLI_DATA_DIR=../shared/data python benchmarks/whole.py [--rounds 5]

Reports per side the median wall time and peak RSS of the process (wait4) and their ratios, and for
dlcli the median time after the last epoch (scoring the three splits, plots) from run.json. The
result goes between the whole.py markers of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, SCRIPTS, machine, run, script_arguments, write_block  # noqa: E402

START, END = "<!-- whole.py:start -->", "<!-- whole.py:end -->"


def script_side(data: Path, work: Path) -> dict:
    wall, rss = run(
        [
            sys.executable,
            str(SCRIPTS / "mnist_mlp_tutorial.py"),
            str(data / "mnist.npz"),
            str(work / "r.json"),
        ]
    )
    return {"wall_s": wall, "rss_mb": rss, "metric": json.loads((work / "r.json").read_text())["test_metric"]}


def floor_side(data: Path, work: Path) -> dict:
    """TensorFlow + Keras + the same MLP fitted on one batch: what any side pays before any data."""
    wall, rss = run([sys.executable, str(SCRIPTS / "keras_floor.py"), str(work / "r.json")])
    return {"wall_s": wall, "rss_mb": rss, "metric": json.loads((work / "r.json").read_text())["test_metric"]}


def dlcli_side(data: Path, work: Path) -> dict:
    runs = work / "runs"
    command = [
        sys.executable,
        "-m",
        "dlcli",
        "train",
        str(ROOT / "configs" / "mnist.yaml"),
        "-q",
        "--run-dir",
        str(runs),
    ]
    wall, rss = run(command, env={"DLCLI_DATA_DIR": str(data)})
    (run_dir,) = [p for p in runs.glob("*/2*") if p.is_dir()]
    timings = json.loads((run_dir / "run.json").read_text())["timings"]
    after = timings.get("evaluate_s", 0)  # the plots are drawn in a thread meanwhile (api._score_and_plot)
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    metric = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    return {
        "wall_s": wall,
        "rss_mb": rss,
        "metric": metric,
        "after_s": after,
        "plots": plots,
        "evaluate_s": timings.get("evaluate_s"),
        "plots_s": timings.get("plots_s"),
    }


def main() -> None:
    args, data = script_arguments(__doc__, rounds=5)
    results: dict[str, list[dict]] = {"script": [], "dlcli": [], "floor": []}
    for round_ in range(args.rounds):
        for side, fn in (("script", script_side), ("dlcli", dlcli_side), ("floor", floor_side)):
            with tempfile.TemporaryDirectory() as work:
                out = fn(data, Path(work))
            results[side].append(out)
            print(f"round {round_ + 1} {side}: {json.dumps(out)}", flush=True)
    med = {s: {k: statistics.median(r[k] for r in results[s]) for k in ("wall_s", "rss_mb")} for s in results}
    after = statistics.median(r["after_s"] for r in results["dlcli"])

    def above(side: str) -> float:
        return med[side]["rss_mb"] - med["floor"]["rss_mb"]

    plots = statistics.median(r["plots_s"] for r in results["dlcli"])
    lines = [
        START,
        "## The whole process on MNIST, config as shipped (`benchmarks/whole.py`)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/whole.py --rounds {args.rounds}` on: "
        f"{machine()}.",
        "The tutorial script (5 epochs, no validation, no files) against `dlcli train configs/mnist.yaml`",
        "unchanged (5 epochs, 10 % validation, checkpoints, history, TensorBoard, plots), interleaved, each",
        "run a fresh process from start to exit; medians over rounds. `floor`",
        "(benchmarks/scripts/keras_floor.py)",
        "imports TensorFlow and Keras and fits the same MLP on one batch of 32 rows: the least any Keras",
        "training process holds, before a single image (its metric is that batch's accuracy, not a test).",
        "",
        "| side | wall (s) | wall ratio | peak RSS (MB) | RSS ratio | test accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side in ("script", "dlcli", "floor"):
        metrics = " / ".join(f"{r['metric']:.4f}" for r in results[side])
        lines.append(
            f"| {side} | {med[side]['wall_s']:.2f} | {med[side]['wall_s'] / med['script']['wall_s']:.3f} | "
            f"{med[side]['rss_mb']:.0f} | {med[side]['rss_mb'] / med['script']['rss_mb']:.3f} | {metrics} |"
        )
    lines += [
        "",
        f"After the last epoch dlcli spends a median {after:.2f} s scoring train, validation and test, "
        f"while a thread draws {', '.join(results['dlcli'][0]['plots'])} ({plots:.2f} s of drawing).",
        f"dlcli holds {above('dlcli'):.0f} MB above the floor (MNIST as uint8 is 55 MB); the script "
        f"holds {above('script'):.0f} MB above it.",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
