"""What a finished (or stopped) search holds, for people: trials.csv, best.yaml and the plots.

>>> summary = summarize(search)      # rows of trials.csv, the best trial, plot notes
"""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import optuna
import optuna.visualization.matplotlib as views
import pandas as pd

from dlcli.config import search
from dlcli.tune.tune import Search, retried_numbers, study
from dlcli.utils.files import write_atomic


def summarize(s: Search) -> dict:
    """trials.csv, best.yaml and the plots; returns the trials (rows) and the best one."""

    study_ = study(s)
    trials = study_.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    rows = []
    for t in trials:
        if t.state == optuna.trial.TrialState.WAITING:
            continue
        state = "lost, asked again" if t.number in retried else STATES.get(t.state.name, t.state.name.lower())
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append(
            {
                "trial": t.number,
                **{_column(p.path, s.space): t.params.get(p.path) for p in s.space},
                s.metric: t.value,
                "epochs": t.user_attrs.get("epochs"),
                "state": state,
                "duration_s": round(duration, 1) if duration is not None else None,
                "run": t.user_attrs.get("run_dir"),
            }
        )
    write_atomic(s.folder / "trials.csv", pd.DataFrame(rows).to_csv(index=False))
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = None
    if complete:
        best = study_.best_trial
        source = Path(best.user_attrs["run_dir"]) / "config.yaml"
        shutil.copyfile(source, s.folder / "best.yaml")
    notes = _plots(study_, s.folder / "plots") if complete else []
    finished = sum(1 for r in rows if r["state"] in ("completed", "pruned", "failed"))
    return {"rows": rows, "best": best, "finished": finished, "notes": notes}


STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def _column(path: str, space: list[search.Param]) -> str:
    """A searched key's column in the table: the fewest last parts of its path that name it alone
    (units; 0.Dense.units where two layers' units are searched)."""
    parts = path.split(".")
    for n in range(1, len(parts) + 1):
        tail = ".".join(parts[-n:])
        if sum(p.path == tail or p.path.endswith("." + tail) for p in space) == 1:
            return tail
    return path


def _plots(study_, folder: Path) -> list[str]:
    """Optuna's matplotlib plots; a plot that needs more trials than there are is left out, said."""
    matplotlib.use("Agg")

    folder.mkdir(exist_ok=True)
    notes = []
    for name, draw in (
        ("history", views.plot_optimization_history),
        ("importances", views.plot_param_importances),
        ("parallel_coordinates", views.plot_parallel_coordinate),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib views experimental
                axes = draw(study_)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.tight_layout()
            image = io.BytesIO()
            figure.savefig(image, format="png", dpi=100)
            plt.close(figure)
            write_atomic(folder / f"{name}.png", image.getvalue())
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            notes.append(f"plots/{name}.png: not drawn ({exc})")
    return notes
