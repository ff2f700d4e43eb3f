"""Write a synthetic table of any size whose true relationship is known, for the streaming benchmarks
and tests: 20 numeric columns, 3 categorical ones, an id and a binary target.

The generator, row by row (seeded; every block of rows from its own seed, so any size is the same
rows as a smaller one, continued):
    x_1 … x_20 ~ Normal(0, 1), rounded to 3 decimals; about 1 % of x_3 missing
    c_1 ∈ {a … h}, c_2 ∈ {p, q, r, s}, c_3 ∈ 40 codes k00 … k39 (uniform)
    logit = 1.5 x_1 − 1.0 x_2 + 0.75 x_3 (0 where missing) + 0.5 x_4 x_5 + effect(c_1) + effect(c_2)
            with effect(a … h) = −1 … +1 evenly, effect(p, q, r, s) = (−0.5, 0, 0, 0.5)
    y ~ Bernoulli(sigmoid(logit))
So the best possible accuracy is that of predicting y = [logit > 0], which the script reports
for the rows it wrote (`--report`). x_6 … x_20 and c_3 are noise.

    python benchmarks/make_table.py --gigabytes 1 --out /tmp/t1.csv
    python benchmarks/make_table.py --rows 5000 --out /tmp/small.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BLOCK = 500_000
C1 = np.array(list("abcdefgh"))
C2 = np.array(list("pqrs"))
C3 = np.array([f"k{i:02d}" for i in range(40)])
EFFECT1 = np.linspace(-1, 1, 8)
EFFECT2 = np.array([-0.5, 0.0, 0.0, 0.5])


def block(index: int, rows: int):
    """Rows index*BLOCK … of the table, as a pyarrow Table, and their logits."""
    import pyarrow as pa

    rng = np.random.default_rng([7, index])
    x = np.round(rng.standard_normal((rows, 20)), 3)
    x3 = x[:, 2].copy()
    missing = rng.random(rows) < 0.01
    x3[missing] = np.nan
    c1, c2, c3 = rng.integers(0, 8, rows), rng.integers(0, 4, rows), rng.integers(0, 40, rows)
    logit = (
        1.5 * x[:, 0]
        - 1.0 * x[:, 1]
        + 0.75 * np.nan_to_num(x3)
        + 0.5 * x[:, 3] * x[:, 4]
        + EFFECT1[c1]
        + EFFECT2[c2]
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    columns = {"id": np.arange(index * BLOCK, index * BLOCK + rows, dtype="int64")}
    for j in range(20):
        columns[f"x_{j + 1}"] = x3 if j == 2 else x[:, j]
    columns.update(c_1=C1[c1], c_2=C2[c2], c_3=C3[c3], y=y)
    return pa.table(columns), logit, y


def write(out: Path, rows: int | None = None, gigabytes: float | None = None, row_group: int = 100_000):
    """Write blocks until `rows` rows or `gigabytes` GB are written; returns (rows, Bayes accuracy)."""
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    parquet = out.suffix.lower() in (".parquet", ".pq")
    target = gigabytes * 1e9 if gigabytes else None
    writer, written, hits, index = None, 0, 0, 0
    try:
        while rows is None or written < rows:
            if target is not None and writer is not None and out.stat().st_size >= target:
                break
            n = BLOCK if rows is None else min(BLOCK, rows - written)
            table, logit, y = block(index, n)
            if writer is None:
                writer = (
                    pq.ParquetWriter(out, table.schema)
                    if parquet
                    else pc.CSVWriter(
                        out, table.schema, write_options=pc.WriteOptions(quoting_style="needed")
                    )
                )
            if parquet:
                writer.write_table(table, row_group_size=row_group)
            else:
                writer.write_table(table)
            written, hits, index = written + n, hits + int(((logit > 0) == y).sum()), index + 1
    finally:
        if writer is not None:
            writer.close()
    return written, hits / max(written, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int)
    size.add_argument("--gigabytes", type=float)
    parser.add_argument("--row-group", type=int, default=100_000, help="Parquet row group size")
    args = parser.parse_args()
    rows, bayes = write(args.out, args.rows, args.gigabytes, args.row_group)
    print(
        f"{args.out}: {rows} rows, {args.out.stat().st_size / 1e9:.2f} GB; best possible accuracy {bayes:.4f}"
    )


if __name__ == "__main__":
    main()
