"""Load on `dlcli serve` (loopback only; every loop bounded in count and time).

    DLCLI_DATA_DIR=../shared/data python benchmarks/serve_load.py [--seconds 20] [--rounds 2] [--run RUN]

Trains configs/housing.yaml once (or takes `--run`) and exports it to ONNX. Then, one server at a
time, in rounds (the servers interleaved, medians reported), a load generator (one asyncio process,
one keep-alive connection per client, each sending single housing rows one after another: cheaper per
request than a thread per client, so that it is the servers that are measured) runs for `--seconds`
at 64 clients and at 1 client against:

- the anchor: a FastAPI app calling onnxruntime once per request (ANCHOR, what a competent engineer
  writes in an afternoon; the same uvicorn, httptools and uvloop as dlcli serve),
- `dlcli serve` on the same ONNX file, as shipped; the same with `--max-batch 1`,
- `dlcli serve --runtime tensorflow` (the same graph, built in the server with TensorFlow),
- a FastAPI script that preprocesses each request and calls `model.predict` on it (PLAIN).

Reports requests/s, p50/p99 latency and the server's CPU per request (from /proc), and checks that
the anchor and dlcli give the same answers to 1e-5. Then 10,000 malformed requests (random bytes,
wrong types, missing columns, declared 100 MB bodies, truncated bodies) against `dlcli serve`: the
answers by status, whether it still answers, and its RSS before and after. Writes its block of
benchmarks/RESULTS.md. Target (issue 36): ≥ 1.5x the anchor's requests/s at 64 clients, p99 no worse,
and p50 no worse at 1 client.
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
from compare import ROOT, data_dir, machine, write_block  # noqa: E402
from predict_lite import trained  # noqa: E402

START, END = "<!-- serve_load.py:start -->", "<!-- serve_load.py:end -->"

PLAIN = r"""
import sys
import keras, pandas as pd, uvicorn
from fastapi import Body, FastAPI
from dlcli.preprocessing.preprocessing import from_json

run, port = sys.argv[1], int(sys.argv[2])
prep = from_json(open(f"{run}/preprocessing.json").read())
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
import asyncio, json, random, sys, time
try:
    import uvloop
except ImportError:
    uvloop = None

async def main(port, seconds, clients, rows_file, out):
    rows = json.load(open(rows_file))
    requests = []
    for row in rows:
        body = json.dumps([row]).encode()
        requests.append(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    latencies, errors = [], [0]
    stop_at = time.monotonic() + seconds

    async def client(seed):
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(10_000_000):  # bounded; ends at stop_at
            if time.monotonic() >= stop_at:
                break
            started = time.perf_counter()
            writer.write(requests[rng.randrange(len(requests))])
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:")
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, StopIteration):
                errors[0] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - started)
            else:
                errors[0] += 1
        writer.close()

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(clients))), seconds + 120)
    elapsed = time.monotonic() - started
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    json.dump({"requests": len(latencies), "errors": errors[0], "seconds": elapsed,
               "rps": len(latencies) / elapsed, "p50_ms": 1000 * q(0.5), "p99_ms": 1000 * q(0.99)}, open(out, "w"))

port, seconds, clients, rows_file, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
(uvloop.run if uvloop else asyncio.run)(main(port, seconds, clients, rows_file, out))
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def load(port: int, seconds: float, clients: int, rows: Path, work: Path, pid: int | None = None) -> dict:
    """The load generator against the server on `port`; with `pid`, the server's CPU per request."""
    out = work / "load.json"
    before = cpu_seconds(pid) if pid else 0.0
    cmd = [sys.executable, "-c", CLIENT, str(port), str(seconds), str(clients), str(rows), str(out)]
    subprocess.run(cmd, check=True, timeout=seconds + 300)
    result = json.loads(out.read_text())
    if pid:
        result["cpu_ms"] = 1000 * (cpu_seconds(pid) - before) / max(result["requests"], 1)
    return result


