"""dlcli/runs/: finding a run, sealing its files and refusing one changed since, called directly."""

from __future__ import annotations

import pytest

from dlcli.runs import record, runs
from dlcli.utils.errors import RunError
from dlcli.utils.files import read_json, write_json


def _run(folder, name="iris", stamp="20260101-000000"):
    run = runs.create(folder, name) if stamp is None else folder / name / stamp
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "run.json", {"name": name})
    return run


def test_resolve_takes_a_path_a_name_slash_latest_or_latest(tmp_path):
    first, second = _run(tmp_path, "iris", "20260101-000000"), _run(tmp_path, "wine", "20260102-000000")
    runs.mark_latest(first)
    runs.mark_latest(second)
    assert runs.resolve(first, tmp_path) == first.resolve()
    assert runs.resolve("iris/latest", tmp_path) == first.resolve()
    assert runs.resolve("latest", tmp_path) == second.resolve()


def test_resolve_says_what_is_missing(tmp_path):
    with pytest.raises(RunError, match=r"latest: no completed runs under .*; train one first"):
        runs.resolve("latest", tmp_path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match=r"not a dlcli run directory \(no run.json in "):
        runs.resolve(tmp_path / "plain", tmp_path)


def test_a_sealed_file_changed_since_is_refused_and_an_unsealed_one_not_checked(tmp_path):
    run = _run(tmp_path)
    (run / "preprocessing.json").write_text('{"classes": ["a", "b"]}')
    (run / "notes.txt").write_text("mine")
    record.seal_file(run, "preprocessing.json")
    assert set(read_json(run / "run.json")["artifacts"]) == {"preprocessing.json"}
    assert record.check_sealed(run, "preprocessing.json", "notes.txt") == {"preprocessing.json"}
    (run / "preprocessing.json").write_text('{"classes": ["b", "a"]}')
    with pytest.raises(RunError) as caught:
        record.check_sealed(run, "preprocessing.json")
    assert f"{run / 'preprocessing.json'}: changed since dlcli wrote it (sha256 " in str(caught.value)
    assert "Restore it from a copy of the run, or train (or export) again" in str(caught.value)


def test_flatten_gives_dotted_keys(tmp_path):
    assert runs.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}
