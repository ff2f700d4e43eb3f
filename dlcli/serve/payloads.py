"""Request bodies → a served model's raw inputs, and its outputs → JSON, for `dlcli serve`.

JSON records, `{"instances": […]}`, CSV, pixel arrays, base64 or uploaded image files: each parsed
as data only (json, csv, base64), checked against the model's inputs, and refused with the field and
the reason (422) or a limit (413). NumPy and the standard library only.
"""

import base64
import binascii
import csv
import io
import json
from typing import Any

import numpy as np

from dlcli.artifacts import runtime
from dlcli.utils.arrays import BadPixels, check_pixels

#: Largest request body read (bytes), and rows per request: beyond them a request gets 413.
MAX_BODY = 16 * 1024 * 1024
MAX_ROWS = 10_000


class Rejected(Exception):
    """A request the server refuses: the HTTP status and FastAPI-style details."""

    def __init__(self, status: int, detail: list[dict] | str):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def bad(msg: str, *loc) -> Rejected:
    return Rejected(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


# ---- requests → inputs -----------------------------------------------------------------------------
def parse(model, body: bytes, content_type: str, max_rows: int) -> tuple[dict, int]:
    """A request body → (the model's inputs, number of rows); Rejected with the field and the reason."""
    kind = runtime.kind_of(model.meta)
    if content_type.startswith("text/csv"):
        return _from_csv(model, body, max_rows)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the body is not valid JSON ({exc})") from None
    except RecursionError:  # json gives up at Python's recursion limit; nothing deeper is data of ours
        raise bad(
            "the body nests lists or objects too deeply; send records of values, a window list per "
            "column, or an image's rows of pixels"
        ) from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    elif isinstance(payload, dict) and not kind.images:
        payload = [payload]  # one record
    if not isinstance(payload, list) or not payload:
        raise bad('expected a non-empty JSON list of records, or {"instances": [...]}')
    if len(payload) > max_rows:
        raise Rejected(413, f"{len(payload)} instances in one request; at most {max_rows}")
    if kind.arrays:
        return _pixels(model, payload), len(payload)
    if kind.reads_files:
        return {model.specs[0].name: _images_b64(payload)}, len(payload)
    return _records(model, payload), len(payload)


def _records(model, records: list) -> dict:
    specs = model.specs
    window = model.meta["window"]["length"] if runtime.kind_of(model.meta).windowed else None
    columns: dict[str, list] = {s.name: [] for s in specs}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise bad(f"instance {i} is {type(record).__name__}, expected an object of columns", i)
        for s in specs:
            if s.column not in record:
                raise bad(
                    f"missing column {s.column!r} (the model takes {', '.join(x.column for x in specs)})",
                    i,
                    s.column,
                )
            value = record[s.column]
            if isinstance(value, (dict, list)) and window is None and s.role != "image":
                raise bad(
                    f"column {s.column!r}: expected a single value, got {type(value).__name__}", i, s.column
                )
            if window is not None and not (isinstance(value, list) and len(value) == window):
                raise bad(f"column {s.column!r}: expected a window of {window} values (a list)", i, s.column)
            columns[s.name].append(value)
    out = {}
    for s in specs:
        values = columns[s.name]
        if s.role == "image":  # a column of image files: each row's {"b64": ...}
            out[s.name] = _images_b64(values, s.column)
            continue
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
            raise bad(str(exc).removeprefix("request: "), row, s.column) from None
    return out


def _from_csv(model, body: bytes, max_rows: int) -> tuple[dict, int]:

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("the CSV body is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise bad(f"the CSV body cannot be read (line {reader.line_num}: {exc})") from None
    if not rows:
        raise bad("the CSV body has a header but no rows (or nothing at all)")
    width = len(reader.fieldnames or [])
    for i, row in enumerate(rows):  # as predict refuses a ragged file: never a guess at the columns
        extra, fields = row.get(None), sum(v is not None for k, v in row.items() if k is not None)
        if extra or fields < width:
            raise bad(
                f"line {i + 2}: {fields + len(extra or [])} fields where the header has {width}; "
                "fix the row (a value cut short or an extra separator)",
                i,
            )
    if len(rows) > max_rows:
        raise Rejected(413, f"{len(rows)} rows in one request; at most {max_rows}")
    kind = runtime.kind_of(model.meta)
    if kind.windowed:  # the series: a forecast from each window in it
        length = model.meta["window"]["length"]
        if len(rows) < length:
            raise bad(f"{len(rows)} rows; a forecast needs a window of {length} rows")
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
            raise bad(f"missing column {missing[0]!r}", 0, missing[0])
        return _records(model, records), len(records)
    if kind.images:
        raise bad("CSV bodies are for table and series models; send images as JSON or files")
    return _records(model, rows), len(rows)


def _pixels(model, payload: list) -> dict:
    (spec,) = model.specs
    try:
        x = check_pixels(payload, spec.shape, spec.dtype)
    except BadPixels as exc:
        raise bad(str(exc), *([] if exc.index is None else [exc.index])) from None
    return {spec.name: x.astype(spec.dtype)}


def _images_b64(payload: list, column: str | None = None) -> Any:
    """Each instance's (or, `column`: each record's value in that column) {"b64": ...} as bytes."""
    at = () if column is None else (column,)
    out = []
    for i, item in enumerate(payload):
        data = item.get("b64") if isinstance(item, dict) else None
        if not isinstance(data, str):
            raise bad('expected {"b64": "<base64 of an image file>"} per instance', i, *at)
        try:
            out.append(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise bad("not valid base64", i, *at, "b64") from None
    return np.asarray(out, dtype=object)


def answer(model, outputs: dict) -> list[dict]:
    """Model outputs → one JSON object per row; several targets: per row, each target's object by its
    column (`{"price": {"prediction": ...}, "city": {"prediction": ..., "probabilities": {...}}}`)."""
    decoded = runtime.decoded(model.meta, outputs)
    if not model.meta.get("targets"):
        ((_, predictions, probs, classes),) = decoded
        return _rows(predictions, probs, classes)
    columns = [column for column, *_ in decoded]
    per_target = [_rows(predictions, probs, classes) for _, predictions, probs, classes in decoded]
    return [dict(zip(columns, row, strict=True)) for row in zip(*per_target, strict=True)]


def _rows(predictions, probs, classes) -> list[dict]:
    """One target's answer per row: its prediction, and each class's probability."""
    if probs is None:
        return [{"prediction": float(v)} for v in predictions]
    names = [str(c) for c in classes]
    return [
        {"prediction": label, "probabilities": dict(zip(names, map(float, row), strict=True))}
        for label, row in zip(predictions, probs, strict=True)
    ]


def declared_size(declared: bytes | None, limit: int) -> None:
    """413 for a Content-Length header (its raw value) over `limit`, before the body is read."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"the body is {declared.decode()} bytes; at most {limit}")


async def body(receive, limit: int) -> bytes:
    """The body from ASGI's `receive`, read up to `limit` bytes (413 beyond, as it streams in)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # a truncated body: nobody is left to answer
            raise Rejected(400, "the client went away before the whole body arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def uploaded(model, request, max_rows: int, max_body: int):
    """Image files uploaded as multipart form fields (any field names), in order."""

    if not runtime.kind_of(model.meta).reads_files:
        raise bad("file uploads are for models of image files; send JSON or CSV")
    try:
        form = await request.form(max_files=max_rows, max_fields=max_rows, max_part_size=max_body)
    except Exception as exc:  # noqa: BLE001 - starlette's multipart errors (malformed, too many parts)
        raise bad(f"the multipart body cannot be read ({exc})") from None
    files = [v for _, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        raise bad("no file in the form")
    data = [await f.read() for f in files]
    return {model.specs[0].name: np.asarray(data, dtype=object)}, len(data)
