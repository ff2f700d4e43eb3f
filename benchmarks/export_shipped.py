"""`dlcli export` of the shipped configs to every format: iris, housing (categories, missing values),
temperature (windows), mnist (pixels) and sms_spam (text). Each is trained briefly (`--epochs`, 3 by
default: the export's check, not the model's accuracy, is measured), then exported to saved_model,
tflite and onnx; a refusal is recorded with its reason.

    DLCLI_DATA_DIR=../shared/data python benchmarks/export_shipped.py [--epochs 3]

Writes its block of benchmarks/RESULTS.md: rows checked, largest difference from dlcli predict, the
test metric both ways, the file's size and the export's wall time, per config and format.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, data_dir, machine, write_block  # noqa: E402

START, END = "<!-- export_shipped.py:start -->", "<!-- export_shipped.py:end -->"
CONFIGS = ["iris", "housing", "temperature", "mnist", "sms_spam"]
FORMATS = ["saved_model", "tflite", "onnx"]


def size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in CONFIGS:
            runs = work / name
            subprocess.run(
                [sys.executable, "-m", "dlcli", "train", str(ROOT / "configs" / f"{name}.yaml"), "-q",
                 "--run-dir", str(runs), "-o", f"train.epochs={args.epochs}", "-o", "train.plots=false",
                 "-o", "train.tensorboard=false"],
                check=True, env=env, capture_output=True,
            )  # fmt: skip
            (run,) = [p for p in runs.glob("*/2*") if p.is_dir()]
            for fmt in FORMATS:
                out = work / f"{name}.{fmt}"
                started = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "dlcli", "export", str(run), "-f", fmt, "--output", str(out)],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
                wall = time.perf_counter() - started
                if proc.returncode != 0:
                    reason = " ".join(proc.stderr.split()).split("error: ", 1)[-1]
                    rows.append(f"| {name} | {fmt} | refused: {reason} | | | | |")
                    print(name, fmt, "refused", reason, flush=True)
                    continue
                meta = json.loads(
                    (out / "dlcli.json" if fmt == "saved_model" else Path(f"{out}.json")).read_text()
                )
                c = meta["checked"]
                rows.append(
                    f"| {name} | {fmt} | {c['rows']} {c['split']} rows | {c['max_difference']:.1e} | "
                    f"{c['metric']} {c['artifact_metric']:.4f} (dlcli {c['dlcli_metric']:.4f}) | "
                    f"{size(out) / 1e6:.2f} MB | {wall:.1f} s |"
                )
                print(rows[-1], flush=True)
    block = "\n".join(
        [
            START,
            "## Exporting the shipped configs (`benchmarks/export_shipped.py`, issue 17)",
            "",
            f"Measured {date.today().isoformat()} by `benchmarks/export_shipped.py --epochs {args.epochs}` on: "
            f"{machine()}. Each config trained for {args.epochs} epochs (the export's check is measured, "
            "not the model), then exported; export checks the artifact on the run's test rows in its own "
            "runtime against dlcli's predictions (largest difference: absolute for probabilities, "
            "relative for regression).",
            "",
            "| config | format | checked on | largest difference | test metric | size | export wall |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            END,
        ]
    )
    write_block(args.output, START, END, block)


if __name__ == "__main__":
    main()
