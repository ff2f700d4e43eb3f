"""dlcli against the scripts users write by hand: the same work both ways, interleaved.

    DLCLI_DATA_DIR=../shared/data python benchmarks/compare.py [--rounds 3] [--pairs mlp,convnet,housing]

Each pair runs the plain script (A) and `dlcli train` (B) as separate processes, A B A B ..., with the
same model, training rows, batch size, epochs and validation on both sides. Reported per side: the
median steady-state epoch time (first epoch of each run excluded; an epoch is training + validation +
whatever the tool writes after it), the test metric of the runs that trained to the end, and the peak
RSS of the process (`wait4`). Then the ratio B / A. Also the time from `dlcli train` start to the end of
its first training step on housing against `python -c "import tensorflow"`, and `dlcli --help`.
Writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "benchmarks" / "scripts"


@dataclass
class Pair:
    name: str
    metric: str
    script: list[str]  # arguments after the script path; {data} and {result} are filled in
    config: str
    overrides: list[str]
    # later rounds may time fewer epochs than the first, which trains to the end for the metric
    short_script: list[str] | None = None
    short_overrides: list[str] = field(default_factory=list)
    # a seed per round ({seed} in script arguments, -o seed=N for dlcli), where one seed says little
    seeded: bool = False


PAIRS = {
    "mlp": Pair(
        "MNIST MLP, batch 32, 5 epochs, no validation (tutorial script vs configs/mnist.yaml)",
        "test accuracy",
        ["mnist_mlp_tutorial.py", "{data}/mnist.npz", "{result}"],
        "configs/mnist.yaml",
        ["-o", "data.split.validation=0"],  # the tutorial trains on all 60,000 images, no validation
    ),
    "convnet": Pair(
        "MNIST convnet, batch 128, validation 10 % (keras.io script vs configs/mnist_cnn.yaml)",
        "test accuracy",
        ["mnist_convnet_kerasio.py", "{data}/mnist.npz", "{result}"],
        "configs/mnist_cnn.yaml",
        [],
        short_script=["mnist_convnet_kerasio.py", "{data}/mnist.npz", "{result}", "4"],
        short_overrides=["-o", "train.epochs=4"],
    ),
    "housing": Pair(
        "California housing, batch 64, early stopping "
        "(pandas + scikit-learn + Keras vs configs/housing.yaml)",
        "test r2",
        ["housing_plain.py", "{data}/housing.csv", "{result}", "{seed}"],
        "configs/housing.yaml",
        [],
        seeded=True,  # r2 moves by ±0.02 with the seed on either side: compare medians over seeds
    ),
}


def data_dir() -> Path:
    """The shared datasets: $DLCLI_DATA_DIR, else ../shared/data beside the repository."""
    return data_dir()


def script_arguments(doc: str, rounds: int) -> tuple[argparse.Namespace, Path]:
    """`--rounds` and `--output` for a benchmark script that writes one block, and the data folder."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    data = data_dir()
    return parser.parse_args(), data


def write_block(path: Path, start: str, end: str, block: str | list[str]) -> None:
    """Put `block` (its lines, or their text, beginning with `start` and ending with `end`) into
    RESULTS.md, in place of the block between those markers, else at the end, and print it. Each
    benchmark script owns one block."""
    if not isinstance(block, str):
        block = "\n".join(block)
    print(block)
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


#: The blocks other scripts own in RESULTS.md, kept when compare.py rewrites the rest.
OTHER_BLOCKS = [
    ("<!-- before_after.py:start -->", "<!-- before_after.py:end -->"),
    ("<!-- workers.py:start -->", "<!-- workers.py:end -->"),
    ("<!-- whole.py:start -->", "<!-- whole.py:end -->"),
    ("<!-- private_apis.py:start -->", "<!-- private_apis.py:end -->"),
    ("<!-- inputs.py:start -->", "<!-- inputs.py:end -->"),
    ("<!-- gpu.py:start -->", "<!-- gpu.py:end -->"),
    ("<!-- predict_lite.py:start -->", "<!-- predict_lite.py:end -->"),
    ("<!-- serve_load.py:start -->", "<!-- serve_load.py:end -->"),
    ("<!-- export_shipped.py:start -->", "<!-- export_shipped.py:end -->"),
    ("<!-- stream_sizes.py:start -->", "<!-- stream_sizes.py:end -->"),
    ("<!-- series_memory.py:start -->", "<!-- series_memory.py:end -->"),
    ("<!-- tune_pruning.py:start -->", "<!-- tune_pruning.py:end -->"),
    ("<!-- init_vs_hand.py:start -->", "<!-- init_vs_hand.py:end -->"),
    ("<!-- explain_time.py:start -->", "<!-- explain_time.py:end -->"),
    ("<!-- small_runs.py:start -->", "<!-- small_runs.py:end -->"),
]


