"""The metrics of `metrics.json`, tallied as predictions come: one set for every path (a split in
memory is fed once, a streamed one chunk by chunk, workers' tallies are merged, an export is checked
with them too), so the keys and the formulas are the same whichever way the rows came.

Keras' metric contract: `update_state` with a batch, `result` at the end; `state`/`merge` add up
the tallies of several workers. scikit-learn's metrics are the reference in the tests.

- `ClassTally`: the confusion matrix (accuracy, macro F1, each class's precision, recall, F1 and
  support) and, for two classes, histograms of the second class's probability for the ROC AUC
  (2**20 bins: within about 1e-6 of the exact AUC, ties inside a bin counted half).
- `RegressionTally`: the compiled loss and metrics on the target's own units (Keras' own, fed batch
  by batch), mae, rmse and r2, and `naive_mae` for series ("the next value equals the last one").

    >>> tally = ClassTally(["no", "yes"])
    >>> tally.update_state(["no", "yes", "yes"], ["no", "no", "yes"], probs)
    >>> tally.result({"loss": 0.41})["accuracy"]
    0.6666666666666666
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from dlcli.metrics.running import Moments


class ClassTally:
    """Counts of (true, predicted) class pairs, and probability histograms for two classes."""

    BINS = 1 << 20

    def __init__(self, classes: list):
        self.classes = list(classes)
        self.index = pd.Index(self.classes)
        k = len(self.classes)
        self.matrix = np.zeros((k, k), dtype="int64")
        self.hist = np.zeros((2, self.BINS), dtype="int64") if k == 2 else None

    def codes(self, labels) -> np.ndarray:
        found = self.index.get_indexer(np.asarray(labels, dtype=object))
        if (found < 0).any():
            unknown = np.asarray(labels, dtype=object)[found < 0][0]
            raise ValueError(f"{unknown!r} is not one of the classes {self.classes}")
        return found

    def update_state(self, y_true, y_pred, probs: np.ndarray | None = None) -> None:
        """A batch of true and predicted labels (and the class probabilities, for the AUC)."""
        true, predicted = self.codes(y_true), self.codes(y_pred)
        np.add.at(self.matrix, (true, predicted), 1)
        if self.hist is not None and probs is not None:
            bins = np.clip((np.asarray(probs)[:, 1] * self.BINS).astype("int64"), 0, self.BINS - 1)
            for label in range(2):
                self.hist[label] += np.bincount(bins[true == label], minlength=self.BINS)

    def result(self, compiled: dict | None = None) -> dict:
        """`compiled` (the compiled loss and metrics) and the class metrics of metrics.json."""
        m = self.matrix
        support, predicted, hits = m.sum(axis=1), m.sum(axis=0), np.diag(m)
        with np.errstate(all="ignore"):
            precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), 0.0)
            recall = np.where(support > 0, hits / np.maximum(support, 1), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        out = {k: float(v) for k, v in (compiled or {}).items()}
        out["accuracy"] = float(hits.sum() / max(m.sum(), 1))
        out["f1_macro"] = float(f1.mean())
        if self.hist is not None and self.hist.any() and (support > 0).all():
            negative, positive = self.hist
            below = np.cumsum(negative) - negative  # negatives in lower bins
            auc = (positive * below).sum() + 0.5 * (positive * negative).sum()
            out["roc_auc"] = float(auc / (positive.sum() * negative.sum()))
        labels = [c.item() if isinstance(c, np.generic) else c for c in self.classes]
        out["per_class"] = {
            str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
        }
        out["confusion_matrix"] = {"labels": labels, "matrix": m.tolist()}
        return out

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able numbers, arrays): what another worker needs to merge this tally."""
        return {}, {"matrix": self.matrix, **({"hist": self.hist} if self.hist is not None else {})}

    def merge(self, states: list[tuple[dict, dict]]) -> None:
        """This tally becomes the sum of `states` (every worker's, this one's included)."""
        self.matrix = sum(arrays["matrix"] for _, arrays in states)
        if self.hist is not None:
            self.hist = sum(arrays["hist"] for _, arrays in states)


