"""Statistics gathered a chunk at a time in bounded memory, for data that never sits in memory whole.

- `Moments`: count, mean, variance, min and max per column, merged chunk by chunk with Chan, Golub
  and LeVeque's pairwise update (the numerically stable form of Welford's method), NaN skipped.
- `Sample`: a uniform sample of rows without replacement, of fixed size: each row draws a seeded
  random key and the rows with the smallest keys are kept (mergeable, so chunks can come in any
  order). Medians and quartiles are the sample's: with 200,000 rows the median's rank is within
  about 0.1 % of the data's (standard error 0.5/sqrt(n)), and exact when the data is smaller.
- `Counts`: value counts with a cap (Misra-Gries): never more than `capacity` values tracked; every
  value more frequent than 1/capacity of the rows is kept, its count at most rows/capacity low.
- `ClassTally` and `RegressionTally`: report.py's metrics of predictions that stream past.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
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


class ClassTally:
    """Confusion matrix, and for two classes score histograms for the ROC AUC (2**20 bins: the
    AUC within about 1e-6 of the exact one, ties inside a bin counted half)."""

    BINS = 1 << 20

    def __init__(self, classes: int):

        self.matrix = np.zeros((classes, classes), dtype="int64")
        self.hist = np.zeros((2, self.BINS), dtype="int64") if classes == 2 else None

    def add(self, true: np.ndarray, predicted: np.ndarray, probs: np.ndarray | None) -> None:

        k = len(self.matrix)
        np.add.at(self.matrix, (true, predicted), 1)
        if self.hist is not None and probs is not None:
            bins = np.clip((probs[:, 1] * self.BINS).astype("int64"), 0, self.BINS - 1)
            for label in range(k):
                self.hist[label] += np.bincount(bins[true == label], minlength=self.BINS)

    def report(self, compiled: dict, classes: list) -> dict:
        """What report.classification gives for the same predictions."""

        m = self.matrix
        labels = [c.item() if hasattr(c, "item") else c for c in classes]
        support, predicted, hits = m.sum(axis=1), m.sum(axis=0), np.diag(m)
        with np.errstate(all="ignore"):
            precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), 0.0)
            recall = np.where(support > 0, hits / np.maximum(support, 1), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        out = {k: float(v) for k, v in compiled.items()}
        out["accuracy"] = float(hits.sum() / max(m.sum(), 1))
        out["f1_macro"] = float(f1.mean())
        if self.hist is not None and (support > 0).all():
            negative, positive = self.hist
            below = np.cumsum(negative) - negative  # negatives in lower bins
            auc = (positive * below).sum() + 0.5 * (positive * negative).sum()
            out["roc_auc"] = float(auc / (positive.sum() * negative.sum()))
        out["per_class"] = {
            str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
        }
        out["confusion_matrix"] = {"labels": labels, "matrix": m.tolist()}
        return out


class RegressionTally:
    """The compiled loss and metrics on original units (Keras' own, fed chunk by chunk), r2, mae
    and rmse, as report.regression gives them for the whole set."""

    def __init__(self, config):
        self.loss = keras.losses.get(config.loss)
        self.metrics = {name: keras.metrics.get(name) for name in config.metrics}
        self.sums: dict[str, float] = {}
        self.rows, self.abs, self.sq = 0, 0.0, 0.0
        self.naive_abs: float | None = None  # a series: the naive forecast's absolute errors
        self.truth = Moments(1)

    def add(self, y_true: np.ndarray, y_pred: np.ndarray, naive: np.ndarray | None = None) -> None:
        """One chunk's targets and predictions; `naive` (a series): the last value before each target."""
        if naive is not None:
            gap = np.abs(
                np.asarray(naive, dtype="float64").reshape(-1) - np.asarray(y_true, "float64").reshape(-1)
            )
            self.naive_abs = (self.naive_abs or 0.0) + float(gap.sum())

        y_true = np.asarray(y_true, dtype="float64").reshape(-1, 1)
        y_pred = np.asarray(y_pred, dtype="float64").reshape(-1, 1)
        n = len(y_true)
        for name, fn in {"loss": self.loss, **self.metrics}.items():
            if isinstance(fn, keras.metrics.Metric):
                fn.update_state(y_true, y_pred)
            else:  # a per-example function: its mean, weighted by rows
                value = float(np.mean(keras.ops.convert_to_numpy(fn(y_true, y_pred))))
                self.sums[name] = self.sums.get(name, 0.0) + value * n
        error = y_pred - y_true
        self.rows += n
        self.abs += float(np.abs(error).sum())
        self.sq += float((error * error).sum())
        self.truth.add(y_true)

    def report(self) -> dict:
        out = {}
        for name, fn in {"loss": self.loss, **self.metrics}.items():
            is_metric = isinstance(fn, keras.metrics.Metric)
            out[name] = float(fn.result()) if is_metric else self.sums[name] / max(self.rows, 1)
        rows = max(self.rows, 1)
        out["mae"] = self.abs / rows
        out["rmse"] = float(np.sqrt(self.sq / rows))
        total = float(self.truth.m2[0])
        out["r2"] = 1 - self.sq / total if self.rows > 1 and total > 0 else float("nan")
        if self.naive_abs is not None:
            out["naive_mae"] = self.naive_abs / rows
        return out
