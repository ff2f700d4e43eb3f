"""`dlcli serve RUN`: the run's raw-input model behind HTTP (FastAPI on uvicorn), micro-batched.

POST /predict is a bare ASGI endpoint (`Predict`) in front of FastAPI, which serves /health,
/metadata and the docs. Requests that arrive while the model runs go through it together in the next
call (up to `max_batch` rows; `max_wait_ms` > 0 makes an idle model wait that long for company first);
a model quicker than 1 ms a call runs on the event loop, a slower one in a worker thread. The model is
the graph `dlcli export` writes: the run's exported ONNX or TFLite file through its runtime (no
TensorFlow), or the same graph built in this process from the run with TensorFlow.

Bodies: JSON records `[{"area": 3, "color": "red"}, …]`, TensorFlow Serving's `{"instances": […]}`
(records, pixel arrays, or `{"b64": …}` image files), CSV (`text/csv`), or image files uploaded as
multipart form fields. Nothing in a request is executed: JSON and CSV are parsed as data only.
"""

# no `from __future__ import annotations`: FastAPI reads its endpoints' annotations as objects
import asyncio
import json
import signal
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from dlcli.artifacts import lite, runtime
from dlcli.evaluation import inference
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

    @cached_property
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
    from dlcli.export import export  # its graph, in TensorFlow: never imported to serve a light model

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
#: A model whose last call took less than this runs on the event loop itself: handing a call to the
#: worker thread and back costs about 0.1 ms, more than a small model's whole call.
INLINE_S = 0.001


class Batcher:
    """Gathers concurrent requests into model calls of up to `max_batch` rows. A call starts as soon as
    the model is free, with every request that arrived meanwhile: under load the batches fill by
    themselves, and a lone request never waits. `max_wait_ms` > 0: an idle model first waits that
    long after a request for others (fuller batches, longer answers).

    A model that takes longer than INLINE_S a call runs in one worker thread (the event loop takes
    requests meanwhile), a quicker one on the loop. Nothing else is per request but a future."""

    def __init__(self, model: Model, max_batch: int, max_wait_ms: float):
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.waiting: deque = deque()  # (inputs, rows, future) in arrival order
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlcli-model")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: asyncio.Handle | None = None  # the call to come
        self.busy = False  # a call is running in the worker thread
        self.call_s = 1.0  # how long the last call took: the first one runs in the thread
        self.calls = self.rows = 0
        self.pending = 0  # requests waiting for their answer

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.pool.shutdown(wait=True)

    async def predict(self, inputs: dict, n: int):
        future = self.loop.create_future()
        self.waiting.append((inputs, n, future))
        self.pending += 1
        self._schedule()
        try:
            return await future
        finally:
            self.pending -= 1

    def _schedule(self) -> None:
        if self.busy or self.timer is not None:
            return
        if self.max_wait > 0 and sum(item[1] for item in self.waiting) < self.max_batch:
            self.timer = self.loop.call_later(self.max_wait, self._call)
        else:  # after the requests already read in this turn of the loop: they join the call
            self.timer = self.loop.call_soon(self._call)

    def _call(self) -> None:
        """The waiting requests, up to max_batch rows (at least one request), into the model."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.busy or not self.waiting:
            return
        batch = [self.waiting.popleft()]
        rows = batch[0][1]
        while self.waiting and rows + self.waiting[0][1] <= self.max_batch:
            batch.append(self.waiting.popleft())
            rows += batch[-1][1]
        if self.call_s < INLINE_S:
            try:
                outputs, error = self._run(batch), None
            except Exception as exc:  # noqa: BLE001 - every request of the call learns of it
                outputs, error = None, exc
            self._answer(batch, outputs, error)
            return
        self.busy = True
        running = self.loop.run_in_executor(self.pool, self._run, batch)
        running.add_done_callback(lambda done: self._answer(batch, *_outcome(done)))

    def _run(self, batch: list) -> dict:
        clock = time.perf_counter()
        joined = (
            batch[0][0]
            if len(batch) == 1
            else {k: np.concatenate([inputs[k] for inputs, _, _ in batch]) for k in batch[0][0]}
        )
        outputs = runtime.run_batched(self.model.runner, joined)
        self.call_s = time.perf_counter() - clock
        return outputs

    def _answer(self, batch: list, outputs: dict | None, error: Exception | None) -> None:
        self.busy = False
        if error is not None:  # every waiting request learns of the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            self.calls += 1
            start = 0
            for _, n, future in batch:
                self.rows += n
                if not future.done():
                    future.set_result({k: v[start : start + n] for k, v in outputs.items()})
                start += n
        if self.waiting:  # those that came during the call have waited already
            self._schedule()


def _outcome(done) -> tuple[dict | None, Exception | None]:
    error = done.exception()
    return (None, error) if error is not None else (done.result(), None)


# ---- the app ---------------------------------------------------------------------------------------
@dataclass
class Limits:
    max_batch: int = 64
    max_wait_ms: float = 0.0
    max_body: int = MAX_BODY
    max_rows: int = MAX_ROWS
    #: Seconds a client has to send a request's headers, and again its body: a slow or half-sent
    #: request is dropped (408 for a body), so idle connections cannot pile up.
    timeout: float = 10.0


#: /predict's bodies, for the OpenAPI docs (the endpoint reads the raw request: JSON, CSV or files)
BODIES = {
    "content": {
        "application/json": {
            "schema": {"oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}
        },
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {"type": "object"}},
    },
    "required": True,
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


class Predict:
    """POST /predict as a bare ASGI endpoint: the body's rows through the batcher, one answer per row.

    It sits in front of FastAPI (which serves /health, /metadata and the docs) because FastAPI's
    request handling cost more server CPU per request than everything else together (routing,
    dependency solving, response validation: benchmarks/serve_load.py); the refusals are FastAPI's
    in shape (`{"detail": ...}`, 413, 422, 408) and in words."""

    def __init__(self, model: Model, limits: Limits):
        self.model, self.limits = model, limits
        self.batcher: Batcher | None = None  # made in the lifespan, on the server's loop

    async def __call__(self, scope, receive, send) -> None:
        status, close, extra = 200, False, []
        try:
            if scope["method"] != "POST":
                extra = [(b"allow", b"POST")]
                raise Rejected(405, "Method Not Allowed")
            answer = {"predictions": await self._predict(scope, receive)}
        except Rejected as exc:
            # a refused body may be still on its way (413) or cut off (400): close the connection
            # rather than keep it for the next request (uvicorn would wait for the rest of the body)
            status, answer, close = exc.status, {"detail": exc.detail}, exc.status in (400, 408, 413)
        except Exception as exc:  # noqa: BLE001 - a bug of dlcli's: said in one line, never a traceback
            status, answer = 500, _internal(exc)
        body = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *extra]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _predict(self, scope, receive) -> list:
        model, limits = self.model, self.limits
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"application/json").decode("latin-1")
        payloads.declared_size(headers.get(b"content-length"), limits.max_body)
        if content_type.startswith("multipart/form-data"):
            inputs, n = await payloads.uploaded(
                model, Request(scope, receive), limits.max_rows, limits.max_body
            )
        else:
            try:
                async with asyncio.timeout(limits.timeout):
                    body = await payloads.body(receive, limits.max_body)
            except TimeoutError:
                raise Rejected(408, f"the body did not arrive within {limits.timeout:g} s") from None
            inputs, n = payloads.parse(model, body, content_type, limits.max_rows)
        try:
            outputs = await self.batcher.predict(inputs, n)
        except Exception as exc:  # noqa: BLE001 - e.g. an image that does not decode
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            raise payloads.bad(f"the model could not run on this input ({reason})") from None
        return payloads.answer(model, outputs)


def _internal(exc: Exception) -> dict:
    """The answer to a request that met a bug of dlcli's: one line, never a traceback."""
    return {"detail": f"internal error: {type(exc).__name__}"}


