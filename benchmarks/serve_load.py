"""Load on `dlcli serve` (loopback only; every loop bounded in count and time).

    DLCLI_DATA_DIR=../shared/data python benchmarks/serve_load.py [--seconds 20] [--clients 64] [--run RUN]

Trains configs/housing.yaml once (or takes `--run`) and exports it to ONNX. Then, one server at a
time, 64 concurrent clients (threads of a separate process, one keep-alive connection each) send
single housing rows for 20 s to:

- `dlcli serve` (ONNX Runtime, micro-batched: --max-batch 64 --max-wait-ms 5),
- the same with `--max-batch 1`,
- `dlcli serve --runtime tensorflow` (the same graph, built in the server with TensorFlow),
- a plain FastAPI script that preprocesses each request and calls `model.predict` on it.

Reports requests/s and p50/p99 latency of each. Then 10,000 malformed requests (random bytes, wrong
types, missing columns, declared 100 MB bodies, truncated bodies) against the micro-batched server:
the answers by status, whether it still answers, and its RSS before and after. Writes its block of
benchmarks/RESULTS.md. Target (issue 17): ≥ 5x the plain script's throughput at a p99 no worse.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, machine, write_block  # noqa: E402
from predict_lite import trained  # noqa: E402

START, END = "<!-- serve_load.py:start -->", "<!-- serve_load.py:end -->"

PLAIN = r"""
import sys
import keras, pandas as pd, uvicorn
from fastapi import Body, FastAPI
from dlcli.preprocessing.preprocessing import Preprocessor

run, port = sys.argv[1], int(sys.argv[2])
prep = Preprocessor.from_json(open(f"{run}/preprocessing.json").read())
model = keras.saving.load_model(f"{run}/model.keras", safe_mode=True)
app = FastAPI()

@app.get("/health")
def health():
    return {"status": "ok"}

@app.post("/predict")
def predict(records: list[dict] = Body(...)):
    x = prep.features(pd.DataFrame(records))
    predictions, _ = prep.decode(model.predict(x, verbose=0))
    return {"predictions": [{"prediction": float(v)} for v in predictions]}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""

ANCHOR = r"""
# What a competent engineer writes in an afternoon: FastAPI on uvicorn, as installed, one onnxruntime
# call per request (the inputs built straight from the records; the export's metadata names them).
import json, sys
import numpy as np, onnxruntime as ort, uvicorn
from fastapi import FastAPI, HTTPException

path, port = sys.argv[1], int(sys.argv[2])
meta = json.load(open(path + ".json"))
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
inputs = [(s["name"], s["column"], s["dtype"]) for s in meta["inputs"]]
app = FastAPI()

def value(v, dtype):
    if dtype == "string":
        return "" if v is None else str(v)
    return np.nan if v is None or v == "" else float(v)

@app.get("/health")
async def health():
    return {"status": "ok"}

@app.post("/predict")
async def predict(records: list[dict]):
    try:
        feed = {name: np.array([value(r[column], dtype) for r in records],
                               dtype=object if dtype == "string" else dtype)
                for name, column, dtype in inputs}
    except (KeyError, TypeError, ValueError) as exc:
        raise HTTPException(422, f"bad input: {exc}")
    (prediction,) = session.run(["prediction"], feed)
    return {"predictions": [{"prediction": float(v)} for v in prediction.reshape(-1)]}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""

CLIENT = r"""
import http.client, json, random, sys, threading, time
port, seconds, clients, rows_file, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = json.load(open(rows_file))
latencies, errors, lock = [], [0], threading.Lock()
stop_at = time.monotonic() + seconds

def client(seed):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    mine, bad = [], 0
    for _ in range(10_000_000):  # bounded; ends at stop_at
        if time.monotonic() >= stop_at:
            break
        body = json.dumps([rng.choice(rows)])
        started = time.perf_counter()
        try:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except OSError:
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        if ok:
            mine.append(time.perf_counter() - started)
        else:
            bad += 1
    with lock:
        latencies.extend(mine)
        errors[0] += bad

threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
started = time.monotonic()
for t in threads: t.start()
for t in threads: t.join(timeout=seconds + 120)
elapsed = time.monotonic() - started
latencies.sort()
q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
json.dump({"requests": len(latencies), "errors": errors[0], "seconds": elapsed,
           "rps": len(latencies) / elapsed, "p50_ms": 1000 * q(0.5), "p99_ms": 1000 * q(0.99)}, open(out, "w"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int, env: dict, log: Path) -> subprocess.Popen:
    """The server, its output to `log` (a pipe nobody reads would fill and stop it)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("the server never answered /health")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(port: int, seconds: float, clients: int, rows: Path, work: Path) -> dict:
    out = work / "load.json"
    cmd = [sys.executable, "-c", CLIENT, str(port), str(seconds), str(clients), str(rows), str(out)]
    subprocess.run(cmd, check=True, timeout=seconds + 300)
    return json.loads(out.read_text())


def malformed(port: int, count: int, rows: list[dict]) -> dict[str, int]:
    """`count` bad requests of five kinds, from 8 threads; the answers by status (or 'closed')."""
    import random
    import threading
    from collections import Counter

    statuses: Counter = Counter()
    lock = threading.Lock()

    def one(rng: random.Random) -> str:
        kind = rng.randrange(5)
        row = dict(rng.choice(rows))
        if kind == 0:  # random bytes
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif kind == 1:  # wrong types
            row[rng.choice(list(row))] = rng.choice(["x", [1, 2], {"a": 1}, True, "1e999"])
            body = json.dumps([row]).encode()
        elif kind == 2:  # a missing column, or not records at all
            row.pop(rng.choice(list(row)))
            body = json.dumps(rng.choice([[row], {"instances": 3}, "text", [], [[1, 2]]])).encode()
        if kind in (0, 1, 2):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                conn.sendall(head.encode() + body)
                answer = conn.recv(64)
            return answer.split()[1].decode() if answer.startswith(b"HTTP/") else "closed"
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            if kind == 3:  # a declared 100 MB body, 1 kB sent
                size, sent = 100 * 1024 * 1024, b"[" + b" " * 1023
            else:  # truncated: half the declared body, then the client goes away
                body = json.dumps([row] * 20).encode()
                size, sent = len(body), body[: len(body) // 2]
            head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
            conn.sendall(head.encode() + sent)
            if kind == 4:
                return "truncated (client left)"
            answer = conn.recv(64)
            return answer.split()[1].decode() if answer.startswith(b"HTTP/") else "closed"

    def worker(seed: int, n: int) -> None:
        rng = random.Random(seed)
        for _ in range(n):
            try:
                status = one(rng)
            except OSError:
                status = "closed"
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=worker, args=(i, count // 8)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    return dict(statuses)


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--run", type=Path, help="a trained housing run (default: train one)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = Path(os.environ.get("DLCLI_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = args.run.resolve() if args.run else trained(work, data)
        run_dir = work / "run"
        subprocess.run(["cp", "-r", str(source), str(run_dir)], check=True)
        subprocess.run(
            [sys.executable, "-m", "dlcli", "export", str(run_dir), "-f", "onnx"], check=True, env=env
        )
        frame = (
            pd.read_csv(data / "housing.csv")
            .drop(columns=["median_house_value"])
            .sample(1000, random_state=0)
        )
        rows = json.loads(frame.to_json(orient="records"))
        (work / "rows.json").write_text(json.dumps(rows))
        dlcli = [sys.executable, "-m", "dlcli", "serve", str(run_dir)]
        servers = {
            "dlcli serve, onnx, micro-batched (64 rows, 5 ms)": [*dlcli],
            "dlcli serve, onnx, --max-batch 1": [*dlcli, "--max-batch", "1"],
            "dlcli serve --runtime tensorflow, micro-batched": [*dlcli, "--runtime", "tensorflow"],
            "plain FastAPI script, model.predict per request": [sys.executable, "-c", PLAIN, str(run_dir)],
        }
        results = {}
        for name, command in servers.items():
            port = free_port()
            full = [*command, "--port", str(port)] if "dlcli" in command else [*command, str(port)]
            proc = start(full, port, env, work / "servers.log")
            try:
                results[name] = load(port, args.seconds, args.clients, work / "rows.json", work)
            finally:
                stop(proc)
            print(name, results[name], flush=True)
        port = free_port()
        proc = start([*dlcli, "--port", str(port)], port, env, work / "malformed.log")
        try:
            load(port, 3, 8, work / "rows.json", work)  # warm: allocations of a served model settle
            before = rss_mb(proc.pid)
            statuses = malformed(port, args.malformed // 2, rows)  # in two halves: does memory keep growing?
            half = rss_mb(proc.pid)
            for status, n in malformed(port, args.malformed - args.malformed // 2, rows).items():
                statuses[status] = statuses.get(status, 0) + n
            health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30).read())
            after = rss_mb(proc.pid)
            check = load(port, 3, 8, work / "rows.json", work)
        finally:
            stop(proc)
        tracebacks = (work / "malformed.log").read_text().count("Traceback")
    plain = results["plain FastAPI script, model.predict per request"]
    lines = [
        START,
        "## `dlcli serve` under load (`benchmarks/serve_load.py`, issue 17)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/serve_load.py --seconds {args.seconds:g} --clients "
        f"{args.clients}` on: {machine()}. configs/housing.yaml trained as shipped; {args.clients} concurrent "
        "clients (threads of one process on the same machine, keep-alive) each send one housing row per "
        f"request for {args.seconds:g} s, loopback only.",
        "",
        "| server | requests/s | vs plain | p50 (ms) | p99 (ms) | failed |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {r['rps']:.0f} | {r['rps'] / plain['rps']:.1f}x | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} |"
            for name, r in results.items()
        ),
        "",
        f"{args.malformed} malformed requests against the micro-batched server: answers "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        + f". Afterwards /health said {health['status']!r} and {check['requests']} good requests in 3 s all "
        f"succeeded ({check['errors']} failed); server RSS {before:.0f} MB before, {half:.0f} MB after half of them, {after:.0f} MB after all; "
        f"{tracebacks} tracebacks in the server's log.",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
