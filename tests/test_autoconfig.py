"""`dlcli init --data` and `dlcli train DATA --target`: a first config written from the data, each
column's role with its reason, the task from the target, reading decided as `dlcli train` reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, fails, latest_run, read_json

from dlcli.autoconfig import draft, profile
from dlcli.config.config import load_config, load_config_text

DATA = ROOT / "data"


def _table(tmp_path: Path, frame: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    return path


def _passengers(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "PassengerId": np.arange(1, rows + 1),
            "Name": [f"Smith, Mr. John {i} of the ship" for i in range(rows)],
            "Sex": rng.choice(["male", "female"], rows),
            "Age": np.where(rng.random(rows) < 0.2, np.nan, rng.integers(1, 80, rows)),
            "Ticket": [f"A/5 {1000 + i}" for i in range(rows)],
            "Cabin": [f"C{i}" if i % 4 == 0 else None for i in range(rows)],
            "Boat": ["one"] * rows,
            "Survived": rng.integers(0, 2, rows),
        }
    )


def test_each_column_gets_a_role_and_the_reason(tmp_path):
    found = profile.read(_table(tmp_path, _passengers()))
    got = {name: (c.role, c.reason) for name, c in found.columns.items()}
    assert got == {
        "PassengerId": ("drop", "a row number or id: 1 to 60, each once, in order"),
        "Name": ("text", "free text: 60 distinct values of 7 words on average"),
        "Sex": ("categorical", "2 categories"),
        "Age": ("numeric", got["Age"][1]),
        "Ticket": ("drop", "60 distinct values in 60 rows: an identifier, not a category"),
        "Cabin": ("drop", "45 of 60 values missing"),
        "Boat": ("drop", "the same value in every row ('one')"),
        "Survived": ("numeric", "numbers, 2 distinct values"),
    }
    missing = int(found.frame["Age"].isna().sum())
    assert got["Age"][1].endswith(f", {missing} missing (filled with the median)")


def test_dates_image_paths_and_a_headerless_file_with_stray_quotes(tmp_path):
    series = profile.read(DATA / "tiny_series.csv")
    assert series.columns["date"].role == "time"
    assert series.columns["date"].reason == "dates, 2020-01-01 to 2020-10-26: the time column (sorted on)"
    photos = profile.read(DATA / "tiny_photos.csv")
    assert photos.columns["photo"].role == "image"
    lines = ['ham\t"see you soon', "spam\tWIN a prize now", 'ham\tok "fine" then'] * 10
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    found = profile.read(tmp_path / "m.tsv")
    assert found.rows == 30 and list(found.frame.columns) == ["column_1", "column_2"]
    assert found.reading == {"header": False, "quoting": "none"}
    assert found.why == {
        "header": "the first row is data: 'ham' recurs 20 times in its column; columns named column_1 … column_2",
        "quoting": "stray double quotes join lines when read as quotes: 30 rows, not 10",
    }


@pytest.mark.parametrize(
    ("values", "kind", "reason"),
    [
        (["yes", "no", "no"] * 10, "classification", "2 classes: no (20 rows), yes (10 rows)"),
        ([0, 1, 2] * 10, "classification", "3 classes: 0 (10 rows), 1 (10 rows), 2 (10 rows)"),
        (list(np.linspace(0, 1, 30)), "regression", "numbers, 30 distinct values from 0 to 1"),
    ],
    ids=["labels", "codes", "numbers"],
)
def test_the_task_follows_the_target(tmp_path, values, kind, reason):
    found = profile.read(_table(tmp_path, pd.DataFrame({"x": np.arange(30.0) % 7, "y": values})))
    task = draft.task_of(found, "y")
    assert (task.kind, task.reason) == (kind, reason)


def test_the_written_config_says_why_and_validates(tmp_path):
    data = _table(tmp_path, _passengers(200))
    text = draft.draft(profile.read(data), "Survived", tmp_path / "p.yaml")
    lines = {line.split("#")[0].strip(): line.split("# ")[-1] for line in text.splitlines() if " # " in line}
    assert lines["- Ticket"] == "200 distinct values in 200 rows: an identifier, not a category"
    assert lines["target: Survived"].startswith("classification: 2 classes: 0 (")
    raw = yaml.safe_load(text)
    assert raw["data"]["drop"] == ["PassengerId", "Ticket", "Cabin", "Boat"]
    assert raw["preprocessing"]["text"]["columns"] == ["Name"]
    assert raw["loss"] == "binary_crossentropy" and raw["model"]["layers"][-1]["Dense"]["units"] == 1
    config = load_config_text(text, tmp_path / "p.yaml")
    assert config.data.path == str(data) and config.task == "classification"


def test_unbalanced_classes_are_weighted_and_a_series_is_split_in_time_order(tmp_path):
    frame = pd.DataFrame({"x": np.arange(100.0), "y": ["rare"] * 10 + ["common"] * 90})
    text = draft.draft(profile.read(_table(tmp_path, frame)), "y", tmp_path / "c.yaml")
    assert "  class_weight: balanced                # unbalanced: class rare is 10% of the rows" in text
    series = draft.draft(profile.read(DATA / "tiny_series.csv"), "value", tmp_path / "s.yaml")
    raw = yaml.safe_load(series)
    assert raw["data"]["time_column"] == "date" and raw["data"]["split"]["shuffle"] is False
    assert raw["preprocessing"]["window"] == {"length": 6, "horizon": 1} and raw["loss"] == "mse"


def test_dates_beside_a_category_target_are_dropped_with_the_reason(tmp_path):
    days = pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d")
    found = profile.read(
        _table(tmp_path, pd.DataFrame({"day": days, "x": np.arange(50.0), "y": ["a", "b"] * 25}))
    )
    raw = yaml.safe_load(draft.draft(found, "y", tmp_path / "d.yaml"))
    assert raw["data"]["drop"] == ["day"] and "time_column" not in raw["data"]
    assert found.columns["day"].role == "time"  # the profile itself is left as read


def test_without_a_target_the_candidates_are_listed_and_nothing_is_written(tmp_path, cli):
    data = _table(tmp_path, _passengers())
    err = fails(cli, "init", "--data", str(data), raw=True)
    assert err.startswith(
        f"error: {data}: which column should the model predict? Give it with --target COLUMN;"
    )
    assert "  Sex (2 classes: female (" in err and "Survived (2 classes: 0 (" in err
    assert "PassengerId" not in err and "Name" not in err  # a row number and free text are no targets
    assert not list(tmp_path.glob("*.yaml"))
    assert "has no column 'Survivd'; did you mean 'Survived'?" in fails(
        cli, "init", "--data", str(data), "--target", "Survivd"
    )


def test_init_writes_beside_and_never_over_a_file(tmp_path, cli):
    data = _table(tmp_path, _passengers())
    code, out, err = cli("init", "--data", "t.csv", "--target", "Survived")
    assert code == 0, err
    assert out.strip() == "wrote t.yaml from t.csv; read its comments, then: dlcli train t.yaml"
    assert load_config(tmp_path / "t.yaml").data.path == str(data)
    assert "init: t.yaml already exists; choose another path or pass --force" in fails(
        cli, "init", "--data", "t.csv", "--target", "Survived"
    )
    assert "init: t.csv: a config's name ends in .yaml; name it t.yaml" in fails(
        cli, "init", "--data", "t.csv", "--target", "Survived", "t.csv", "--force"
    )
    assert data.read_text().startswith("PassengerId,")


def test_train_on_a_data_file_writes_trains_and_keeps_the_config(tmp_path, cli):
    code, _, err = cli(
        "train", str(DATA / "tiny_regression.csv"), "--target", "price", "-q", "-o", "train.epochs=2"
    )
    assert code == 0, err
    run = latest_run(tmp_path, "tiny-regression")
    kept = (run / "init.yaml").read_text()
    assert kept.startswith("# Written by `dlcli train tiny_regression.csv --target price` from 240 rows")
    assert yaml.safe_load(kept)["data"]["path"] == str(DATA / "tiny_regression.csv")
    assert read_json(run / "metrics.json")["test"]["r2"] > 0  # trained as written, with its 2 epochs
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2
    err = fails(cli, "train", str(DATA / "tiny_regression.csv"))
    assert "which column should the model predict? Give it with --target COLUMN" in err


PROBE = """
import sys
from dlcli.cli import cli
for argv in (["init", "--data", sys.argv[1], "--target", "label", "w.yaml"], ["validate", "w.yaml"]):
    try:
        cli.app(argv, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
print(" ".join(m for m in ("tensorflow", "keras", "sklearn", "matplotlib") if m in sys.modules) or "none")
"""


def test_init_from_data_imports_no_tensorflow(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(DATA / "tiny_binary.csv")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "none"
    assert (tmp_path / "w.yaml").is_file()


WRITTEN = sorted((ROOT / "configs" / "written").glob("*.yaml"))


@pytest.mark.parametrize("path", WRITTEN, ids=[p.stem for p in WRITTEN])
def test_the_written_examples_are_what_init_writes_today(path):
    """configs/written/ (benchmarks/init_vs_hand.py --write-configs): each example config the README
    lists as written from its data is exactly what `dlcli init --data` writes for it now."""
    import os
    import re

    text = path.read_text()
    name, target = re.match(r"# Written by `dlcli init --data (\S+) --target (\S+)`", text).groups()
    where = yaml.safe_load(text)["data"]["path"]
    if where.startswith("../../data/"):
        data = ROOT / "data" / name
    elif os.environ.get("DLCLI_DATA_DIR") and (Path(os.environ["DLCLI_DATA_DIR"]) / name).is_file():
        data = Path(os.environ["DLCLI_DATA_DIR"]) / name
    else:
        pytest.skip(f"{name}: the shared data set is not in DLCLI_DATA_DIR")
    assert draft.draft(profile.read(data), target, path, where) == text


def test_a_folder_of_class_folders_gets_a_small_convnet(tmp_path, cli):
    code, out, err = cli("init", "--data", str(DATA / "tiny_images"), "--target", "label", "photos.yaml")
    assert code == 0, err
    raw = yaml.safe_load((tmp_path / "photos.yaml").read_text())
    assert raw["data"]["path"] == str(DATA / "tiny_images") and raw["data"]["target"] == "label"
    assert raw["preprocessing"]["image"]["size"] == [64, 64] and "column" not in raw["preprocessing"]["image"]
    assert [next(iter(layer)) for layer in raw["model"]["layers"]][:2] == ["Conv2D", "MaxPooling2D"]
    assert raw["loss"] == "binary_crossentropy" and raw["model"]["layers"][-1]["Dense"] == {
        "units": 1,
        "activation": "sigmoid",
    }
    code, out, err = cli("validate", "photos.yaml")
    assert code == 0, err
