"""Statistics gathered a chunk at a time in bounded memory, for data that never sits in memory whole.

- `Moments`: count, mean, variance, min and max per column, merged chunk by chunk with Chan, Golub
  and LeVeque's pairwise update (the numerically stable form of Welford's method), NaN skipped.
- `Sample`: a uniform sample of rows without replacement, of fixed size: each row draws a seeded
  random key and the rows with the smallest keys are kept (mergeable, so chunks can come in any
  order). Medians and quartiles are the sample's: with 200,000 rows the median's rank is within
  about 0.1 % of the data's (standard error 0.5/sqrt(n)), and exact when the data is smaller.
- `Counts`: value counts with a cap (Misra-Gries): never more than `capacity` values tracked; every
  value more frequent than 1/capacity of the rows is kept, its count at most rows/capacity low.
"""

from __future__ import annotations

import numpy as np


class Moments:
    """Per-column count, mean, sum of squared deviations (M2), min and max of the non-NaN values."""

    def __init__(self, width: int):

        self.n = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.low = np.full(width, np.inf)
        self.high = np.full(width, -np.inf)

    def add(self, values: np.ndarray) -> None:

        values = np.asarray(values, dtype="float64").reshape(len(values), -1)
        present = ~np.isnan(values)
        n = present.sum(axis=0).astype("float64")
        if not n.any():
            return
        with np.errstate(all="ignore"):
            mean = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), 0.0)
            m2 = np.where(present, values - mean, 0.0)
            m2 = (m2 * m2).sum(axis=0)
            self.merge(n, mean, m2)
            self.low = np.fmin(self.low, np.nanmin(np.where(present, values, np.inf), axis=0))
            self.high = np.fmax(self.high, np.nanmax(np.where(present, values, -np.inf), axis=0))

    def merge(self, n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        """Fold in another group's count, mean and M2 (Chan et al.)."""

        total = self.n + n
        with np.errstate(all="ignore"):
            delta = mean - self.mean
            share = np.where(total > 0, n / np.maximum(total, 1), 0.0)
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2 + delta * delta * self.n * share
        self.n = total

    def fold(self, other: Moments) -> None:
        """Fold in another Moments (another worker's rows)."""

        self.merge(other.n, other.mean, other.m2)
        self.low, self.high = np.fmin(self.low, other.low), np.fmax(self.high, other.high)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{k}": getattr(self, k) for k in ("n", "mean", "m2", "low", "high")}

    @classmethod
    def of(cls, arrays: dict, prefix: str) -> Moments:
        out = cls(len(arrays[f"{prefix}.n"]))
        for k in ("n", "mean", "m2", "low", "high"):
            setattr(out, k, arrays[f"{prefix}.{k}"])
        return out

    def filled(self, fill: np.ndarray, rows: int) -> Moments:
        """The moments once each column's missing values (of `rows` rows in all) are `fill`, as an
        imputer leaves the data for the scaler."""

        fill = np.asarray(fill, dtype="float64")
        out = Moments(len(self.n))
        out.n, out.mean, out.m2 = self.n.copy(), self.mean.copy(), self.m2.copy()
        missing = rows - self.n
        out.merge(missing, np.where(missing > 0, fill, 0.0), np.zeros(len(self.n)))
        out.low = np.where(missing > 0, np.fmin(self.low, fill), self.low)
        out.high = np.where(missing > 0, np.fmax(self.high, fill), self.high)
        return out

    def std(self) -> np.ndarray:

        return np.sqrt(self.m2 / np.maximum(self.n, 1))


class Sample:
    """A seeded uniform sample of at most `size` rows of a float64 matrix (NaN kept)."""

    def __init__(self, width: int, size: int = 200_000, seed: int = 0):

        self.size, self.seed = size, seed
        self.keys = np.empty(0)
        self.rows = np.empty((0, width))

    def add(self, values: np.ndarray, chunk: int) -> None:
        """Rows of chunk number `chunk` (their keys are drawn from (seed, chunk))."""

        keys = np.random.default_rng([self.seed, chunk]).random(len(values))
        self.fold(keys, np.asarray(values, dtype="float64").reshape(len(values), -1))

    def fold(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Fold in another sample (another worker's rows): the smallest keys of both, so the
        result is the sample one reader of all the rows would have kept."""

        self.keys, self.rows = np.concatenate([self.keys, keys]), np.concatenate([self.rows, rows])
        if len(self.keys) > self.size:
            keep = np.argpartition(self.keys, self.size - 1)[: self.size]
            keep.sort()
            self.keys, self.rows = self.keys[keep], self.rows[keep]

    def filled(self, fill: np.ndarray) -> np.ndarray:

        return np.where(np.isnan(self.rows), np.asarray(fill, dtype="float64"), self.rows)


class Counts:
    """Counts of hashable values, at most `capacity` tracked (Misra-Gries summary)."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self.counts: dict = {}
        self.rows = 0
        self.pruned = False  # whether any value was dropped (counts are then lower bounds)

    def add(self, values) -> None:
        """`values`: a pandas Series (missing values are not counted)."""
        found = values.value_counts(dropna=True)
        self.rows += int(found.sum())
        counts = self.counts
        for value, n in zip(found.index.tolist(), found.tolist(), strict=True):
            counts[value] = counts.get(value, 0) + n
        self._cut()

    def _cut(self) -> None:
        """Back to the capacity: every count less the first one past it; the values left at 0 go."""
        if len(self.counts) > self.capacity:
            cut = sorted(self.counts.values(), reverse=True)[self.capacity]
            self.counts = {k: v - cut for k, v in self.counts.items() if v > cut}
            self.pruned = True

    def distinct(self) -> int:
        return len(self.counts)

    def pairs(self) -> dict:
        """JSON-able: the counted values with their types kept (JSON keys would all be text)."""
        return {"pairs": [[k, v] for k, v in self.counts.items()], "rows": self.rows, "pruned": self.pruned}

    def fold(self, other: dict) -> None:
        """Fold in another Counts' `pairs()` (Misra-Gries summaries merge by adding the counts,
        then cutting back to the capacity)."""
        counts = self.counts
        for value, n in other["pairs"]:
            counts[value] = counts.get(value, 0) + n
        self.rows += other["rows"]
        self.pruned = self.pruned or other["pruned"]
        self._cut()