def medians(results: dict[str, list[tuple[float, int]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per side, the median wall time and the median peak RSS of its `run` results."""
    wall = {side: statistics.median(r[0] for r in rs) for side, rs in results.items()}
    rss = {side: statistics.median(r[1] for r in rs) for side, rs in results.items()}
    return wall, rss


def run(command: list[str], env: dict | None = None) -> tuple[float, int]:
    """Run to completion; (wall seconds, peak RSS in MB of the process)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, round(usage.ru_maxrss / 1024)  # Linux reports KiB


def script_side(pair: Pair, data: Path, work: Path, short: bool, seed: int) -> dict:
    args = pair.short_script if short and pair.short_script else pair.script
    result = work / "script.json"
    filled = [a.format(data=data, result=result, seed=seed) for a in args]
    wall, rss = run([sys.executable, str(SCRIPTS / filled[0]), *filled[1:]])
    out = json.loads(result.read_text())
    return {"epoch_s": out["epoch_s"], "metric": out["test_metric"], "rss_mb": rss, "wall_s": wall}


def dlcli_side(pair: Pair, data: Path, work: Path, short: bool, seed: int) -> dict:
    runs = work / "runs"
    overrides = pair.overrides + (pair.short_overrides if short else [])
    if pair.seeded:
        overrides = [*overrides, "-o", f"seed={seed}"]
    command = [sys.executable, "-m", "dlcli", "train", str(ROOT / pair.config), "-q", "--run-dir", str(runs)]
    wall, rss = run([*command, *overrides], env={"DLCLI_DATA_DIR": str(data)})
    (run_dir,) = [p for p in runs.glob("*/2*") if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    metric = test["accuracy"] if "accuracy" in test else test["r2"]
    timings = record["timings"]
    return {
        "epoch_s": timings["epoch_s"],
        "metric": metric,
        "rss_mb": rss,
        "wall_s": wall,
        "first_step_s": timings["first_step_s"],
    }


def steady(epoch_s: list[float]) -> float:
    return statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else float("nan")


def import_tensorflow_s() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return time.perf_counter() - started


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        mem = "RAM unknown"
    from importlib import metadata

    versions = ", ".join(f"{d} {metadata.version(d)}" for d in ("tensorflow", "keras", "dlcli"))
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem}, no GPU used; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {versions}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", default="mlp,convnet,housing")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    if not (data / "mnist.npz").is_file():
        sys.exit(f"{data}: no mnist.npz; set DLCLI_DATA_DIR to the shared data folder")
    names = args.pairs.split(",")
    results: dict[str, dict[str, list[dict]]] = {n: {"script": [], "dlcli": []} for n in names}
    imports: list[float] = []
    for round_ in range(args.rounds):
        for name in names:
            short = round_ > 0 and PAIRS[name].short_script is not None
            for side, fn in (("script", script_side), ("dlcli", dlcli_side)):  # A B, every round
                with tempfile.TemporaryDirectory() as work:
                    seed = 42 + round_ if PAIRS[name].seeded else 42
                    out = fn(PAIRS[name], data, Path(work), short, seed)
                out["full"] = not short
                results[name][side].append(out)
                print(
                    f"round {round_ + 1} {name} {side}: steady epoch {steady(out['epoch_s']):.3f} s, "
                    f"{PAIRS[name].metric} {out['metric']:.4f}, {out['rss_mb']} MB",
                    flush=True,
                )
            if name == "housing":
                imports.append(import_tensorflow_s())
    report = render(names, results, imports, args.rounds)
    old = args.output.read_text() if args.output.is_file() else ""
    for start, end in OTHER_BLOCKS:  # benchmarks/workers.py's and whole.py's blocks stay
        if start in old and end in old:
            report = report.rstrip("\n") + "\n\n" + old[old.index(start) : old.index(end) + len(end)] + "\n"
    args.output.write_text(report)
    print(report)


def render(names, results, imports, rounds) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/compare.py --rounds {rounds}` on: {machine()}.",
        "",
        "Each pair ran interleaved (script, dlcli, script, dlcli, ...), each run a fresh process.",
        "Epoch time: median over rounds of each run's median steady-state epoch (first epoch",
        "excluded; an epoch is training + validation + what the tool writes after it: dlcli's",
        "checkpoints, history and TensorBoard included). Metric: runs that trained to the end.",
        "RSS: peak of the whole process. Housing uses seed 42, 43, 44 in rounds 1, 2, 3 on both sides",
        "(the same split on both sides within a round); the other pairs use seed 42 throughout.",
        "",
        "| pair | side | epoch (s) | ratio | metric | peak RSS (MB) | RSS ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        pair = PAIRS[name]
        med = {
            s: statistics.median(steady(r["epoch_s"]) for r in results[name][s]) for s in ("script", "dlcli")
        }
        rss = {s: statistics.median(r["rss_mb"] for r in results[name][s] if r["full"]) for s in med}
        for side in ("script", "dlcli"):
            metrics = [r["metric"] for r in results[name][side] if r["full"]]
            metric = " / ".join(f"{m:.4f}" for m in metrics)
            if len(metrics) > 1:
                metric += f" (median {statistics.median(metrics):.4f})"
            ratio = "1" if side == "script" else f"{med['dlcli'] / med['script']:.3f}"
            rss_ratio = "1" if side == "script" else f"{rss['dlcli'] / rss['script']:.3f}"
            lines.append(
                f"| {pair.name} | {side} | {med[side]:.3f} | {ratio} | {pair.metric} {metric} | "
                f"{rss[side]:.0f} | {rss_ratio} |"
            )
    if "housing" in names and imports:
        first = statistics.median(r["first_step_s"] for r in results["housing"]["dlcli"])
        tf_import = statistics.median(imports)
        lines += [
            "",
            "Start-up on housing: `dlcli train` from its start to the end of its first training step "
            f"(TensorFlow import, validation, data load, preprocessing, model build and tracing): median "
            f'{first:.2f} s; `python -c "import tensorflow"`: median {tf_import:.2f} s over the same rounds; '
            f"difference {first - tf_import:+.2f} s.",
        ]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
