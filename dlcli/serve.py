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
import base64
import binascii
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.errors import DataError

#: Largest request body read (bytes), and rows per request: beyond them a request gets 413.
MAX_BODY = 16 * 1024 * 1024
MAX_ROWS = 10_000


class Rejected(Exception):
    """A request the server refuses: the HTTP status and FastAPI-style details."""

    def __init__(self, status: int, detail: list[dict] | str):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def _bad(msg: str, *loc) -> Rejected:
    return Rejected(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


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

    def __init__(self, module):
        self.module = module
        self.outputs = ["prediction", "probabilities"]
        self.lock = threading.Lock()

    def __call__(self, inputs):
        import tensorflow as tf

        fed = {k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in inputs.items()}
        with self.lock:
            return {k: v.numpy() for k, v in self.module.serve(fed).items()}


def load(run: str | Path, runs_dir: Path | str, asked: str = "auto") -> Model:
    from dlcli import files, lite, runs

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
    from dlcli import export, inference

    loaded = inference.load_run(run_dir, runs_dir)
    prep = loaded.prep
    reason = export.unsupported(prep)
    if reason:
        raise DataError(f"{run_dir}: cannot be served: {reason}")
    specs = runtime.input_specs(prep)
    meta = runtime.metadata(prep, specs, "tensorflow", None, run_dir)
    return Model(_InProcess(export._module(prep, loaded.model, specs)), meta, "tensorflow", info)


def _read(reader, path: Path):
    try:
        return reader(path)
    except Exception:  # noqa: BLE001 - metadata is informative: a missing file is left out
        return None


# ---- requests → inputs -----------------------------------------------------------------------------
def parse(model: Model, body: bytes, content_type: str, max_rows: int) -> tuple[dict, int]:
    """A request body → (the model's inputs, number of rows); Rejected with the field and the reason."""
    kind = model.meta["kind"]
    if content_type.startswith("text/csv"):
        return _from_csv(model, body, max_rows)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"the body is not valid JSON ({exc})") from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    elif isinstance(payload, dict) and kind in ("table", "timeseries"):
        payload = [payload]  # one record
    if not isinstance(payload, list) or not payload:
        raise _bad('expected a non-empty JSON list of records, or {"instances": [...]}')
    if len(payload) > max_rows:
        raise Rejected(413, f"{len(payload)} instances in one request; at most {max_rows}")
    if kind == "image":
        return _pixels(model, payload), len(payload)
    if kind == "image_files":
        return {model.specs[0].name: _images_b64(payload)}, len(payload)
    return _records(model, payload), len(payload)


def _records(model: Model, records: list) -> dict:
    import numpy as np

    specs = model.specs
    window = model.meta["window"]["length"] if model.meta["kind"] == "timeseries" else None
    columns: dict[str, list] = {s.name: [] for s in specs}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise _bad(f"instance {i} is {type(record).__name__}, expected an object of columns", i)
        for s in specs:
            if s.column not in record:
                raise _bad(
                    f"missing column {s.column!r} (the model takes {', '.join(x.column for x in specs)})",
                    i,
                    s.column,
                )
            value = record[s.column]
            if isinstance(value, (dict, list)) and window is None:
                raise _bad(
                    f"column {s.column!r}: expected a single value, got {type(value).__name__}", i, s.column
                )
            if window is not None and not (isinstance(value, list) and len(value) == window):
                raise _bad(f"column {s.column!r}: expected a window of {window} values (a list)", i, s.column)
            columns[s.name].append(value)
    out = {}
    for s in specs:
        values = columns[s.name]
        try:
            if window is None:
                out[s.name] = runtime.column_values(model.meta, s, values, "request")
            else:
                flat = runtime.column_values(model.meta, s, [v for w in values for v in w], "request")
                out[s.name] = flat.reshape(len(values), window)
        except runtime.BadInput as exc:
            row = exc.row - 1 if isinstance(exc.row, int) else exc.row
            if window is not None and isinstance(row, int):
                row = row // window
            raise _bad(str(exc).removeprefix("request: "), row, s.column) from None
    del np
    return out


def _from_csv(model: Model, body: bytes, max_rows: int) -> tuple[dict, int]:
    import csv
    import io

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("the CSV body is not UTF-8 text") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise _bad("the CSV body has a header but no rows (or nothing at all)")
    if len(rows) > max_rows:
        raise Rejected(413, f"{len(rows)} rows in one request; at most {max_rows}")
    if model.meta["kind"] == "timeseries":  # the series: a forecast from each window in it
        length = model.meta["window"]["length"]
        if len(rows) < length:
            raise _bad(f"{len(rows)} rows; a forecast needs a window of {length} rows")
        records = [
            {
                s.column: [r.get(s.column) for r in rows[i : i + length]]
                for s in model.specs
                if s.column in rows[0]
            }
            for i in range(len(rows) - length + 1)
        ]
        missing = [s.column for s in model.specs if s.column not in rows[0]]
        if missing:
            raise _bad(f"missing column {missing[0]!r}", 0, missing[0])
        return _records(model, records), len(records)
    if model.meta["kind"] not in ("table",):
        raise _bad("CSV bodies are for table and series models; send images as JSON or files")
    return _records(model, rows), len(rows)


