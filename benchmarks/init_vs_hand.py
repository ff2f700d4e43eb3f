"""Issue 35, item 1: a config written from the data (`dlcli init --data FILE --target COL`, trained with no
edit) against the shipped hand-written config of the same data, over seeds, interleaved.

    DLCLI_DATA_DIR=../shared/data python benchmarks/init_vs_hand.py [--seeds 42,1,2] [--only titanic,iris]
    DLCLI_DATA_DIR=../shared/data python benchmarks/init_vs_hand.py --write-configs   # configs/written/

The four shared files as they ship (housing.csv, sms-spam.tsv, titanic.csv, daily-min-temperatures.csv)
and scikit-learn's iris, wine and breast-cancer tables written to CSV. Each seed trains both sides as
fresh `dlcli train -q` processes (the order alternating), on the same seed. Reported per data set: the
test metric of each side per seed, the medians and the median of the per-seed differences (written
minus hand); for the series also persistence's MAE (the last value as the forecast). The bar
(issue 35): the written config within 0.02 of the hand-written one; the series below persistence.
Writes its block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, data_dir, machine, write_block  # noqa: E402

START, END = "<!-- init_vs_hand.py:start -->", "<!-- init_vs_hand.py:end -->"
CONFIGS = ROOT / "configs"
#: name → (data file, or `sklearn:NAME` written to CSV; the target; the hand-written config; metric)
SETS = {
    "housing": ("housing.csv", "median_house_value", "housing.yaml", "r2"),
    "sms-spam": ("sms-spam.tsv", "column_1", "sms_spam.yaml", "accuracy"),
    "titanic": ("titanic.csv", "Survived", "titanic.yaml", "accuracy"),
    "temperature": ("daily-min-temperatures.csv", "Temp", "temperature.yaml", "mae"),
    "iris": ("sklearn:iris", "target", "iris.yaml", "accuracy"),
    "wine": ("sklearn:wine", "target", "wine.yaml", "accuracy"),
    "breast-cancer": ("sklearn:breast_cancer", "target", "breast_cancer.yaml", "accuracy"),
}


WRITTEN = ROOT / "configs" / "written"


def write_configs(data: Path) -> None:
    """configs/written/: what `dlcli init --data` writes for each set, its data path as the README's
    other examples give theirs (the shared files by name, found in $DLCLI_DATA_DIR; scikit-learn's
    tables in data/, written by data/make_ci_data.py). tests/test_autoconfig.py checks they are what
    init writes today."""
    from dlcli.autoconfig import draft, profile

    for source, target, _, _ in SETS.values():
        sklearn_table = source.startswith("sklearn:")
        file = ROOT / "data" / f"{source.split(':')[1]}.csv" if sklearn_table else data / source
        where = f"../../data/{file.name}" if sklearn_table else file.name
        path = WRITTEN / f"{draft.config_name(file)}.yaml"
        path.write_text(draft.draft(profile.read(file), target, path, where))
        print(f"wrote {path.relative_to(ROOT)}")


def data_file(source: str, data: Path, work: Path) -> Path:
    if not source.startswith("sklearn:"):
        return data / source
    import sklearn.datasets

    name = source.split(":")[1]
    path = work / f"{name}.csv"
    getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame.to_csv(path, index=False)
    return path


def train(config: Path, seed: int, where: Path) -> dict:
    args = [sys.executable, "-m", "dlcli", "train", str(config), "-q", "--run-dir", str(where)]
    subprocess.run([*args, "-o", f"seed={seed}"], check=True, capture_output=True, text=True)
    (metrics,) = where.glob("*/2*/metrics.json")
    return json.loads(metrics.read_text())["test"]


def compare(name: str, seeds: list[int], data: Path, work: Path) -> list[str]:
    source, target, hand, metric = SETS[name]
    written = work / f"{name}.yaml"
    file = data_file(source, data, work)
    init = [sys.executable, "-m", "dlcli", "init", "--data", str(file), "--target", target, str(written)]
    subprocess.run(init, check=True, capture_output=True, text=True)
    sides = {"written": written, "hand": CONFIGS / hand}
    scores: dict[str, list[float]] = {side: [] for side in sides}
    naive = []
    for i, seed in enumerate(seeds):
        for side in list(sides) if i % 2 == 0 else list(reversed(sides)):
            test = train(sides[side], seed, work / f"{name}-{side}-{seed}")
            scores[side].append(test[metric])
            if "naive_mae" in test:
                naive.append(test["naive_mae"])
    diffs = [w - h for w, h in zip(scores["written"], scores["hand"], strict=True)]
    med = {side: statistics.median(v) for side, v in scores.items()}
    per_seed = ", ".join(f"{w:.4f}/{h:.4f}" for w, h in zip(scores["written"], scores["hand"], strict=True))
    extra = f"; persistence MAE {statistics.median(naive):.3f}" if naive else ""
    return [
        f"| {name} | test {metric} | {med['written']:.4f} | {med['hand']:.4f} | "
        f"{statistics.median(diffs):+.4f} | {per_seed}{extra} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--only", default=",".join(SETS))
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--write-configs", action="store_true", help="Write configs/written/ and stop.")
    args = parser.parse_args()
    data = data_dir()
    if args.write_configs:
        WRITTEN.mkdir(exist_ok=True)
        return write_configs(data)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            rows += compare(name, seeds, data, Path(tmp))
            print(rows[-1], flush=True)
    write_block(
        args.output,
        START,
        END,
        [
            START,
            f"## A config written from the data against the hand-written one ({date.today()}, `benchmarks/init_vs_hand.py`)",
            "",
            f"{machine()}. `dlcli init --data FILE --target COL`, then `dlcli train` with no edit, against "
            f"the shipped config; seeds {args.seeds}, sides interleaved; medians (mae: lower is better).",
            "",
            "| data | metric | written | hand-written | median difference | per seed (written/hand) |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            END,
        ],
    )


if __name__ == "__main__":
    main()
