"""What dlcli's one private TensorFlow API in training buys: `pipeline._determinism_switch`, which
lifts op determinism while tf.data makes an iterator (see `pipeline.dataset_guard`). Both sides train
`configs/mnist.yaml` as shipped in a fresh process, interleaved; the "without" side replaces the
switch by `lambda: None` (no guard, determinism on throughout, as plain Keras runs).

    DLCLI_DATA_DIR=../shared/data python benchmarks/private_apis.py [--rounds 3]

Prints the median peak RSS and wall time of each side and writes them into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, medians, run, script_arguments, write_block  # noqa: E402

START, END = "<!-- private_apis.py:start -->", "<!-- private_apis.py:end -->"
SIDE = """
import sys
from dlcli.cli import cli; from dlcli.datasets import pipeline
if sys.argv.pop(1) == "without":
    pipeline._determinism_switch = lambda: None
sys.argv[0] = "dlcli"
cli.main()
"""


def side(which: str, data: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as work:
        config = str(ROOT / "configs" / "mnist.yaml")
        command = [sys.executable, "-c", SIDE, which, "train", config, "-q", "--run-dir", work]
        return run(command, env={"DLCLI_DATA_DIR": str(data)})


def main() -> None:
    args, data = script_arguments(__doc__, rounds=3)
    results: dict[str, list[tuple[float, int]]] = {"with": [], "without": []}
    for round_ in range(args.rounds):
        for which in results:
            results[which].append(side(which, data))
            print(f"round {round_ + 1} {which}: {results[which][-1]}", flush=True)
    wall, rss = medians(results)
    block = "\n".join(
        [
            START,
            "## What the private TensorFlow API buys (`benchmarks/private_apis.py`)",
            "",
            f"Measured {date.today().isoformat()} by `benchmarks/private_apis.py --rounds {args.rounds}` on: "
            f"{machine()}. `configs/mnist.yaml` as shipped, with and without `pipeline.dataset_guard`'s "
            "determinism switch (`tensorflow.python.framework.config`), interleaved, medians.",
            "",
            "| side | peak RSS (MB) | wall (s) |",
            "| --- | --- | --- |",
            *(f"| {w} the switch | {rss[w]:.0f} | {wall[w]:.2f} |" for w in results),
            "",
            f"The switch saves {rss['without'] - rss['with']:.0f} MB of peak memory.",
            END,
        ]
    )
    write_block(args.output, START, END, block)


if __name__ == "__main__":
    main()
