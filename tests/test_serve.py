"""`dlcli serve`: a real server process on a free loopback port, real HTTP clients. Every loop is
bounded in count and time (STUCK_S guards against hanging, it is not a timing)."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, STUCK_S
from servers import Server

pytest.importorskip("fastapi", reason="the serve extra is not installed")


@pytest.fixture(scope="module")
def exported(regression_run, tmp_path_factory):
    """A copy of the regression run with model.onnx exported into it (served without TensorFlow)."""
    from dlcli.export import export

    run = tmp_path_factory.mktemp("served") / "run"
    shutil.copytree(regression_run, run)
    export.export(run, "onnx")  # in this process: TensorFlow is imported here already
    return run


@pytest.fixture(scope="module")
def table_server(exported):
    server = Server(exported, "--max-wait-ms", "50")
    yield server
    server.stop()


ROW = {"area": 120.5, "rooms": 3, "city": "north"}


def test_every_body_shape_gives_dlcli_predicts_numbers(table_server, exported, tmp_path, cli):
    rows = pd.read_csv(ROOT / "data" / "tiny_regression.csv").drop(columns=["price"]).head(6)
    rows.loc[2, "area"] = np.nan
    rows.loc[3, "city"] = np.nan
    rows.to_csv(tmp_path / "in.csv", index=False)
    code, _, err = cli("predict", str(exported), "--input", "in.csv", "--runtime", "tensorflow")
    assert code == 0, err
    expected = pd.read_csv(tmp_path / "in_predictions.csv")["prediction"].to_numpy()
    records = json.loads(rows.to_json(orient="records"))  # NaN → null
    answers = [
        table_server.post(records),
        table_server.post({"instances": records}),
        table_server.request("/predict", (tmp_path / "in.csv").read_bytes(), "text/csv"),
    ]
    for status, body in answers:
        assert status == 200, body
        np.testing.assert_allclose([p["prediction"] for p in body["predictions"]], expected, rtol=1e-5)
    status, body = table_server.post(ROW)  # one record, not in a list
    assert status == 200 and len(body["predictions"]) == 1


def test_bad_requests_get_422_with_the_field_and_the_reason(table_server):
    cases = [
        (
            [{"rooms": 3, "city": "north"}],
            ["body", 0, "area"],
            "missing column 'area' (the model takes area, rooms, city)",
        ),
        (
            [ROW, {**ROW, "rooms": "three"}],
            ["body", 1, "rooms"],
            "column 'rooms' row 2: 'three' is not a number (the model was trained on numbers in this column)",
        ),
        ([{**ROW, "area": [1, 2]}], ["body", 0, "area"], "column 'area': expected a single value, got list"),
        ([5], ["body", 0], "instance 0 is int, expected an object of columns"),
        ([], ["body"], 'expected a non-empty JSON list of records, or {"instances": [...]}'),
    ]
    for body, loc, msg in cases:
        status, answer = table_server.post(body)
        assert status == 422, answer
        assert answer["detail"][0]["loc"] == loc and answer["detail"][0]["msg"] == msg
    status, answer = table_server.request("/predict", b'[{"area": 1, "rooms": 2, "city": "n"')  # truncated
    assert status == 422 and answer["detail"][0]["msg"].startswith("the body is not valid JSON (")
    status, answer = table_server.request("/predict", b'[{"area": 1e999, "rooms": 2, "city": "n"}]')
    assert status == 422 and "'area' row 1: inf is not a finite float32 value" in answer["detail"][0]["msg"]
    # limits: a body over 16 MB, more than 10,000 rows
    status, answer = _declared(table_server, 17 * 1024 * 1024)  # refused before it is read
    assert status == 413 and answer["detail"] == "the body is 17825792 bytes; at most 16777216"
    status, answer = table_server.post([ROW] * 10_001)
    assert status == 413 and answer["detail"] == "10001 instances in one request; at most 10000"
    assert table_server.get("/health")["status"] == "ok"  # still answering


def _declared(server: Server, size: int) -> tuple[int, dict]:
    """A request that declares a `size`-byte body and sends its first byte: the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
        head = f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n["
        conn.sendall(head.encode())
        data = b""
        for _ in range(1000):  # until the server closes the connection or the answer is whole
            chunk = conn.recv(65536)
            data += chunk
            if not chunk or (b"\r\n\r\n" in data and data.rstrip().endswith(b"}")):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_concurrent_requests_share_model_calls(table_server):
    before = table_server.get("/metadata")["served"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda i: table_server.post([{**ROW, "area": 50.0 + i}]), range(32)))
    assert all(status == 200 for status, _ in answers)
    after = table_server.get("/metadata")["served"]
    assert after["rows"] - before["rows"] == 32
    assert after["calls"] - before["calls"] < 32  # requests were gathered into shared model calls
    predictions = [body["predictions"][0]["prediction"] for _, body in answers]
    assert len(set(predictions)) == 32  # each request got its own row's answer back


def test_metadata_and_openapi_describe_the_model(table_server):
    meta = table_server.get("/metadata")
    assert meta["runtime"] == "onnx" and meta["task"] == "regression"
    assert [(i["column"], i["type"]) for i in meta["inputs"]] == [
        ("area", "numeric"), ("rooms", "numeric"), ("city", "categorical"),
    ]  # fmt: skip
    assert meta["metrics"]["test"]["r2"] > 0.5 and meta["versions"]["tensorflow"]
    assert meta["limits"]["max_batch"] == 64
    assert "/predict" in table_server.get("/openapi.json")["paths"]