def _pixels(model: Model, payload: list) -> dict:
    import numpy as np

    (spec,) = model.specs
    try:
        x = np.asarray(payload, dtype="float64")
    except (ValueError, TypeError):
        raise _bad(f"expected arrays of numbers of shape {spec.shape} per instance") from None
    if list(x.shape[1:]) != spec.shape:
        raise _bad(f"wrong image size: {list(x.shape[1:])} per instance; the model takes {spec.shape}", 0)
    if not np.isfinite(x).all():
        raise _bad(
            "pixels must be finite numbers", int(np.argmax(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        )
    if np.issubdtype(np.dtype(spec.dtype), np.integer):
        info = np.iinfo(spec.dtype)
        if x.min() < info.min or x.max() > info.max:
            raise _bad(f"pixels must lie in {info.min}–{info.max} ({spec.dtype})")
    return {spec.name: x.astype(spec.dtype)}


def _images_b64(payload: list) -> Any:
    import numpy as np

    out = []
    for i, item in enumerate(payload):
        data = item.get("b64") if isinstance(item, dict) else None
        if not isinstance(data, str):
            raise _bad('expected {"b64": "<base64 of an image file>"} per instance', i)
        try:
            out.append(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise _bad("not valid base64", i, "b64") from None
    return np.asarray(out, dtype=object)


def answer(model: Model, outputs: dict) -> list[dict]:
    """Model outputs → one JSON object per row."""
    predictions = outputs["prediction"].reshape(-1)
    probs = outputs.get("probabilities")
    if model.meta["task"] == "classification":
        labels = runtime.labels(predictions)
        classes = [str(c) for c in model.meta["classes"]]
        return [
            {"prediction": label, "probabilities": dict(zip(classes, map(float, row), strict=True))}
            for label, row in zip(labels, probs, strict=True)
        ]
    return [{"prediction": float(v)} for v in predictions]


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
        import numpy as np

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
def app(
    model: Model,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    max_body: int = MAX_BODY,
    max_rows: int = MAX_ROWS,
):
    runtime.need("fastapi", "serve")
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_):
        state["batcher"] = Batcher(model, max_batch, max_wait_ms)
        state["batcher"].start()
        state["started"] = time.time()
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
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @api.exception_handler(Exception)
    async def internal(_, exc: Exception):  # a bug of dlcli's: said in one line, never a traceback
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @api.get("/health")
    async def health() -> dict:
        return {"status": "ok", "runtime": model.runtime}

    @api.get("/metadata")
    async def metadata() -> dict:
        batcher = state.get("batcher")
        return {
            "run": model.info["run"],
            "runtime": model.runtime,
            "task": model.meta["task"],
            "kind": model.meta["kind"],
            "inputs": [
                {"column": s.column, "type": s.role, "dtype": s.dtype, "shape": s.shape} for s in model.specs
            ],
            "classes": model.meta["classes"],
            "window": model.meta["window"],
            "metrics": model.info["metrics"],
            "versions": model.info["versions"],
            "limits": {
                "max_batch": max_batch,
                "max_wait_ms": max_wait_ms,
                "max_body": max_body,
                "max_rows": max_rows,
            },
            "served": {"calls": batcher.calls, "rows": batcher.rows, "pending": batcher.pending}
            if batcher
            else None,
        }

    @api.post(
        "/predict",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]
                        }
                    },
                    "text/csv": {"schema": {"type": "string"}},
                    "multipart/form-data": {"schema": {"type": "object"}},
                },
                "required": True,
            }
        },
    )
    async def predict(request: Request) -> dict:
        content_type = request.headers.get("content-type", "application/json")
        if content_type.startswith("multipart/form-data"):
            _declared_size(request, max_body)
            inputs, n = await _uploaded(model, request, max_rows, max_body)
        else:
            inputs, n = parse(model, await _body(request, max_body), content_type, max_rows)
        try:
            outputs = await state["batcher"].predict(inputs, n)
        except Exception as exc:  # noqa: BLE001 - e.g. an image that does not decode
            raise _bad(
                f"the model could not run on this input ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
            ) from None
        return {"predictions": answer(model, outputs)}

    return api


def _declared_size(request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"the body is {declared} bytes; at most {limit}")


async def _body(request, limit: int) -> bytes:
    """The body, read up to `limit` bytes (413 beyond: declared or as it streams in)."""
    _declared_size(request, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded(model: Model, request, max_rows: int, max_body: int):
    """Image files uploaded as multipart form fields (any field names), in order."""
    import numpy as np

    if model.meta["kind"] != "image_files":
        raise _bad("file uploads are for models of image files; send JSON or CSV")
    try:
        form = await request.form(max_files=max_rows, max_fields=max_rows, max_part_size=max_body)
    except Exception as exc:  # noqa: BLE001 - starlette's multipart errors (malformed, too many parts)
        raise _bad(f"the multipart body cannot be read ({exc})") from None
    files = [v for _, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        raise _bad("no file in the form")
    data = [await f.read() for f in files]
    return {model.specs[0].name: np.asarray(data, dtype=object)}, len(data)


def run(model: Model, host: str, port: int, max_batch: int, max_wait_ms: float, ready=None) -> None:
    """Serve until SIGTERM or SIGINT; uvicorn then stops taking connections and finishes the requests
    in flight before returning."""
    runtime.need("uvicorn", "serve")
    import uvicorn

    config = uvicorn.Config(
        app(model, max_batch, max_wait_ms),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets)
            ready()

        server.startup = startup
    import signal

    # uvicorn re-raises the SIGTERM it drained on after its graceful shutdown (the process would die of
    # it, exit -15): the handler it restores is this one, which lets `dlcli serve` exit 0
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
