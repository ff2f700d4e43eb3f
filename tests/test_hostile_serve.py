"""Issue 32: `dlcli serve` under careless and hostile clients: bodies nested 100,000 deep, half-sent
requests, ragged CSV, impossible ports. Every answer is a 4xx with where and why, the server keeps
answering, and its log never holds a traceback. Every wait is bounded (STUCK_S, socket timeouts)."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
from conftest import ROOT, STUCK_S, fails
from servers import Server, _free_port

pytest.importorskip("fastapi", reason="the serve extra is not installed")
TIMEOUT = "1"  # serve --timeout: seconds for a request's headers, and for its body


@pytest.fixture(scope="module")
def table(regression_run, tmp_path_factory):
    from dlcli.export import export

    run = tmp_path_factory.mktemp("hostile-serve") / "run"
    shutil.copytree(regression_run, run)
    export.export(run, "onnx")
    server = Server(run, "--timeout", TIMEOUT)
    yield server
    code, _, err = server.stop()
    assert code == 0 and "Traceback" not in err and "RecursionError" not in err, err


@pytest.fixture(scope="module")
def pixels_server(images_run, dlcli_fork):
    server = Server(images_run, "--runtime", "tensorflow", start=dlcli_fork)
    yield server
    code, _, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


ROW = {"area": 120.5, "rooms": 3, "city": "north"}


def _raw(server: Server, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    return server.request("/predict", body, content_type)


def _detail(body: dict) -> str:
    return body["detail"][0]["msg"] if isinstance(body["detail"], list) else body["detail"]


# ---- item 8: depth ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'[{"area": ' + b"[" * 5_000 + b"]" * 5_000 + b', "rooms": 3, "city": "north"}]',
    ],
    ids=["lists", "objects", "inside-a-record"],
)
def test_deep_nesting_is_a_422_and_the_server_stays_up(table, body):
    status, answer = _raw(table, body)
    assert status == 422, answer
    assert "nests lists or objects too deeply" in _detail(answer) or "expected a single value" in _detail(
        answer
    )
    assert table.get("/health")["status"] == "ok"


def test_a_nested_list_as_a_value_is_named(table):
    status, answer = table.post([{**ROW, "area": [[1, 2], [3]]}])
    assert status == 422
    assert answer["detail"][0] == {
        "loc": ["body", 0, "area"],
        "msg": "column 'area': expected a single value, got list",
        "type": "value_error",
    }


# ---- item 8: slow clients ------------------------------------------------------------------------------
def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=STUCK_S)
    sock.settimeout(30)  # far above serve --timeout 1: a hang fails the test, it does not stall it
    return sock


def test_half_sent_headers_are_dropped(table):
    with _connect(table) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        # closed by the server, with nothing to say (the socket's own timeout fails the test if not)
        assert sock.recv(1024) == b""
    assert table.get("/health")["status"] == "ok"


def test_a_half_sent_body_gets_408_and_is_closed(table):
    with _connect(table) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        sock.sendall(b'Content-Length: 500\r\n\r\n[{"area": 1')
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"the body did not arrive within 1 s" in answer


def test_an_idle_connection_is_closed(table):
    with _connect(table) as sock:  # connects, sends nothing
        assert sock.recv(1024) == b""


# ---- item 13: CSV bodies as predict reads files -------------------------------------------------------
@pytest.mark.parametrize(
    ("csv", "msg"),
    [
        (b"area,rooms,city\n120.5,3,north\n99,2\n", "line 3: 2 fields where the header has 3"),
        (b"area,rooms,city\n120.5,3,north,extra\n", "line 2: 4 fields where the header has 3"),
        (b"area,rooms,city\n", "the CSV body has a header but no rows"),
        (b"area,rooms,city\n\xff\xfe,1,2\n", "the CSV body is not UTF-8 text"),
        (b"area,rooms,city\nlots,3,north\n", "column 'area' row 1: 'lots' is not a number"),
    ],
    ids=["short-row", "long-row", "no-rows", "not-utf8", "text-in-number"],
)
def test_bad_csv_bodies_are_422_naming_the_line(table, csv, msg):
    status, answer = _raw(table, csv, "text/csv")
    assert status == 422, answer
    assert msg in _detail(answer)


# ---- bodies of the wrong shape --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"", "the body is not valid JSON"),
        (b"{not json", "the body is not valid JSON"),
        (b"[]", 'expected a non-empty JSON list of records, or {"instances": [...]}'),
        (b"[1, 2, 3]", "instance 0 is int, expected an object of columns"),
        (b'[{"area": 1}]', "missing column 'rooms'"),
        (b'[{"area": "big", "rooms": 3, "city": "north"}]', "'big' is not a number"),
        (b'[{"area": Infinity, "rooms": 3, "city": "north"}]', "is not a finite float32 value"),
        (b'[{"area": 1e39, "rooms": 3, "city": "north"}]', "is not a finite float32 value"),
        (json.dumps([{**ROW, "area": "x" * 5000}]).encode(), "…"),  # a huge cell is cut short
    ],
    ids=["empty", "broken", "empty-list", "not-records", "missing", "text", "infinity", "overflow", "long"],
)
def test_malformed_bodies_are_422_with_where_and_why(table, body, msg):
    status, answer = _raw(table, body)
    assert status == 422, answer
    assert msg in _detail(answer)
    assert len(_detail(answer)) < 600


def test_too_many_rows_is_413(table):
    status, answer = table.post([ROW] * 10_001)
    assert status == 413 and "10001 instances in one request; at most 10000" in _detail(answer)


def test_other_paths_and_methods_are_not_found(table):
    assert table.request("/nothing")[0] == 404
    assert table.request("/predict")[0] == 405  # GET


# ---- item 3 on the server: pixels -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "msg"),
    [
        (lambda x: x.__setitem__((0, 0, 0), 1000), "image 0 (counting from 0) has pixels outside 0–255"),
        (lambda x: x.__setitem__((1, 0, 0), -3), "image 1 (counting from 0) has pixels outside 0–255"),
    ],
)
def test_pixels_outside_the_trained_range_are_422(pixels_server, change, msg):
    x = np.load(ROOT / "data" / "tiny_digits.npz")["x_test"][:2].astype("float64")
    change(x)
    status, answer = pixels_server.post({"instances": x.tolist()})
    assert status == 422 and msg in _detail(answer)


# ---- item 13: the address ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--port", "70000"], "--port 70000: expected a port number from 1 to 65535 (e.g. 8000)"),
        (["--port", "-1"], "--port -1: expected a port number from 1 to 65535 (e.g. 8000)"),
        (["--host", "no.such.host.invalid"], "--host no.such.host.invalid: not an address of this machine"),
    ],
)
def test_impossible_addresses_exit_2_naming_them(regression_run, cli, args, msg):
    assert msg in fails(cli, "serve", str(regression_run), *args)


def test_a_port_in_use_is_exit_2_naming_it(regression_run, cli):
    port = _free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        message = fails(cli, "serve", str(regression_run), "--port", str(port))
    assert (
        f"--port {port}: 127.0.0.1:{port} is in use (another server listens there); choose another with --port"
        in message
    )
