"""Streamed training and prediction at bounded memory: `dlcli train` and `dlcli predict` on CSVs of
growing size (benchmarks/make_table.py: 20 numbers, 3 categories, an id, a binary target of known
logit), each a whole process, with its peak RSS (wait4) and the rows per second of each pass.

    python benchmarks/stream_sizes.py --gigabytes 1 4 16 [--work /big/disk] [--keep]

Beside each size: `pyarrow.csv` reading the same file alone (its streaming reader, in a process of
its own) for the throughput ratio, and for the first size the same rows as a folder of Parquet files.
Target (issue 18): peak RSS within 10 % across sizes and under 1.5 GB, for train and for predict;
rows/s flat across sizes (time linear in size); training reads ≥ 0.5× the rows/s of pyarrow.csv alone;
Parquet at least as fast as CSV. Writes its block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, run, write_block  # noqa: E402

START, END = "<!-- stream_sizes.py:start -->", "<!-- stream_sizes.py:end -->"
CONFIG = """
name: stream-bench
seed: 1
data:
  path: {path}
  target: y
  stream: true
  split: {{validation: 0.05, test: 0.05, key: id}}
preprocessing:
  numeric: {{impute: mean, scale: standard}}
  categorical: {{encode: one_hot}}
model:
  layers:
    - Dense: {{units: 32, activation: relu}}
    - Dense: {{units: 1, activation: sigmoid}}
optimizer: {{name: adam, learning_rate: 0.003}}
loss: binary_crossentropy
metrics: [accuracy]
train: {{epochs: 1, batch_size: 1024, plots: false, tensorboard: false}}
"""
PYARROW = """
import sys, time, pyarrow.csv as pc
start, rows = time.perf_counter(), 0
for batch in pc.open_csv(sys.argv[1]):
    rows += batch.num_rows
