"""The pictures in every run's `plots/`: learning curves, confusion matrix, predicted against actual,
residuals and the forecast. matplotlib is imported only here, only when plotting; figures are made
without pyplot (PNGs through Agg), so they hold no global state and may be drawn in a thread.

Each function takes plain arrays and writes one PNG atomically; `write_run_plots` picks the ones that
fit the task. A plot that cannot be drawn is reported as a warning: it never fails a trained run.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from dlcli.utils.files import write_atomic

DPI = 100
#: Columns of history.csv that are not learning curves.
NOT_CURVES = {"epoch", "learning_rate", "lr"}


def _figure(**kwargs):
    """A matplotlib Figure of its own, outside pyplot: no global state, so a plot may be drawn in a
    thread while the main one scores (and no GUI backend is ever chosen)."""
    return Figure(**kwargs)


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    return path


def curves(history: pd.DataFrame, path: Path, best_epoch: int | None, monitor: str | None) -> Path:
    """Loss and each metric per epoch, train against validation, the best epoch marked."""
    names = [c for c in history.columns if c not in NOT_CURVES and not c.startswith("val_")]
    names += [c[4:] for c in history.columns if c.startswith("val_") and c[4:] not in names]
    epochs = history["epoch"].to_numpy()
    fig = _figure(figsize=(4.2 * len(names), 3.4))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for column, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "-s")):
            if column in history:
                ax.plot(epochs, history[column].to_numpy(), style, markersize=3, label=label)
        if best_epoch is not None:
            ax.axvline(
                best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}"
            )
            if monitor in (name, f"val_{name}") and monitor in history:
                value = history.loc[history["epoch"] == best_epoch, monitor]
                if len(value):
                    ax.plot([best_epoch], [value.iloc[0]], "*", color="crimson", markersize=12)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Learning curves (best by {monitor})" if monitor else "Learning curves")
    return _save(fig, path)


def confusion(y_true: Any, y_pred: Any, labels: list, path: Path, split: str) -> Path:
    """Counts and row-normalised shares (recall per true class), side by side."""

    size = min(3 + 0.3 * len(labels), 12)
    fig = _figure(figsize=(2 * size + 0.5, size), layout="constrained")
    axes = fig.subplots(1, 2)
    names = [str(label) for label in labels]
    for ax, normalize, title, fmt in (
        (axes[0], None, "counts", "d"),
        (axes[1], "true", "share of each true class", ".2f"),
    ):
        ConfusionMatrixDisplay.from_predictions(
            y_true,
            y_pred,
            labels=labels,
            display_labels=names,
            normalize=normalize,
            values_format=fmt,
            cmap="Blues",
            colorbar=False,
            ax=ax,
            text_kw={"fontsize": 8 if len(labels) > 6 else 10},
        )
        ax.set_title(title)
    fig.suptitle(f"Confusion matrix, {split} split ({len(y_true)} rows)")
    return _save(fig, path)


def predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray, path: Path, split: str, unit: str) -> Path:

    fig = _figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    alpha = float(np.clip(300 / max(len(y_true), 1), 0.15, 0.9))
    ax.scatter(y_true, y_pred, s=10, alpha=alpha, edgecolors="none")
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="crimson", linewidth=1, label="predicted = actual")
    ax.set_xlabel(f"actual {unit}")
    ax.set_ylabel(f"predicted {unit}")
    _readable(ax.xaxis, ax.yaxis, scale=high - low)
    ax.set_title(f"Predicted against actual, {split} split ({len(y_true)} rows)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def residuals(y_true: np.ndarray, y_pred: np.ndarray, path: Path, split: str, unit: str) -> Path:

    error = y_true - y_pred
    fig = _figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    alpha = float(np.clip(300 / max(len(error), 1), 0.15, 0.9))
    left.scatter(y_pred, error, s=10, alpha=alpha, edgecolors="none")
    left.axhline(0, color="crimson", linewidth=1)
    left.set_xlabel(f"predicted {unit}")
    left.set_ylabel("actual − predicted")
    left.set_title("Residuals against prediction")
    _readable(left.xaxis, left.yaxis, right.xaxis, scale=float(y_pred.max() - y_pred.min()))
    left.grid(alpha=0.3)
    right.hist(error, bins=min(50, max(10, len(error) // 10)), color="tab:blue", alpha=0.8)
    right.axvline(0, color="crimson", linewidth=1)
    right.set_xlabel("actual − predicted")
    right.set_ylabel("rows")
    right.set_title(f"mean {error.mean():.4g}, std {error.std():.4g}")
    fig.suptitle(f"Residuals, {split} split")
    return _save(fig, path)


def forecast(
    when: Any, y_true: np.ndarray, y_pred: np.ndarray, path: Path, split: str, unit: str, horizon: int
) -> Path:
    """The split's actual series against the model's forecasts, each at the time it forecasts."""
    fig = _figure(figsize=(11, 4))
    ax = fig.subplots()
    ax.plot(when, y_true, linewidth=1.2, label="actual")
    ax.plot(when, y_pred, linewidth=1.2, label=f"forecast ({horizon} step{'s' if horizon > 1 else ''} ahead)")
    ax.set_ylabel(unit)
    ax.set_title(f"Forecast over the {split} period ({len(y_true)} steps)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    return _save(fig, path)


def folds(splits: dict[str, dict], path: Path) -> list[str]:
    """Cross-validation: the headline metric of each fold, validation and test, the mean dashed."""
    name = next(
        (
            m
            for m in ("accuracy", "r2", "mae", "loss")
            if m in splits.get("test", splits.get("validation", {}))
        ),
        None,
    )
    if name is None:
        return []

    def draw() -> Path:
        fig = _figure(figsize=(5.5, 3.4))
        ax = fig.subplots()
        for split, marker in (("validation", "o"), ("test", "s")):
            values = splits.get(split, {}).get(name)
            if values:
                numbers = range(1, len(values["folds"]) + 1)
                line = ax.plot(
                    numbers,
                    values["folds"],
                    marker,
                    label=f"{split} (mean {values['mean']:.4g} ± {values['std']:.2g})",
                )
                ax.axhline(values["mean"], color=line[0].get_color(), linestyle="--", linewidth=1)
        ax.set_xlabel("fold")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{name} per fold")
        ax.legend(fontsize="small")
        return _save(fig, path)

    return _guarded(draw)


def learning_curves(run_dir: Path, monitor: str | None, best_epoch: int | None) -> list[str]:
    """plots/curves.png from history.csv; warnings instead of errors."""

    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    return _guarded(lambda: curves(pd.read_csv(path), run_dir / "plots" / "curves.png", best_epoch, monitor))


def write_run_plots(
    run_dir: Path,
    prep,
    monitor: str | None,
    best_epoch: int | None,
    split: str,
    y_true: Any,
    y_pred: Any,
    when: Any = None,
) -> list[str]:
    """Every plot that fits the run's task, from one split's targets and predictions; several
    targets: each output's, its name ending the file's (`confusion_matrix_<output>.png`)."""

    warnings = learning_curves(run_dir, monitor, best_epoch)
    if prep.outputs is None:
        return warnings + _prediction_plots(run_dir / "plots", prep, split, y_true, y_pred, when)
    for name, view in prep.outputs.items():
        warnings += _prediction_plots(
            run_dir / "plots", view, split, y_true[name], y_pred[name], when, f"_{name}"
        )
    return warnings


def _prediction_plots(folder: Path, prep, split: str, y_true, y_pred, when, suffix: str = "") -> list[str]:
    if prep.task == "classification":
        labels = list(prep.target_encoder.classes_)
        return _guarded(
            lambda: confusion(y_true, y_pred, labels, folder / f"confusion_matrix{suffix}.png", split)
        )
    actual, predicted = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    finite = np.isfinite(predicted)
    if not finite.all():
        return [f"plots: {int((~finite).sum())} predictions are not finite; no prediction plots"]
    unit = prep.target_encoder.column or "target"
    warnings = _guarded(
        lambda: predicted_vs_actual(
            actual, predicted, folder / f"predicted_vs_actual{suffix}.png", split, unit
        )
    )
    warnings += _guarded(lambda: residuals(actual, predicted, folder / f"residuals{suffix}.png", split, unit))
    if prep.windowed:
        steps = np.arange(len(actual)) if when is None else _times(when)
        horizon = prep.window["horizon"]
        warnings += _guarded(
            lambda: forecast(steps, actual, predicted, folder / "forecast.png", split, unit, horizon)
        )
    return warnings


def _readable(*axes, scale: float) -> None:
    """Large values as 150k, 2.5M rather than 150000 (which collide along an axis)."""
    if abs(scale) >= 1e4:
        for axis in axes:
            axis.set_major_formatter(EngFormatter())


def _times(values: Any) -> Any:
    """Dates as dates (a CSV's time column is text), anything else as it is."""

    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        parsed = pd.to_datetime(pd.Series(values), errors="coerce")
        if parsed.notna().all():
            return parsed.to_numpy()
    return values


def _guarded(draw) -> list[str]:
    """Draw one plot; a failure becomes a warning, since the run itself succeeded."""
    try:
        path = draw()
    except Exception as exc:  # noqa: BLE001 - a picture must not fail a finished run
        return [f"plots: could not draw it ({type(exc).__name__}: {exc})"]
    return [] if path else ["plots: nothing drawn"]
