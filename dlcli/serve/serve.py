"""`dlcli serve RUN`: the run's raw-input model behind HTTP (FastAPI on uvicorn), micro-batched.

Requests wait up to `max_wait_ms` for others; up to `max_batch` rows then go through the model in one
call (in a worker thread, so the event loop keeps taking requests). The model is the graph `dlcli
export` writes: the run's exported ONNX or TFLite file through its runtime (no TensorFlow), or the same
graph built in this process from the run with TensorFlow.

Bodies: JSON records `[{"area": 3, "color": "red"}, …]`, TensorFlow Serving's `{"instances": […]}`
(records, pixel arrays, or `{"b64": …}` image files), CSV (`text/csv`), or image files uploaded as
multipart form fields. Nothing in a request is executed: JSON and CSV are parsed as data only.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request) as objects
import asyncio
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dlcli.artifacts import lite, runtime
from dlcli.evaluation import inference
from dlcli.export import export
from dlcli.runs import runs
from dlcli.serve import payloads, slowclients
from dlcli.serve.payloads import MAX_BODY, MAX_ROWS, Rejected
from dlcli.utils import files
from dlcli.utils.errors import DataError


@dataclass
class Model:
    """What the server runs: a runner of raw inputs and the metadata naming them."""

    runner: runtime.Runner
    meta: dict
    runtime: str
    info: dict = field(default_factory=dict)  # metrics and versions for /metadata

    @property
    def specs(self) -> list[runtime.InputSpec]:
        return [runtime.InputSpec(**s) for s in self.meta["inputs"]]


class _InProcess(runtime.Runner):
    """The export graph built from the run in this process (TensorFlow), called directly."""

    def __init__(self, module, outputs: list[str]):
        self.module = module
        self.outputs = outputs
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            return {k: v.numpy() for k, v in self.module.serve(runtime.tensors(inputs)).items()}


def load(run: str | Path, runs_dir: Path | str, asked: str = "auto") -> Model:

    run_dir = runs.resolve(run, Path(runs_dir))
    name, artifact = lite.choose(run_dir, asked)
    info = {
        "run": str(run_dir),
        "metrics": _read(files.read_json, run_dir / "metrics.json"),
        "versions": (_read(files.read_json, run_dir / "run.json") or {}).get("versions"),
    }
    if artifact is not None:
        meta = runtime.read_metadata(artifact)
        return Model(runtime.open_artifact(artifact, name), meta, name, info)

    loaded = inference.tensorflow_path().load_run(run_dir, runs_dir)
    prep = loaded.prep
    reason = export.unsupported(prep)
    if reason:
        raise DataError(f"{run_dir}: cannot be served: {reason}")
    specs = runtime.input_specs(prep)
    meta = runtime.metadata(prep, specs, "tensorflow", None, run_dir)
    module = export.RawInputs(prep, loaded.model, specs)
    return Model(_InProcess(module, list(meta["outputs"])), meta, "tensorflow", info)


def _read(reader, path: Path):
    try:
        return reader(path)
    except Exception:  # noqa: BLE001 - metadata is informative: a missing file is left out
        return None


# ---- micro-batching ---------------------------------------------------------------------------------
class Batcher:
    """Gathers concurrent requests into one model call of up to `max_batch` rows, waiting at most
    `max_wait_ms` after the first for others."""

    def __init__(self, model: Model, max_batch: int, max_wait_ms: float):
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlcli-model")
        self.task: asyncio.Task | None = None
        self.calls = self.rows = 0
        self.pending = 0  # requests waiting for their answer

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=True)

    async def predict(self, inputs: dict, n: int):
        future = asyncio.get_running_loop().create_future()
        self.pending += 1
        try:
            await self.queue.put((inputs, n, future))
            return await future
        finally:
            self.pending -= 1

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            rows = batch[0][1]
            deadline = loop.time() + self.max_wait
            while rows < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                rows += item[1]
            await self._run(loop, batch)

    async def _run(self, loop, batch: list) -> None:

        names = list(batch[0][0])
        joined = {k: np.concatenate([inputs[k] for inputs, _, _ in batch]) for k in names}
        try:
            outputs = await loop.run_in_executor(self.pool, runtime.run_batched, self.model.runner, joined)
        except Exception as exc:  # noqa: BLE001 - every waiting request learns of the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.calls += 1
        self.rows += sum(n for _, n, _ in batch)
        start = 0
        for _, n, future in batch:
            if not future.done():
                future.set_result({k: v[start : start + n] for k, v in outputs.items()})
            start += n


# ---- the app ---------------------------------------------------------------------------------------
@dataclass
class Limits:
    max_batch: int = 64
    max_wait_ms: float = 5.0
    max_body: int = MAX_BODY
    max_rows: int = MAX_ROWS
    #: Seconds a client has to send a request's headers, and again its body: a slow or half-sent
    #: request is dropped (408 for a body), so idle connections cannot pile up.
    timeout: float = 10.0


#: /predict's bodies, for the OpenAPI docs (the endpoint reads the raw request: JSON, CSV or files)
BODIES = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}
            },
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object"}},
        },
        "required": True,
    }
}


def describe(model: Model, limits: Limits, batcher: Batcher | None) -> dict:
    """GET /metadata: the inputs and their types, the classes, the run's metrics and versions."""
    return {
        "run": model.info["run"],
        "runtime": model.runtime,
        "task": model.meta["task"],
        "kind": model.meta["kind"],
        "inputs": [
            {"column": s.column, "type": s.role, "dtype": s.dtype, "shape": s.shape} for s in model.specs
        ],
        "classes": model.meta["classes"],
        **({"targets": model.meta["targets"]} if model.meta.get("targets") else {}),
        "window": model.meta["window"],
        "metrics": model.info["metrics"],
        "versions": model.info["versions"],
        "limits": asdict(limits),
        "served": {"calls": batcher.calls, "rows": batcher.rows, "pending": batcher.pending}
        if batcher
        else None,
    }


