"""`dlcli predict` of 100 housing rows through the exported model (ONNX Runtime, LiteRT: no TensorFlow)
against the TensorFlow path, whole processes, interleaved. Trains configs/housing.yaml once (or takes
`--run`), exports it to ONNX and TFLite, then predicts the same 100 rows each way.

    DLCLI_DATA_DIR=../shared/data python benchmarks/predict_lite.py [--rounds 7] [--run RUN]

Prints the median wall time and peak RSS of each side, the ratios to TensorFlow's and the largest
prediction difference, and writes its block of benchmarks/RESULTS.md. Target (issue 17): ≤ 1.5 s and
≤ 250 MB, same predictions within 1e-5.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, data_dir, machine, medians, run, write_block  # noqa: E402

START, END = "<!-- predict_lite.py:start -->", "<!-- predict_lite.py:end -->"
SIDES = ("onnx", "tflite", "tensorflow")


def trained(work: Path, data: Path) -> Path:
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    config = str(ROOT / "configs" / "housing.yaml")
    subprocess.run(
        [sys.executable, "-m", "dlcli", "train", config, "-q", "--run-dir", str(work / "runs"),
         "-o", "train.plots=false", "-o", "train.tensorboard=false"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    (run_dir,) = [p for p in (work / "runs").glob("*/2*") if p.is_dir()]
    return run_dir


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--run", type=Path, help="a trained housing run (default: train one)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = args.run.resolve() if args.run else trained(work, data)
        env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
        for fmt in ("onnx", "tflite"):
            out = work / f"model.{fmt}"
            cmd = [sys.executable, "-m", "dlcli", "export", str(run_dir), "-f", fmt, "--output", str(out)]
            subprocess.run(cmd, check=True, env=env, capture_output=True)
        # predict --runtime onnx|tflite reads RUN/export/model.<fmt>: a copy of the run holds them
        served = work / "run"
        subprocess.run(["cp", "-r", str(run_dir), str(served)], check=True)
        (served / "export").mkdir(exist_ok=True)
        for fmt in ("onnx", "tflite"):
            for suffix in ("", ".json"):
                os.replace(work / f"model.{fmt}{suffix}", served / "export" / f"model.{fmt}{suffix}")
        rows = (
            pd.read_csv(data / "housing.csv").drop(columns=["median_house_value"]).sample(100, random_state=0)
        )
        rows.to_csv(work / "rows.csv", index=False)
        results: dict[str, list[tuple[float, int]]] = {s: [] for s in SIDES}
        for round_ in range(args.rounds):  # interleaved
            for side in SIDES:
                out = work / f"{side}.csv"
                cmd = [
                    sys.executable,
                    "-m",
                    "dlcli",
                    "predict",
                    str(served),
                    "--input",
                    str(work / "rows.csv"),
                ]
                results[side].append(run([*cmd, "--output", str(out), "--runtime", side]))
                print(f"round {round_ + 1} {side}: {results[side][-1]}", flush=True)
        predictions = {s: pd.read_csv(work / f"{s}.csv")["prediction"] for s in SIDES}
    reference = predictions["tensorflow"]
    difference = {
        s: float(((predictions[s] - reference).abs() / reference.abs().clip(lower=1.0)).max()) for s in SIDES
    }
    wall, rss = medians(results)
    block = "\n".join(
        [
            START,
            "## Predicting without TensorFlow (`benchmarks/predict_lite.py`, issue 17)",
            "",
            f"Measured {date.today().isoformat()} by `benchmarks/predict_lite.py --rounds {args.rounds}` on: "
            f"{machine()}. `dlcli predict` of 100 housing rows (configs/housing.yaml trained as shipped), "
            "whole processes, interleaved, medians; the exported models ran through ONNX Runtime and LiteRT.",
            "",
            "| runtime | wall (s) | vs TensorFlow | peak RSS (MB) | vs TensorFlow | largest difference |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {s} | {wall[s]:.2f} | {wall[s] / wall['tensorflow']:.2f}x | {rss[s]:.0f} | "
                f"{rss[s] / rss['tensorflow']:.2f}x | {difference[s]:.1e} |"
                for s in SIDES
            ),
            "",
            "Target: ≤ 1.5 s and ≤ 250 MB, predictions within 1e-5 (relative) of TensorFlow's.",
            END,
        ]
    )
    write_block(args.output, START, END, block)


if __name__ == "__main__":
    main()
