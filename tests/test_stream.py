"""Streamed tables (data.stream): the bounded statistics, hash splits, training in a (seed, epoch)
order, and streamed evaluate and predict, on tables made by benchmarks/make_table.py (a known
relationship) cut into many small units (DLCLI_UNIT_BYTES)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, ROOT, fails, forked, ok, read_json

CONFIG = CONFIGS / "ci" / "stream.yaml"
SMALL_UNITS = {"DLCLI_UNIT_BYTES": "40000"}  # about 270 rows per unit: a 6,000-row file is 23 units


def _make(out: Path, rows: int) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--rows", str(rows), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """The same 6,000 rows as one CSV, a folder of two Parquet files (row groups of 500) and JSON lines."""
    folder = tmp_path_factory.mktemp("tables")
    csv = _make(folder / "table.csv", 6000)
    frame = pd.read_csv(csv)
    (folder / "parts").mkdir()
    frame.iloc[:3500].to_parquet(folder / "parts" / "part-0.parquet", row_group_size=500, index=False)
    frame.iloc[3500:].to_parquet(folder / "parts" / "part-1.parquet", row_group_size=500, index=False)
    frame.to_json(folder / "table.jsonl", orient="records", lines=True)
    return folder


def _config(folder: Path, **data) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["data"].update(data)
    path = folder / f"stream-{len(list(folder.glob('stream-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(start, config: Path, cwd: Path, *overrides: str) -> Path:
    before = set((cwd / "runs").glob("ci-stream/2*"))
    proc = forked(start, "train", str(config), "--run-dir", "runs", *overrides, cwd=cwd, env=SMALL_UNITS)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (run,) = set((cwd / "runs").glob("ci-stream/2*")) - before
    return run


@pytest.fixture(scope="module")
def streamed_run(tables, dlcli_fork) -> Path:
    return _train(dlcli_fork, _config(tables, path="table.csv"), tables)


def test_a_streamed_csv_trains_in_many_units_and_learns_the_relationship(streamed_run):
    record = read_json(streamed_run / "run.json")
    assert record["data"]["stream"]["units"] >= 20
    rows = record["data"]["rows"]
    assert sum(rows.values()) == 6000 and set(rows) == {"train", "validation", "test"}
    assert 0.1 < rows["test"] / 6000 < 0.2  # split.test 0.15, by the hash of the id
    metrics = read_json(streamed_run / "metrics.json")
    # the generator's best possible accuracy on these rows is 0.79; the majority class is 0.52
    assert metrics["test"]["accuracy"] > 0.7
    assert set(metrics["test"]["per_class"]) == {"0", "1"} and 0.7 < metrics["test"]["roc_auc"] <= 1
    assert (streamed_run / "plots" / "confusion_matrix.png").is_file()


def test_csv_parquet_folder_jsonl_and_in_memory_give_the_same_splits_and_statistics(
    tables, streamed_run, dlcli_fork
):
    runs = {"csv": streamed_run}
    runs["parquet"] = _train(dlcli_fork, _config(tables, path="parts"), tables, "-o", "train.epochs=1")
    runs["jsonl"] = _train(dlcli_fork, _config(tables, path="table.jsonl"), tables, "-o", "train.epochs=1")
    runs["memory"] = _train(
        dlcli_fork, _config(tables, path="table.csv", stream=False), tables, "-o", "train.epochs=1"
    )
    rows = {name: read_json(run / "run.json")["data"]["rows"] for name, run in runs.items()}
    assert len({json.dumps(r, sort_keys=True) for r in rows.values()}) == 1, rows
    states = {name: read_json(run / "preprocessing.json") for name, run in runs.items()}
    reference = states["memory"]
    for name, state in states.items():
        for key in ("statistics_", "center_", "scale_"):
            np.testing.assert_allclose(
                state["numeric"][key], reference["numeric"][key], rtol=1e-9, err_msg=name
            )
        assert state["categorical"] == reference["categorical"], name
        assert state["target"] == reference["target"], name
    assert "stream" not in read_json(runs["memory"] / "run.json")["data"]


def test_evaluate_predict_and_explain_stream_and_agree_with_training(
    streamed_run, tables, cli, tmp_path, monkeypatch
):
    code, out, err = cli("evaluate", str(streamed_run), "--json")
    assert code == 0, err
    trained = read_json(streamed_run / "metrics.json")["test"]
    assert json.loads(out)["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-12)
    assert json.loads(out)["loss"] == pytest.approx(trained["loss"], rel=1e-5)
    for source, name in ((tables / "table.csv", "p.csv"), (tables / "parts", "p.parquet")):
        code, out, err = cli("predict", str(streamed_run), "--input", str(source), "--output", name)
        assert code == 0, err
        assert (
            f"wrote 6000 predictions (with TensorFlow; no light model: $DLCLI_LIGHT_MODEL is off) → {name}"
            in out
        )
        assert "predict: 6,000 rows at" in out + err
    from_csv, from_parquet = pd.read_csv(tmp_path / "p.csv"), pd.read_parquet(tmp_path / "p.parquet")
    assert from_csv["id"].tolist() == list(range(6000))
    np.testing.assert_allclose(from_csv["probability_1"], from_parquet["probability_1"], atol=1e-6)
    assert set(from_csv["prediction"]) <= {0, 1}
    assert not list(tmp_path.glob(".*.partial"))  # written to a temporary file, renamed at the end
    # the same numbers as the model on the whole table at once (in this process: TensorFlow is here)
    from dlcli.evaluation import with_tensorflow

    run = with_tensorflow.load_run(streamed_run)
    outputs = run.model.predict(run.prep.features(pd.read_csv(tables / "table.csv")), verbose=0)
    assert float(np.abs(outputs[:, 0] - from_csv["probability_1"].to_numpy()).max()) < 1e-6
    # explain reads a bounded sample of the streamed test split, and says so
    import shutil

    from dlcli.explain import explain

    monkeypatch.chdir(tables)
    found = explain.explain(shutil.copytree(streamed_run, tmp_path / "run"), repeats=2, sample=300)
    assert found["rows"] == 300
    assert found["notes"] == ["a streamed run: explained on the first 300 rows of its test split"]
    used = read_json(streamed_run / "run.json")["data"]["columns"]
    assert {c["column"] for c in found["columns"]} == {*used["numeric"], *used["categorical"]}


def test_a_killed_streamed_run_resumes_to_the_uninterrupted_runs_weights(tables, dlcli_fork, tmp_path):
    from test_resume import _kill_after_epoch, _same_weights

    config = _config(tables, path=str(tables / "table.csv"))
    three = ["-o", "train.epochs=3", "-o", "train.batch_size=16", "-o", "train.plots=false"]
    for folder in ("whole", "killed"):
        (tmp_path / folder).mkdir()
    whole = _train(dlcli_fork, config, tmp_path / "whole", *three)
    proc = dlcli_fork(
        "train", str(config), "--run-dir", "runs", *three, cwd=tmp_path / "killed", env=SMALL_UNITS
    )
    _kill_after_epoch(proc, tmp_path / "killed" / "runs", 1)
    proc.wait()
    (killed,) = (tmp_path / "killed" / "runs").glob("ci-stream/2*")
    assert read_json(killed / "checkpoints" / "resume.json")["epoch"] < 3
    ok(forked(dlcli_fork, "train", "--resume", str(killed), "-q", cwd=tmp_path, env=SMALL_UNITS))
    pd.testing.assert_frame_equal(pd.read_csv(killed / "history.csv"), pd.read_csv(whole / "history.csv"))
    assert _same_weights(killed / "model.keras", whole / "model.keras")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"split": {"validation": 0.1, "test": 0.15, "key": "idd"}},
            "data.split.key: column 'idd' not found in {path} (it has id, x_1",
        ),
        ({"path": "nothing-*.csv"}, "data.path: {folder}/nothing-*.csv: the pattern matches no file"),
        ({"sep": "whitespace"}, "data.sep: whitespace-separated files cannot be streamed"),
    ],
)
def test_streaming_mistakes_exit_2_with_the_key(tables, cli, data, message):
    config = _config(tables, **{"path": "table.csv", **data})
    text = fails(cli, "train", str(config))
    assert message.format(path=tables / "table.csv", folder=tables) in text


def test_a_number_column_with_text_further_down_names_the_file(tables, cli, tmp_path, monkeypatch):
    frame = pd.read_csv(tables / "table.csv")
    frame["x_5"] = frame["x_5"].astype(object)
    frame.loc[5000, "x_5"] = "oops"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    config = _config(tables, path=str(tmp_path / "bad.csv"))
    # in one piece, the column reads as text and the value check names the line
    text = fails(cli, "train", str(config))
    assert f"{tmp_path / 'bad.csv'}: column 'x_5' line 5002: 'oops'" in text
    # in many, the first piece fixed the column as numbers: the piece that holds the text is named
    monkeypatch.setenv("DLCLI_UNIT_BYTES", SMALL_UNITS["DLCLI_UNIT_BYTES"])
    text = fails(cli, "train", str(config))
    assert f"{tmp_path / 'bad.csv'}: cannot be read as delimited text (bytes " in text
    assert "CSV conversion error to double: invalid value 'oops'" in text
    assert "the first part of the data fixed this column as numbers, and this part holds text" in text


# ---- the bounded summaries, against what scikit-learn and NumPy compute on all the rows at once ----


def _chunks(values: np.ndarray, cuts=(0, 7, 300, 301, 2500, 4000)):
    edges = [*cuts, len(values)]
    return [values[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def test_running_moments_and_sample_equal_the_whole_columns():
    from dlcli.metrics.running import Moments, Sample

    rng = np.random.default_rng(0)
    values = rng.normal(1e6, 3.0, (5000, 3))  # a large mean: the naive sum of squares loses digits
    values[rng.random((5000, 3)) < 0.05] = np.nan
    moments, sample = Moments(3), Sample(3, size=10_000, seed=1)
    for i, chunk in enumerate(_chunks(values)):
        moments.add(chunk)
        sample.add(chunk, i)
    np.testing.assert_allclose(moments.mean, np.nanmean(values, axis=0), rtol=1e-14)
    np.testing.assert_allclose(moments.std(), np.nanstd(values, axis=0), rtol=1e-9)
    np.testing.assert_array_equal(moments.low, np.nanmin(values, axis=0))
    # a sample larger than the data holds all of it: its median is the exact one
    np.testing.assert_array_equal(np.nanmedian(sample.rows, axis=0), np.nanmedian(values, axis=0))
    small = Sample(3, size=1000, seed=1)
    for i, chunk in enumerate(_chunks(values)):
        small.add(chunk, i)
    assert len(small.rows) == 1000
    assert np.abs(np.nanmedian(small.rows, axis=0) - np.nanmedian(values, axis=0)).max() < 0.5  # std 3
    filled = moments.filled(np.zeros(3), 5000)  # as an imputer filling 0 leaves the columns
    np.testing.assert_allclose(filled.mean, np.nan_to_num(values).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(filled.std(), np.nan_to_num(values).std(axis=0), rtol=1e-9)


def test_summaries_of_two_workers_merge_into_one_readers():
    """shards.py's statistics: each worker summarizes its own chunks; folded together (in worker
    order) they are what one reader of every chunk keeps: the same sample, counts, moments."""
    from dlcli.metrics.running import Counts, Moments, Sample

    rng = np.random.default_rng(2)
    values = rng.normal(5.0, 2.0, (5000, 2))
    labels = rng.choice(list("abc"), 5000)
    chunks = list(zip(_chunks(values), _chunks(labels), strict=True))
    one = Moments(2), Sample(2, size=700, seed=4), Counts(capacity=10)
    workers = [(Moments(2), Sample(2, size=700, seed=4), Counts(capacity=10)) for _ in range(2)]
    for i, (x, text) in enumerate(chunks):
        for moments, sample, counts in (one, workers[i % 2]):
            moments.add(x)
            sample.add(x, i)  # keys from (seed, chunk): the same row, the same key, whoever reads it
            counts.add(pd.Series(text))
    merged = Moments(2), Sample(2, size=700, seed=4), Counts(capacity=10)
    for moments, sample, counts in workers:
        merged[0].fold(Moments.of(moments.arrays("m"), "m"))
        merged[1].fold(sample.keys, sample.rows)
        merged[2].fold(counts.pairs())
    np.testing.assert_allclose(merged[0].mean, one[0].mean, rtol=1e-13)
    np.testing.assert_allclose(merged[0].std(), one[0].std(), rtol=1e-12)
    np.testing.assert_array_equal(merged[0].low, one[0].low)
    assert len(merged[1].rows) == 700
    assert sorted(map(tuple, merged[1].rows)) == sorted(map(tuple, one[1].rows))
    assert merged[2].counts == one[2].counts and merged[2].rows == 5000


def test_capped_counts_keep_every_frequent_value():
    from dlcli.metrics.running import Counts

    rng = np.random.default_rng(0)
    common = rng.choice(list("abcde"), 20_000)
    rare = np.array([f"id{i}" for i in range(5000)])  # 5,000 values seen once each
    values = np.concatenate([common, rare])
    rng.shuffle(values)
    counts = Counts(capacity=100)
    for chunk in _chunks(values, (0, 1000, 9000, 17000)):
        counts.add(pd.Series(chunk))
    assert counts.distinct() <= 100 and counts.pruned
    assert set("abcde") <= set(counts.counts)  # each a fifth of the rows: kept
    exact = pd.Series(values).value_counts()
    for value in "abcde":  # never over, at most rows / capacity under
        assert exact[value] - 25_000 / 100 <= counts.counts[value] <= exact[value]


def test_hash_splits_do_not_depend_on_how_the_rows_are_grouped():
    from dlcli.io import hashsplit

    frame = pd.DataFrame({"id": np.arange(20_000), "name": [f"row {i}" for i in range(20_000)]})
    for key in ("id", "name", None):
        whole = hashsplit.codes(frame, 0.1, 0.2, key=key)
        pieces = np.concatenate(
            [
                hashsplit.codes(frame.iloc[a:b], 0.1, 0.2, key=key, first_row=a)
                for a, b in ((0, 3), (3, 20_000))
            ]
        )
        np.testing.assert_array_equal(whole, pieces)
        shares = np.bincount(whole, minlength=3) / len(whole)
        np.testing.assert_allclose(shares, [0.7, 0.1, 0.2], atol=0.01)
    # an id hashes alike however it was read: int64 from one file, int32 from another
    np.testing.assert_array_equal(
        hashsplit.codes(frame.astype({"id": "int32"}), 0.1, 0.2, key="id"),
        hashsplit.codes(frame, 0.1, 0.2, key="id"),
    )


def test_spaces_and_missing_markers_are_stripped_alike_streamed_and_whole(tmp_path):
    # pandas 3 reads text as its `str` dtype: stripping must not look for object columns only
    from dlcli.io.reading import Reading, read_table
    from dlcli.io.streams import Stream, Unit

    path = tmp_path / "s.csv"
    path.write_text("a,b,y\n1, x ,0\n2,y ,1\n3, ? ,0\n")
    whole, _ = read_table(path, Reading())
    stream = Stream(
        [path], [Unit(path, 0, path.stat().st_size)], "delimited text", ["a", "b", "y"], Reading(), ","
    )
    stream.types = {"a": "float64", "b": "string", "y": "int64"}
    for frame in (whole, stream.read(stream.units[0])):
        assert frame["b"].iloc[:2].tolist() == ["x", "y"] and pd.isna(frame["b"].iloc[2])


def test_stream_auto_streams_past_a_quarter_of_free_memory_and_says_why(tables, monkeypatch):
    from dlcli.config.config import load_config
    from dlcli.io import streams

    config = load_config(_config(tables, path="table.csv", stream="auto"))
    path = tables / "table.csv"
    size = path.stat().st_size
    monkeypatch.setattr(streams, "available_memory", lambda: 4 * size + 4)
    assert streams.should_stream(config, [path]) == (False, None)
    monkeypatch.setattr(streams, "available_memory", lambda: 4 * size - 4)
    streamed, note = streams.should_stream(config, [path])
    assert streamed and note.startswith("data: streamed in pieces (data.stream: auto): the files take 0.0 GB")
    assert (
        "more than 25% of the 0.0 GB of memory available; set data.stream: false to read them whole" in note
    )
    config = load_config(_config(tables, path="table.csv", stream=False))
    assert streams.should_stream(config, [path]) == (False, None)