print(rows, time.perf_counter() - start)
"""


def make(path: Path, gigabytes: float) -> float:
    """The table (kept if already there); the best possible accuracy on it."""
    done = path.with_suffix(".json")
    if not done.is_file():
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--gigabytes", str(gigabytes),
             "--out", str(path)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        done.write_text(json.dumps({"bayes": float(out.rsplit(" ", 1)[1])}))
    return json.loads(done.read_text())["bayes"]


def train(work: Path, source: Path, name: str) -> dict:
    config = work / f"{name}.yaml"
    config.write_text(CONFIG.format(path=source))
    runs = work / f"runs-{name}"
    wall, rss = run([sys.executable, "-m", "dlcli", "train", str(config), "-q", "--run-dir", str(runs)])
    (run_dir,) = runs.glob("stream-bench/2*")
    record = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = record["data"]["rows"]
    total, timings = sum(rows.values()), record["timings"]
    return {
        "run": run_dir,
        "wall": wall,
        "rss": rss,
        "rows": total,
        "statistics_rps": total / timings["load_s"],
        "train_rps": rows["train"] / timings["epoch_s"][0],  # the epoch also validates
        "score_rps": 3 * total / timings["evaluate_s"],  # one pass over the file per split
        "accuracy": metrics["test"]["accuracy"],
    }


def predict(run_dir: Path, source: Path, work: Path) -> dict:
    out = work / "predictions.parquet"
    wall, rss = run(
        [sys.executable, "-m", "dlcli", "predict", str(run_dir), "--input", str(source), "--output", str(out)]
    )
    out.unlink()
    return {"wall": wall, "rss": rss}


def pyarrow_alone(source: Path) -> float:
    rows, seconds = subprocess.run(
        [sys.executable, "-c", PYARROW, str(source)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(rows) / float(seconds)


def parquet_folder(source: Path, folder: Path) -> Path:
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    if not folder.is_dir():
        folder.mkdir()
        writer = None
        for i, batch in enumerate(pc.open_csv(source)):
            if i % 40 == 0:  # a file every 40 batches of the reader: a folder of parts, as warehouses write
                if writer is not None:
                    writer.close()
                writer = pq.ParquetWriter(folder / f"part-{i // 40:04d}.parquet", batch.schema)
            writer.write_batch(batch, row_group_size=100_000)
        writer.close()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gigabytes", type=float, nargs="+", default=[1, 4, 16])
    parser.add_argument("--work", type=Path, help="folder for the tables (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the tables and results for the next run")
    parser.add_argument(
        "--redo", nargs="*", default=None, help="with --keep: measure these rows again (csv-1, parquet-1, …)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        tables = args.work if args.work and args.keep else work
        kept = tables / "results.json"
        results = json.loads(kept.read_text()) if kept.is_file() else {}
        redo = set(args.redo or [])
        for gb in args.gigabytes:
            source = tables / f"table-{gb:g}gb.csv"
            bayes = make(source, gb)
            if f"csv-{gb:g}" not in results or f"csv-{gb:g}" in redo:
                before = pyarrow_alone(source)  # the reader alone just before and just after: the machine's
                trained = train(work, source, f"csv-{gb:g}")  # load moves, so the mean of the two
                predicted = predict(trained.pop("run"), source, work)
                row = [
                    f"{gb:g} GB CSV",
                    source.stat().st_size,
                    bayes,
                    trained,
                    predicted,
                    (before + pyarrow_alone(source)) / 2,
                ]
                results[f"csv-{gb:g}"] = row
                print(row, flush=True)
            if gb == args.gigabytes[0] and (f"parquet-{gb:g}" not in results or f"parquet-{gb:g}" in redo):
                folder = parquet_folder(source, tables / f"parquet-{gb:g}gb")
                trained = train(work, folder, f"parquet-{gb:g}")
                trained.pop("run")
                size = sum(p.stat().st_size for p in folder.iterdir())
                results[f"parquet-{gb:g}"] = [f"{gb:g} GB as Parquet files", size, bayes, trained, None, None]
                print(results[f"parquet-{gb:g}"], flush=True)
            kept.write_text(json.dumps(results))
            if not args.keep:
                source.unlink()
        order = [f"{kind}-{gb:g}" for gb in args.gigabytes for kind in ("csv", "parquet")]
        block = render([results[k] for k in order if k in results])
    write_block(args.output, START, END, block)


def render(rows) -> str:
    lines = [
        START,
        f"## Streamed tables at bounded memory ({date.today()})",
        "",
        f"{machine()}. `python benchmarks/stream_sizes.py`: `dlcli train` (1 epoch, batch 1024, a 32-unit MLP, "
        "data.stream: true, split by the hash of the id: 90/5/5) and `dlcli predict` (to Parquet) on synthetic "
        "tables of 20 numbers, 3 categories and a binary target (benchmarks/make_table.py), whole processes. "
        "rows/s: statistics pass over all rows; training epoch over the train rows (the same read of the file "
        "keeps the validation rows in a temporary file, which the validation pass reads back); scoring, three "
        "passes (train, validation, test); `pyarrow.csv` alone: its streaming reader over the same file, "
        "nothing else, the mean of a run just before the training and one just after the prediction.",
        "",
        "| data | size | rows | train peak RSS | predict peak RSS | statistics rows/s | epoch rows/s | "
        "scoring rows/s | pyarrow.csv alone rows/s | epoch / pyarrow | test accuracy (best possible) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, size, bayes, t, p, alone in rows:
        ratio = f"{t['train_rps'] / alone:.2f}×" if alone else ""
        predicted = f"{p['rss']:,} MB" if p else ""
        reader = f"{alone:,.0f}" if alone else ""
        lines.append(
            f"| {name} | {size / 1e9:.2f} GB | {t['rows']:,} | {t['rss']:,} MB | "
            f"{predicted} | {t['statistics_rps']:,.0f} | {t['train_rps']:,.0f} | "
            f"{t['score_rps']:,.0f} | {reader} | {ratio} | "
            f"{t['accuracy']:.4f} ({bayes:.4f}) |"
        )
    lines.append(
        "\nEach row is one run, measured in turn (with --redo, some later than others): the machine is shared, "
        "so rows/s move with its load (the 1 GB CSV run measured 258,000 epoch rows/s an hour before this one). "
        "Peak RSS does not."
    )
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
