"""One machine, one config, one vs two `dlcli train` workers (train.distribution.strategy: multi_worker).

    DLCLI_DATA_DIR=../shared/data python benchmarks/workers.py [--rounds 3] [--epochs 10]

California housing (configs/housing.yaml, a fixed number of epochs so every side does the same
work), interleaved every round: one_device (the config as it is), a cluster of 1 worker and a
cluster of 2 workers on 127.0.0.1. Reported per side: the median over rounds of the wall time of
the whole command (for 2 workers, until both have exited), of the median steady-state epoch, and
the test r2; then the ratio to one worker. Replaces the block between the workers markers in
benchmarks/RESULTS.md (compare.py keeps it when it rewrites the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, data_dir, machine, steady, write_block  # noqa: E402

START, END = "<!-- workers.py:start -->", "<!-- workers.py:end -->"
SIDES = ("one_device", "1 worker", "2 workers")


def ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    found = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return found


def side(name: str, data: Path, work: Path, epochs: int) -> dict:
    command = [sys.executable, "-m", "dlcli", "train", str(ROOT / "configs" / "housing.yaml"), "-q"]
    command += ["--run-dir", str(work / "runs"), "-o", f"train.epochs={epochs}"]
    command += ["-o", "train.early_stopping.patience=1000"]  # every side trains every epoch
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    n = {"one_device": 0, "1 worker": 1, "2 workers": 2}[name]
    envs = [env]
    if n:
        command += ["-o", "train.distribution.strategy=multi_worker"]
        hosts = [f"127.0.0.1:{p}" for p in ports(n)]
        task = {"cluster": {"worker": hosts}}
        envs = [
            {**env, "TF_CONFIG": json.dumps({**task, "task": {"type": "worker", "index": i}})}
            for i in range(n)
        ]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for e in envs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode:
            sys.exit(f"{name}: exit {proc.returncode}\n{err.decode()[-3000:]}")
    wall = time.perf_counter() - started
    (run_dir,) = [p for p in (work / "runs").glob("*/2*") if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    r2 = json.loads((run_dir / "metrics.json").read_text())["test"]["r2"]
    return {"wall_s": wall, "epoch_s": steady(record["timings"]["epoch_s"]), "r2": r2}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    if not (data / "housing.csv").is_file():
        sys.exit(f"{data}: no housing.csv; set DLCLI_DATA_DIR to the shared data folder")
    results: dict[str, list[dict]] = {name: [] for name in SIDES}
    for round_ in range(args.rounds):
        for name in SIDES:
            with tempfile.TemporaryDirectory() as work:
                out = side(name, data, Path(work), args.epochs)
            results[name].append(out)
            print(f"round {round_ + 1} {name}: wall {out['wall_s']:.2f} s, epoch {out['epoch_s']:.3f} s, "
                  f"r2 {out['r2']:.4f}", flush=True)  # fmt: skip
    block = render(results, args.rounds, args.epochs)
    write_block(args.output, START, END, block)


def render(results: dict[str, list[dict]], rounds: int, epochs: int) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    base_wall, base_epoch = median("1 worker", "wall_s"), median("1 worker", "epoch_s")
    lines = [
        START,
        "## One machine, 1 vs 2 workers (`benchmarks/workers.py`)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/workers.py --rounds {rounds} --epochs {epochs}` "
        f"on: {machine()}. configs/housing.yaml, {epochs} epochs (early stopping out of reach), batch 64 "
        "global; sides interleaved every round, medians over rounds. Workers are `dlcli train` processes "
        "on 127.0.0.1 with TF_CONFIG (strategy multi_worker, one step per call: keras-team/keras issue "
        "19246); wall: the whole command, until every worker has exited.",
        "",
        "| side | wall (s) | wall ratio | steady epoch (s) | epoch ratio | test r2 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in SIDES:
        wall, epoch = median(name, "wall_s"), median(name, "epoch_s")
        r2 = " / ".join(f"{r['r2']:.4f}" for r in results[name])
        ratios = f"{wall / base_wall:.3f} | {epoch:.3f} | {epoch / base_epoch:.3f}"
        lines.append(f"| {name} | {wall:.2f} | {ratios} | {r2} |")
    lines += [
        "",
        "On one small CPU machine more workers are slower: the two share the same cores, and every step "
        "pays an all-reduce of the gradients between processes. A cluster of one is slower than "
        "one_device too: one step per call instead of 32, and the strategy's per-step bookkeeping. The "
        "feature is for machines with their own GPUs; on one machine use one_device or mirrored.",
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