def answers(port: int, rows: list[dict]) -> list[float]:
    """The server's predictions for `rows`, in one request."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", json.dumps(rows).encode(), {"Content-Type": "application/json"}
    )
    return [
        p["prediction"] for p in json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]
    ]


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
    import statistics

    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--run", type=Path, help="a trained housing run (default: train one)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    data = data_dir()
    env = {**os.environ, "DLCLI_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = args.run.resolve() if args.run else trained(work, data)
        run_dir = work / "run"
        subprocess.run(["cp", "-r", str(source), str(run_dir)], check=True)
        if not (run_dir / "export" / "model.onnx").is_file():  # a run trained without its light model
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
        anchor = "anchor: FastAPI + onnxruntime, one call per request"
        servers = {
            anchor: ([sys.executable, "-c", ANCHOR, str(run_dir / "export" / "model.onnx")], (64, 1)),
            "dlcli serve (onnx, as shipped)": (dlcli, (64, 1)),
            "dlcli serve (onnx), --max-batch 1": ([*dlcli, "--max-batch", "1"], (64,)),
            "dlcli serve --runtime tensorflow": ([*dlcli, "--runtime", "tensorflow"], (64,)),
            "FastAPI script, model.predict per request": ([sys.executable, "-c", PLAIN, str(run_dir)], (64,)),
        }
        results: dict[tuple[str, int], list[dict]] = {}
        same = None
        for round_ in range(args.rounds):
            for name, (command, clients) in servers.items():
                port = free_port()
                full = [*command, "--port", str(port)] if "dlcli" in command else [*command, str(port)]
                proc = start(full, port, env, work / "servers.log")
                try:
                    if round_ == 0 and name in (anchor, "dlcli serve (onnx, as shipped)"):
                        got = answers(port, rows[:200])
                        same = (
                            got
                            if same is None
                            else max(abs(a - b) / max(abs(a), 1.0) for a, b in zip(same, got, strict=True))
                        )
                    for n in clients:
                        result = load(port, args.seconds, n, work / "rows.json", work, proc.pid)
                        results.setdefault((name, n), []).append(result)
                        print(round_ + 1, name, n, result, flush=True)
                finally:
                    stop(proc)
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

    def median(name: str, n: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, n)])

    lines = [
        START,
        "## `dlcli serve` under load (`benchmarks/serve_load.py`, issues 17 and 36)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/serve_load.py --seconds {args.seconds:g} --rounds "
        f"{args.rounds}` on: {machine()}. configs/housing.yaml trained as shipped, its ONNX model served; one "
        "load-generating process on the same machine (asyncio, one keep-alive connection per client), each "
        f"client sending one housing row per request for {args.seconds:g} s; servers interleaved in "
        f"{args.rounds} rounds, medians. CPU: the server process's user + system time per answered request.",
        "",
        "| server | clients | requests/s | vs anchor | p50 (ms) | p99 (ms) | server CPU per request (ms) | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, n in results:
        rps = median(name, n, "rps")
        lines.append(
            f"| {name} | {n} | {rps:.0f} | {rps / median(anchor, n, 'rps'):.2f}x | {median(name, n, 'p50_ms'):.2f} | "
            f"{median(name, n, 'p99_ms'):.1f} | {median(name, n, 'cpu_ms'):.3f} | "
            f"{sum(r['errors'] for r in results[(name, n)])} |"
        )
    lines += [
        "",
        f"The anchor's and dlcli's answers for 200 rows differ by at most {same:.1e} (relative).",
        "",
        f"{args.malformed} malformed requests against `dlcli serve`: answers "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        + f". Afterwards /health said {health['status']!r} and {check['requests']} good requests in 3 s all "
        f"succeeded ({check['errors']} failed); server RSS {before:.0f} MB before, {half:.0f} MB after half of "
        f"them, {after:.0f} MB after all; {tracebacks} tracebacks in the server's log.",
        END,
    ]
    write_block(args.output, START, END, lines)


if __name__ == "__main__":
    main()
