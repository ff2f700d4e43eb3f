"""dlcli/serve/payloads.py: request bodies → the model's inputs, or a 422/413 naming the field, called
directly with a stand-in model (its metadata and input specs) and no server."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dlcli.artifacts.runtime import InputSpec
from dlcli.serve import payloads


def _model(kind="table", window=None):
    specs = [
        InputSpec("x", "x", "numeric", "float32", []),
        InputSpec("city", "city", "categorical", "string", []),
    ]
    meta = {"kind": kind, "window": {"length": window} if window else None}
    return SimpleNamespace(meta=meta, specs=specs)


def _rejected(body, content_type="application/json", model=None, max_rows=10):
    with pytest.raises(payloads.Rejected) as caught:
        payloads.parse(model or _model(), body, content_type, max_rows)
    return caught.value.status, caught.value.detail


def test_records_one_record_and_instances_are_the_same_inputs():
    records = [{"x": 1.5, "city": "Oslo"}, {"x": None, "city": "Rome"}]
    for body in (records, {"instances": records}):
        inputs, rows = payloads.parse(_model(), json.dumps(body).encode(), "application/json", 10)
        assert rows == 2 and inputs["city"].tolist() == ["Oslo", "Rome"]
        assert inputs["x"][0] == 1.5 and np.isnan(inputs["x"][1])
    inputs, rows = payloads.parse(_model(), json.dumps(records[0]).encode(), "application/json", 10)
    assert rows == 1


def test_a_csv_body_is_read_as_predict_reads_a_file():
    inputs, rows = payloads.parse(_model(), b"x,city\n1,Oslo\n2,Rome\n", "text/csv", 10)
    assert rows == 2 and inputs["x"].tolist() == [1.0, 2.0]
    assert _rejected(b"x,city\n1,Oslo,extra\n", "text/csv")[1][0]["msg"] == (
        "line 2: 3 fields where the header has 2; fix the row (a value cut short or an extra separator)"
    )


def test_each_mistake_is_a_422_naming_the_instance_and_the_field():
    status, detail = _rejected(b'[{"x": 1}]')
    assert status == 422 and detail[0]["loc"] == ["body", 0, "city"]
    assert detail[0]["msg"] == "missing column 'city' (the model takes x, city)"
    status, detail = _rejected(b'[{"x": [1, 2], "city": "a"}]')
    assert detail[0]["msg"] == "column 'x': expected a single value, got list"
    status, detail = _rejected(b"{not json")
    assert detail[0]["msg"].startswith("the body is not valid JSON (")
    assert _rejected(b"[" * 5000 + b"]" * 5000)[1][0]["msg"].startswith(
        "the body nests lists or objects too deeply"
    )


def test_too_many_instances_is_a_413():
    status, detail = _rejected(json.dumps([{"x": 1, "city": "a"}] * 11).encode())
    assert (status, detail) == (413, "11 instances in one request; at most 10")


def test_a_series_takes_a_window_per_column_or_csv_rows_it_cuts_into_windows():
    series = _model("timeseries", window=2)
    inputs, rows = payloads.parse(series, b'[{"x": [1, 2], "city": ["a", "b"]}]', "application/json", 10)
    assert rows == 1 and inputs["x"].tolist() == [[1.0, 2.0]]
    inputs, rows = payloads.parse(series, b"x,city\n1,a\n2,b\n3,c\n", "text/csv", 10)
    assert rows == 2 and inputs["x"].tolist() == [[1.0, 2.0], [2.0, 3.0]]
    assert _rejected(b'[{"x": [1], "city": ["a"]}]', model=series)[1][0]["msg"] == (
        "column 'x': expected a window of 2 values (a list)"
    )
