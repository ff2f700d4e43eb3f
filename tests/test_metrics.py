"""dlcli/metrics/: the tallies of metrics.json against scikit-learn on the same predictions, fed in
one batch (a split in memory), in several (streamed), and merged from several workers."""

from __future__ import annotations

import numpy as np
import pytest
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

from dlcli.metrics.running import Moments
from dlcli.metrics.tallies import ClassTally, RegressionTally

CLASSIFICATION_KEYS = {"loss", "accuracy", "f1_macro", "roc_auc", "per_class", "confusion_matrix"}


def _two_classes(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 2, n)
    p1 = np.clip(0.35 * true + rng.random(n) * 0.65, 0, 1)
    labels = np.array(["no", "yes"])
    return labels[true], labels[(p1 > 0.5).astype(int)], np.stack([1 - p1, p1], axis=1)


@pytest.mark.parametrize(
    "batches", [[(0, 3000)], [(0, 1000), (1000, 3000)], [(0, 1), (1, 2999), (2999, 3000)]]
)
def test_class_tally_gives_scikit_learns_metrics_however_the_rows_come(batches):
    y_true, y_pred, probs = _two_classes()
    tally = ClassTally(["no", "yes"])
    for a, b in batches:
        tally.update_state(y_true[a:b], y_pred[a:b], probs[a:b])
    got = tally.result({"loss": 0.5})
    assert set(got) == CLASSIFICATION_KEYS
    assert got["loss"] == 0.5
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), rel=1e-12)
    assert got["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), rel=1e-12)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y_true == "yes", probs[:, 1]), abs=1e-5)
    assert got["confusion_matrix"] == {
        "labels": ["no", "yes"],
        "matrix": confusion_matrix(y_true, y_pred).tolist(),
    }
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=["no", "yes"])
    assert got["per_class"]["yes"] == pytest.approx(
        {"precision": precision[1], "recall": recall[1], "f1": f1[1], "support": support[1]}, rel=1e-12
    )


def test_class_tallies_of_two_workers_merge_into_the_whole_sets():
    y_true, y_pred, probs = _two_classes()
    whole, first, second = ClassTally(["no", "yes"]), ClassTally(["no", "yes"]), ClassTally(["no", "yes"])
    whole.update_state(y_true, y_pred, probs)
    first.update_state(y_true[:1200], y_pred[:1200], probs[:1200])
    second.update_state(y_true[1200:], y_pred[1200:], probs[1200:])
    first.merge([first.state(), second.state()])
    assert first.result() == whole.result()


def test_three_classes_have_no_auc_and_a_class_never_predicted_scores_zero():
    tally = ClassTally([1, 2, 3])
    tally.update_state(np.array([1, 2, 3, 3]), np.array([1, 2, 2, 2]))
    got = tally.result()
    assert "roc_auc" not in got
    assert got["per_class"]["3"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert got["confusion_matrix"] == {"labels": [1, 2, 3], "matrix": [[1, 0, 0], [0, 1, 0], [0, 2, 0]]}
    assert got["f1_macro"] == pytest.approx(
        f1_score([1, 2, 3, 3], [1, 2, 2, 2], average="macro", zero_division=0)
    )


def test_a_label_that_is_no_class_is_refused():
    with pytest.raises(ValueError, match=r"'maybe' is not one of the classes \['no', 'yes'\]"):
        ClassTally(["no", "yes"]).update_state(["no", "maybe"], ["no", "no"])


def test_regression_tally_gives_scikit_learns_and_keras_metrics_however_the_rows_come():
    rng = np.random.default_rng(1)
    y, predicted, last = rng.normal(5, 2, 3000), rng.normal(5, 2, 3000), rng.normal(5, 2, 3000)
    whole = RegressionTally("mse", ["mae", "mean_absolute_percentage_error"])
    whole.update_state(y, predicted, last)
    parts = [RegressionTally("mse", ["mae", "mean_absolute_percentage_error"]) for _ in range(2)]
    for part, (a, b) in zip(parts, ((0, 10), (10, 3000)), strict=True):
        part.update_state(y[a:b], predicted[a:b], last[a:b])
    parts[0].merge([p.state() for p in parts])
    expected = {
        "loss": mean_squared_error(y, predicted),
        "mae": mean_absolute_error(y, predicted),
        "rmse": np.sqrt(mean_squared_error(y, predicted)),
        "r2": r2_score(y, predicted),
        "mean_absolute_percentage_error": 100 * np.mean(np.abs((y - predicted) / y)),
        "naive_mae": mean_absolute_error(y, last),
    }
    assert whole.result() == pytest.approx(expected, rel=1e-5)
    merged = parts[0].result()
    assert {k: v for k, v in merged.items() if k != "mean_absolute_percentage_error"} == pytest.approx(
        {k: v for k, v in expected.items() if k != "mean_absolute_percentage_error"}, rel=1e-9
    )


def test_regression_edge_cases_match_scikit_learn():
    constant = RegressionTally()
    constant.update_state([3.0, 3.0], [3.0, 3.0])
    assert constant.result()["r2"] == r2_score([3.0, 3.0], [3.0, 3.0]) == 1.0
    off = RegressionTally()
    off.update_state([3.0, 3.0], [2.0, 4.0])
    assert off.result()["r2"] == r2_score([3.0, 3.0], [2.0, 4.0]) == 0.0
    one = RegressionTally()
    one.update_state([1.0], [2.0])
    assert np.isnan(one.result()["r2"])
    diverged = RegressionTally("mse")
    diverged.update_state([1.0, 2.0], [np.inf, 2.0])
    got = diverged.result()
    assert (got["mae"], got["rmse"], got["r2"]) == (np.inf, np.inf, -np.inf)


def test_moments_merge_in_any_order_and_skip_missing_values():
    rng = np.random.default_rng(2)
    values = rng.normal(10, 3, (1000, 2))
    values[::7, 1] = np.nan
    first, second = Moments(2), Moments(2)
    first.add(values[:300])
    second.add(values[300:])
    first.fold(second)
    assert first.n.tolist() == [1000, np.isfinite(values[:, 1]).sum()]
    assert first.mean == pytest.approx(np.nanmean(values, axis=0), rel=1e-12)
    assert first.m2 / first.n == pytest.approx(np.nanvar(values, axis=0), rel=1e-9)
    assert first.low.tolist() == np.nanmin(values, axis=0).tolist()
