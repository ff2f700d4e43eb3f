"""dlcli/training/: which way a monitored quantity goes (Keras decides), the commit state a resumed
run reads, called directly."""

from __future__ import annotations

import pytest

from dlcli.training import direction, state
from dlcli.utils.errors import ConfigError, RunError
from dlcli.utils.files import write_json


@pytest.mark.parametrize(
    ("metrics", "monitor", "expected"),
    [
        ([], "val_loss", "min"),
        (["accuracy"], "val_accuracy", "max"),
        (["auc", "mae"], "val_auc", "max"),
        (["auc", "mae"], "mae", "min"),
        (["r2_score"], "val_r2_score", "max"),
        (["sparse_top_k_categorical_accuracy"], "val_sparse_top_k_categorical_accuracy", "max"),
    ],
)
def test_the_direction_of_a_configured_metric_is_keras_own(metrics, monitor, expected):
    assert direction.configured_direction(monitor) == expected  # `metrics`: what validate lets it name


def test_a_quantity_keras_cannot_judge_asks_for_search_direction():
    with pytest.raises(ConfigError) as caught:
        direction.configured_direction("val_crossentropy", "c.yaml:9:11: search.metric")
    assert str(caught.value) == (
        "c.yaml:9:11: search.metric: Keras cannot tell whether val_crossentropy should go up or down; set "
        "search.direction to maximize or minimize"
    )


def test_improved_follows_the_direction_and_takes_any_first_value():
    assert state.improved("max", 0.5, None) and state.improved("min", 0.5, None)
    assert state.improved("max", 0.6, 0.5) and not state.improved("max", 0.5, 0.5)
    assert state.improved("min", 0.4, 0.5) and not state.improved("min", 0.6, 0.5)


def test_the_resume_point_is_read_back_and_a_broken_one_named(tmp_path):
    assert state.read_resume(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    resume = tmp_path / "checkpoints" / state.RESUME_FILE
    write_json(
        tmp_path / "checkpoints" / state.RESUME_FILE,
        {"epoch": 3, "checkpoint": "resume-3.keras", "monitor": "val_loss", "direction": "min", "best": 0.2},
    )
    with pytest.raises(RunError) as caught:  # the commit order: the checkpoint before resume.json
        state.read_resume(tmp_path)
    assert str(caught.value) == f"{resume}: names resume-3.keras, which is missing"
    (tmp_path / "checkpoints" / "resume-3.keras").write_bytes(b"")
    found = state.read_resume(tmp_path)
    assert (found.epoch, found.best, found.direction, found.stopped_early) == (3, 0.2, "min", False)
    resume.write_text('{"epoch": 3')
    with pytest.raises(RunError, match=r"resume.json: unreadable resume state \("):
        state.read_resume(tmp_path)


def test_history_is_cut_back_to_the_committed_epochs(tmp_path):
    rows = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    state.write_history(tmp_path / "history.csv", rows)
    kept = state.truncate_history(tmp_path, 2)
    assert [r["epoch"] for r in kept] == [1, 2]
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == "epoch,loss"


def test_the_best_checkpoint_is_the_improving_epochs_own_file(iris_run):
    """An epoch that improves the monitor links best.keras to its checkpoint instead of saving the
    model a second time (configs/ci/iris.yaml's best epoch is its last, 3)."""
    import os

    from dlcli.utils.files import read_json

    checkpoints = iris_run / "checkpoints"
    assert read_json(checkpoints / "resume.json")["best_epoch"] == 3
    best, last = os.stat(checkpoints / "best.keras"), os.stat(checkpoints / "last.keras")
    assert best.st_ino == last.st_ino and best.st_nlink >= 2