def _openapi(api) -> dict:
    """FastAPI's schema of its own routes, and POST /predict's (served by `Predict`), made once."""
    if api.openapi_schema is None:
        schema = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        schema["paths"]["/predict"] = {
            "post": {
                "summary": "Predict",
                "description": 'One answer per row: JSON records, {"instances": [...]}, CSV or files.',
                "requestBody": BODIES,
                "responses": {"200": {"description": '{"predictions": [...]}'}},
            }
        }
        api.openapi_schema = schema
    return api.openapi_schema


def app(model: Model, limits: Limits | None = None):
    """The ASGI application: POST /predict (`Predict`), and FastAPI for /health, /metadata and the
    OpenAPI docs (/docs, /openapi.json, where /predict is described too)."""
    runtime.need("fastapi", "serve")
    limits = limits or Limits()
    endpoint = Predict(model, limits)

    @asynccontextmanager
    async def lifespan(_):
        endpoint.batcher = Batcher(model, limits.max_batch, limits.max_wait_ms)
        endpoint.batcher.start()
        yield
        await endpoint.batcher.stop()

    api = FastAPI(
        title=f"dlcli: {Path(model.info['run']).parent.name}",
        description="Predictions of a dlcli run from raw inputs. POST /predict; GET /metadata, /health.",
        version=model.meta.get("dlcli", ""),
        lifespan=lifespan,
    )

    @api.exception_handler(Exception)
    async def internal(_, exc: Exception):  # a bug of dlcli's: said in one line, never a traceback
        return JSONResponse(_internal(exc), status_code=500)

    @api.get("/health")
    async def health() -> dict:
        return {"status": "ok", "runtime": model.runtime}

    @api.get("/metadata")
    async def metadata() -> dict:
        return describe(model, limits, endpoint.batcher)

    api.openapi = lambda: _openapi(api)  # FastAPI's way of describing a route it does not serve

    async def asgi(scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            await endpoint(scope, receive, send)
        else:
            await api(scope, receive, send)

    return asgi


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
        proxy_headers=False,  # X-Forwarded-* name the client for access logs, which are off
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