class RegressionTally:
    """The compiled loss and metrics on original units (Keras' own, fed batch by batch), r2, mae and
    rmse (and naive_mae for a series)."""

    def __init__(self, loss: str | None = None, metrics: list[str] = ()):
        self.fns = {"loss": keras.losses.get(loss)} if loss else {}
        self.fns.update({name: keras.metrics.get(name) for name in metrics})
        self.sums: dict[str, float] = {}  # per-example functions: their sum over the rows
        self.rows, self.abs, self.sq = 0, 0.0, 0.0
        self.finite = True
        self.naive_abs: float | None = None
        self.truth = Moments(1)

    def update_state(self, y_true, y_pred, naive: np.ndarray | None = None) -> None:
        """A batch of targets and predictions; `naive` (a series): the last value before each target."""
        y_true = np.asarray(y_true, dtype="float64").reshape(-1, 1)
        y_pred = np.asarray(y_pred, dtype="float64").reshape(-1, 1)
        if naive is not None:
            gap = np.abs(np.asarray(naive, dtype="float64").reshape(-1, 1) - y_true)
            self.naive_abs = (self.naive_abs or 0.0) + float(gap.sum())
        n = len(y_true)
        for name, fn in self.fns.items():
            if isinstance(fn, keras.metrics.Metric):
                fn.update_state(y_true, y_pred)
            else:  # a per-example function: its mean, weighted by rows
                value = float(np.mean(keras.ops.convert_to_numpy(fn(y_true, y_pred))))
                self.sums[name] = self.sums.get(name, 0.0) + value * n
        error = y_pred - y_true
        self.finite = self.finite and bool(np.isfinite(y_pred).all())
        self.rows += n
        self.abs += float(np.abs(error).sum())
        self.sq += float((error * error).sum())
        self.truth.add(y_true)

    def result(self) -> dict:
        out = {}
        for name, fn in self.fns.items():
            metric = isinstance(fn, keras.metrics.Metric)
            out[name] = float(fn.result()) if metric else self.sums[name] / max(self.rows, 1)
        rows = max(self.rows, 1)
        if self.finite:
            out["mae"] = self.abs / rows
            out["rmse"] = float(np.sqrt(self.sq / rows))
            out["r2"] = self._r2()
        else:  # a diverged model: the errors are infinite, the fit worse than any
            out["mae"] = out["rmse"] = float("inf")
            out["r2"] = float("-inf")
        if self.naive_abs is not None:
            out["naive_mae"] = self.naive_abs / rows
        return out

    def _r2(self) -> float:
        """1 - residual / total sum of squares; as scikit-learn's r2_score for a constant target
        (1 when predicted exactly, else 0) and nan for one row."""
        if self.rows < 2:
            return float("nan")
        total = float(self.truth.m2[0])
        if total == 0:
            return 1.0 if self.sq == 0 else 0.0
        return 1 - self.sq / total

    def keras_metrics(self) -> list:
        """The Keras metric objects among the compiled loss and metrics (their states add up)."""
        return [fn for fn in self.fns.values() if isinstance(fn, keras.metrics.Metric)]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        numbers = {
            "rows": self.rows,
            "abs": self.abs,
            "sq": self.sq,
            "sums": self.sums,
            "finite": self.finite,
        }
        return {**numbers, "naive_abs": self.naive_abs}, self.truth.arrays("truth")

    def merge(self, states: list[tuple[dict, dict]]) -> None:
        """This tally becomes the sum of `states` (every worker's, this one's included); the Keras
        metric objects are summed by the caller (shards.sum_metric_states)."""
        self.rows = sum(numbers["rows"] for numbers, _ in states)
        self.abs, self.sq = (sum(numbers[k] for numbers, _ in states) for k in ("abs", "sq"))
        self.sums = {k: sum(numbers["sums"].get(k, 0.0) for numbers, _ in states) for k in self.sums}
        self.finite = all(numbers["finite"] for numbers, _ in states)
        naive = [numbers["naive_abs"] for numbers, _ in states if numbers["naive_abs"] is not None]
        self.naive_abs = sum(naive) if naive else None
        self.truth = Moments(1)
        for _, arrays in states:
            self.truth.fold(Moments.of(arrays, "truth"))
