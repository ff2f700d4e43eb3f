"""Metrics in the target's original units (scikit-learn and Keras' own metric functions).

`metrics.json` holds, per split, the compiled loss and metrics under their Keras names plus
`accuracy`, `f1_macro` and `confusion_matrix` for classification, or `r2`, `mae` and `rmse` for
regression (and `naive_mae`, the "next value equals the last one" forecast, for time series).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)

from dlcli.config.config import Config

if TYPE_CHECKING:
    import numpy as np


def classification(
    compiled: dict[str, float],
    classes: list,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray | None = None,
) -> dict:
    """`compiled` (the compiled loss and metrics, from pipeline.forward) plus accuracy, macro F1, the
    confusion matrix, each class's precision, recall, F1 and support (`per_class`, by label) and, for
    two classes, the ROC AUC of the second class's probability."""

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = [c.item() if hasattr(c, "item") else c for c in classes]
    out = {k: float(v) for k, v in compiled.items()}
    out["accuracy"] = float(accuracy_score(y_true, y_pred))
    out["f1_macro"] = float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    if len(classes) == 2 and probs is not None and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true == classes[1], probs[:, 1]))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    out["per_class"] = {
        str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
    }
    out["confusion_matrix"] = {
        "labels": labels,
        "matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }
    return out


def regression(
    config: Config, y_true: np.ndarray, y_pred: np.ndarray, naive: np.ndarray | None = None
) -> dict:
    """The compiled loss and metrics recomputed on original units, plus r2, mae and rmse."""
    y_true = np.asarray(y_true, dtype="float64").reshape(-1, 1)
    y_pred = np.asarray(y_pred, dtype="float64").reshape(-1, 1)
    out: dict[str, float] = {"loss": _keras_value(keras.losses.get(config.loss), y_true, y_pred)}
    for name in config.metrics:
        out[name] = _keras_value(keras.metrics.get(name), y_true, y_pred)
    if np.isfinite(y_pred).all():
        out["mae"] = float(mean_absolute_error(y_true, y_pred))
        out["rmse"] = float(np.sqrt(mean_squared_error(y_true, y_pred)))
        out["r2"] = float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan")
    else:  # a diverged model: scikit-learn refuses infinities, the numbers are still meaningful
        out["mae"] = out["rmse"] = float("inf")
        out["r2"] = float("-inf")
    if naive is not None:
        out["naive_mae"] = float(mean_absolute_error(y_true, np.asarray(naive, dtype="float64")))
    return out


def _keras_value(fn, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if isinstance(fn, keras.metrics.Metric):
        fn.update_state(y_true, y_pred)
        return float(fn.result())
    return float(np.mean(keras.ops.convert_to_numpy(fn(y_true, y_pred))))
