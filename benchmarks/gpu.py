"""On a GPU: float32 against `mixed_float16` + `jit_compile`, interleaved (issue 5 item 5, issue 16 item 6).

    DLCLI_DATA_DIR=../shared/data python benchmarks/gpu.py [--rounds 3]

Two configs, each trained as shipped but for a fixed number of epochs (early stopping off), on the
GPU (`--device gpu`), both ways in turn, a fresh `dlcli train` process per side and round:

- configs/hymenoptera_finetune.yaml (MobileNetV2 at 224x224, a head, then the top 20 layers
  fine-tuned): 4 head epochs + 2 fine-tuning epochs. Its imagenet weights are read from
  $DLCLI_DATA_DIR (Keras' file name) when there; otherwise `weights: null` (random weights: the
  throughput holds, the accuracy does not, and the block says so);
- configs/mnist_cnn.yaml (the convnet of benchmarks/compare.py): 4 epochs.

Reported per side: training images per second (training rows / median steady epoch, the first
epoch of each phase excluded), test accuracy, and the ratio to float32. Writes its block of
benchmarks/RESULTS.md. Without a GPU it says so and exits 2.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from compare import ROOT, machine, run, script_arguments, write_block

START, END = "<!-- gpu.py:start -->", "<!-- gpu.py:end -->"
MOBILENET = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
SIDES = {
    "float32": [],
    "mixed_float16 + XLA": ["-o", "train.mixed_precision=mixed_float16", "-o", "train.jit_compile=true"],
}


def gpus() -> int:
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return int(out.stdout.strip() or 0)


def configs(data: Path) -> dict[str, list[str]]:
    fine = ["-o", "train.epochs=4", "-o", "train.fine_tune.epochs=2", "-o", "train.early_stopping=null"]
    if not (data / MOBILENET).is_file():
        fine += ["-o", "model.backbone.weights=null"]
    return {
        "configs/hymenoptera_finetune.yaml": fine,
        "configs/mnist_cnn.yaml": ["-o", "train.epochs=4", "-o", "train.early_stopping=null"],
    }


def side(config: str, overrides: list[str], data: Path, work: Path) -> dict:
    runs = work / "runs"
    command = [sys.executable, "-m", "dlcli", "train", str(ROOT / config), "-q", "--device", "gpu"]
    command += ["--run-dir", str(runs), "-o", "train.plots=false", "-o", "train.tensorboard=false"]
    run([*command, *overrides], env={"DLCLI_DATA_DIR": str(data)})
    (run_dir,) = [p for p in runs.glob("*/2*") if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    epochs = record["timings"]["epoch_s"]
    history = (run_dir / "history.csv").read_text().splitlines()
    phases = [line.split(",")[1] for line in history[1:]] if "phase" in history[0] else ["1"] * len(epochs)
    steady = [t for i, t in enumerate(epochs) if i > 0 and phases[i] == phases[i - 1]]
    rate = record["data"]["rows"]["train"] / statistics.median(steady)
    test = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    return {"images_per_s": rate, "accuracy": test, "policy": record["compute"]["dtype_policy"]}


def main() -> None:
    args, data = script_arguments(__doc__, rounds=3)
    if gpus() == 0:
        print("benchmarks/gpu.py: TensorFlow sees no GPU here; run it on a machine with one", file=sys.stderr)
        sys.exit(2)
    results: dict = {(c, s): [] for c in configs(data) for s in SIDES}
    for round_ in range(args.rounds):
        for config, overrides in configs(data).items():
            for name, extra in SIDES.items():
                with tempfile.TemporaryDirectory() as tmp:
                    results[config, name].append(side(config, overrides + extra, data, Path(tmp)))
        print(f"round {round_ + 1} done", flush=True)
    block = render(results, args.rounds, (data / MOBILENET).is_file())
    write_block(args.output, START, END, block)


def render(results: dict, rounds: int, imagenet: bool) -> str:
    lines = [
        START,
        "## On a GPU: float32 against mixed_float16 + jit_compile",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/gpu.py --rounds {rounds}` on: {machine()}; "
        f"{os.environ.get('NVIDIA_VISIBLE_DEVICES', 'GPU')}. Fresh process per side, interleaved, medians.",
        ""
        if imagenet
        else "MobileNetV2 ran with random weights (no imagenet file in DLCLI_DATA_DIR): "
        "its accuracy says nothing.",
        "",
        "| config | side | images/s | ratio | test accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for config in dict.fromkeys(c for c, _ in results):
        base = statistics.median(r["images_per_s"] for r in results[config, "float32"])
        for name in SIDES:
            rows = results[config, name]
            rate = statistics.median(r["images_per_s"] for r in rows)
            accuracy = statistics.median(r["accuracy"] for r in rows)
            lines.append(f"| {config} | {name} | {rate:.0f} | {rate / base:.2f} | {accuracy:.4f} |")
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