async def predict(model: Model, limits: Limits, batcher: Batcher, request) -> dict:
    """POST /predict: the body's rows through the batcher, one answer per row."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.startswith("multipart/form-data"):
        payloads.declared_size(request, limits.max_body)
        inputs, n = await payloads.uploaded(model, request, limits.max_rows, limits.max_body)
    else:
        try:
            body = await asyncio.wait_for(payloads.body(request, limits.max_body), limits.timeout)
        except asyncio.TimeoutError:
            raise Rejected(408, f"the body did not arrive within {limits.timeout:g} s") from None
        inputs, n = payloads.parse(model, body, content_type, limits.max_rows)
    try:
        outputs = await batcher.predict(inputs, n)
    except Exception as exc:  # noqa: BLE001 - e.g. an image that does not decode
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        raise payloads.bad(f"the model could not run on this input ({reason})") from None
    return {"predictions": payloads.answer(model, outputs)}


def app(model: Model, limits: Limits | None = None):
    """The FastAPI application: /predict, /health, /metadata and the OpenAPI docs."""
    runtime.need("fastapi", "serve")

    limits = limits or Limits()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_):
        state["batcher"] = Batcher(model, limits.max_batch, limits.max_wait_ms)
        state["batcher"].start()
        yield
        await state["batcher"].stop()

    api = FastAPI(
        title=f"dlcli: {Path(model.info['run']).parent.name}",
        description="Predictions of a dlcli run from raw inputs. POST /predict; GET /metadata, /health.",
        version=model.meta.get("dlcli", ""),
        lifespan=lifespan,
    )

    @api.exception_handler(Rejected)
    async def rejected(_, exc: Rejected):
        # a refused body may be still on its way (413) or cut off (400): close the connection rather
        # than keep it for the next request (uvicorn would wait for the rest of the body)
        close = {"Connection": "close"} if exc.status in (400, 408, 413) else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=close)

    @api.exception_handler(Exception)
    async def internal(_, exc: Exception):  # a bug of dlcli's: said in one line, never a traceback
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @api.get("/health")
    async def health() -> dict:
        return {"status": "ok", "runtime": model.runtime}

    @api.get("/metadata")
    async def metadata() -> dict:
        return describe(model, limits, state.get("batcher"))

    @api.post("/predict", openapi_extra=BODIES)
    async def predict_(request: Request) -> dict:
        return await predict(model, limits, state["batcher"], request)

    return api


def check_address(host: str, port: int) -> None:
    """Refuse, before the model loads, a port outside 1–65535 or an address this machine cannot
    listen on (in use by another server, not one of its addresses)."""
    if not 1 <= port <= 65535:
        raise DataError(f"--port {port}: expected a port number from 1 to 65535 (e.g. 8000)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DataError(
            f"--host {host}: not an address of this machine ({exc}); e.g. 127.0.0.1 or 0.0.0.0"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            what = (
                "is in use (another server listens there)"
                if exc.errno == 98
                else f"cannot be used ({exc.strerror})"
            )
            raise DataError(f"--port {port}: {host}:{port} {what}; choose another with --port") from None


def run(
    model: Model, host: str, port: int, max_batch: int, max_wait_ms: float, ready=None, timeout: float = 10.0
) -> None:
    """Serve until SIGTERM or SIGINT; uvicorn then stops taking connections and finishes the requests
    in flight before returning. A client has `timeout` seconds for a request's headers, and again
    for its body."""
    runtime.need("uvicorn", "serve")

    config = uvicorn.Config(
        app(model, Limits(max_batch, max_wait_ms, timeout=timeout)),
        host=host,
        port=port,
        http=slowclients.dropping_after(timeout),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets)
            ready()

        server.startup = startup

    # uvicorn re-raises the SIGTERM it drained on after its graceful shutdown (the process would die of
    # it, exit -15): the handler it restores is this one, which lets `dlcli serve` exit 0
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    except SystemExit:  # uvicorn exits 1 (or 3) when it cannot start: the port was taken meanwhile
        raise DataError(
            f"--port {port}: {host}:{port} could not be listened on; choose another with --port"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