def test_sigterm_drains_requests_in_flight(exported):
    server = Server(exported, "--max-wait-ms", "3000", "--max-batch", "1000")  # requests wait for others
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(server.post, [{**ROW, "rooms": i}]) for i in range(8)]
        deadline = time.monotonic() + STUCK_S
        while server.get("/metadata")["served"]["pending"] < 8:
            assert time.monotonic() < deadline, "the requests never arrived"
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)  # all 8 are waiting for their batch
        answers = [f.result(timeout=STUCK_S) for f in futures]
    _, err = server.proc.communicate(timeout=STUCK_S)  # it exits by itself (stop() would signal again)
    code = server.proc.returncode
    assert [status for status, _ in answers] == [200] * 8
    assert code == 0, err


def test_images_as_pixels_files_and_base64(images_run, image_folder_run, tmp_path, dlcli_fork):
    pixels = np.load(ROOT / "data" / "tiny_digits.npz")["x_test"][:3]
    server = Server(images_run, "--runtime", "tensorflow", start=dlcli_fork)
    try:
        status, body = server.post({"instances": pixels.tolist()})
        assert status == 200 and len(body["predictions"]) == 3
        assert set(body["predictions"][0]["probabilities"]) == {str(d) for d in range(10)}
        status, body = server.post({"instances": pixels[:, :4].tolist()})
        assert status == 422
        assert body["detail"][0]["msg"] == (
            "images have shape [4, 8] per item (array [3, 4, 8]); the model was trained on [8, 8]: "
            "expected an array of shape [n, 8, 8]"
        )
    finally:
        server.stop()
    server = Server(image_folder_run, "--runtime", "tensorflow", start=dlcli_fork)
    try:
        files = sorted((ROOT / "data" / "tiny_images").rglob("*.png"))[:2]
        status, body = server.post(
            {"instances": [{"b64": base64.b64encode(f.read_bytes()).decode()} for f in files]}
        )
        assert status == 200 and {p["prediction"] for p in body["predictions"]} <= {"blue", "red"}
        boundary = "dlcliboundary"
        parts = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{f.name}"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + f.read_bytes()
            + b"\r\n"
            for f in files
        )
        status, uploaded = server.request(
            "/predict", parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
        )
        assert status == 200 and uploaded["predictions"] == body["predictions"]
        status, body = server.post({"instances": [{"b64": base64.b64encode(b"not an image").decode()}]})
        assert status == 422 and body["detail"][0]["msg"].startswith(
            "the model could not run on this input ("
        )
        status, body = server.post({"instances": [{"b64": "%%%"}]})
        assert status == 422 and body["detail"][0] == {
            "loc": ["body", 0, "b64"],
            "msg": "not valid base64",
            "type": "value_error",
        }
        assert server.get("/health")["status"] == "ok"
    finally:
        server.stop()


def test_serve_without_the_extra_says_how_to_install_it(regression_run, cli, monkeypatch):
    import sys as sys_module

    monkeypatch.setitem(sys_module.modules, "fastapi", None)  # as if the serve extra were not installed
    code, _, err = cli("serve", str(regression_run))
    assert code == 2 and "Traceback" not in err
    assert (
        "error: fastapi is not installed; it comes with the 'serve' extra: pip install 'dlcli[serve]'" in err
    )


def test_series_windows_and_text_as_the_model_takes_them(series_run, text_run, tmp_path, cli, dlcli_fork):
    from dlcli.export import export

    series = tmp_path / "series"
    shutil.copytree(series_run, series)
    export.export(series, "tflite")  # served by LiteRT
    frame = pd.read_csv(ROOT / "data" / "tiny_series.csv").head(30)
    frame.to_csv(tmp_path / "series.csv", index=False)
    assert cli("predict", str(series), "--input", "series.csv", "--runtime", "tensorflow")[0] == 0
    expected = pd.read_csv(tmp_path / "series_predictions.csv")["prediction"].dropna().to_numpy()
    server = Server(series)
    try:
        assert server.get("/metadata")["runtime"] == "tflite"
        status, body = server.request("/predict", (tmp_path / "series.csv").read_bytes(), "text/csv")
        assert status == 200 and len(body["predictions"]) == len(expected) == 21  # one per window of 10
        np.testing.assert_allclose([p["prediction"] for p in body["predictions"]], expected, rtol=1e-5)
        windows = [{"date": None, "value": frame["value"].iloc[i : i + 10].tolist()} for i in (0, 5)]
        status, body = server.post({"instances": windows})
        assert status == 200
        np.testing.assert_allclose(
            [p["prediction"] for p in body["predictions"]], expected[[0, 5]], rtol=1e-5
        )
        status, body = server.post([{"value": [1.0, 2.0]}])
        assert (
            status == 422
            and body["detail"][0]["msg"] == "column 'value': expected a window of 10 values (a list)"
        )
    finally:
        server.stop()
    lines = (ROOT / "data" / "tiny_text.tsv").read_text().splitlines()[:5]
    (tmp_path / "text.tsv").write_text("\n".join(lines) + "\n")
    assert cli("predict", str(text_run), "--input", "text.tsv", "--output", "text.csv")[0] == 0
    expected = pd.read_csv(tmp_path / "text.csv")
    server = Server(text_run, start=dlcli_fork)  # text is vectorized inside the model: TensorFlow serves it
    try:
        status, body = server.post([{"message": line.split("\t", 1)[1]} for line in lines])
        assert status == 200, body
        assert [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()
    finally:
        server.stop()


def test_a_light_model_is_served_without_tensorflow_or_scikit_learn(exported):
    """The server's process loads the ONNX model and builds its app without importing TensorFlow or
    scikit-learn (a server of 90 MB, not 760)."""
    script = (
        "import sys\n"
        "from dlcli.serve import serve\n"
        f"model = serve.load({str(exported)!r}, '.')\n"
        "serve.app(model)\n"
        "print(model.runtime, sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=STUCK_S)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "onnx []"
