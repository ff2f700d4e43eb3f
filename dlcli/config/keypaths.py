"""Key paths in a config (`train.early_stopping.patience`): where each stands in the file
(FILE:LINE:COL, or `-o` for one set on the command line), setting one from `-o key.path=value`, and
pydantic's errors turned into one message per key in dlcli's words.

Nothing here knows the config's models: the model to walk is passed in, so a run's saved state can
use the same messages.
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from dlcli.config.checks import suggest
from dlcli.utils.errors import ConfigError
from dlcli.utils.yamlio import Marks, safe_load, where


def apply_overrides(raw: dict, marks: Marks, overrides: list[str] | tuple[str, ...]) -> None:
    """Set `key.path=value` items into `raw`; values are read as safe YAML, never evaluated."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-o {item}: expected key.path=value, e.g. -o train.epochs=3")
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
        try:
            parsed = safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"-o {item}: the value is not valid YAML ({exc})") from None
        node: Any = raw
        for depth, part in enumerate(parts[:-1]):
            done = ".".join(map(str, parts[: depth + 1]))
            if isinstance(node, list) and not _has(node, part):
                raise ConfigError(_out_of_range(item, done, node))
            child = node[part] if _has(node, part) else None
            if child is None:
                child = {}
                node[part] = child
                marks[tuple(parts[: depth + 1])] = (0, 0)  # a section the command line made
            if not isinstance(child, dict | list):
                raise ConfigError(f"-o {item}: {done} is a value, not a section; cannot set {key} inside it")
            node = child
        if isinstance(node, list) and not _has(node, parts[-1]):
            raise ConfigError(_out_of_range(item, key, node))
        node[parts[-1]] = parsed
        marks[tuple(parts)] = (0, 0)  # (0, 0) marks a value set on the command line


def _out_of_range(item: str, key: str, items: list) -> str:
    return (
        f"-o {item}: {key}: index out of range (the list has {len(items)} item(s)"
        + (f", numbered 0 to {len(items) - 1}" if items else "")
        + "); an override can change an item, not add one: add it in the file"
    )


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node


#: How pydantic names the branches of a union in an error's location (`int | Literal["auto"]`).
_BRANCH = re.compile(r"^(constrained-)?(int|float|str|bool|none|(literal|list|dict|tuple)\[.*\])$")


def problem_lines(errors: list[dict], model: type[BaseModel]) -> list[str]:
    """`key.path: message`, one per key, for pydantic's errors on any of dlcli's strict models (the
    config, a run's saved preprocessing state)."""
    merged = merge_union_branches(errors, model)
    return [f"{'.'.join(map(str, loc)) or '(top level)'}: {msg}" for loc, msg in merged]


def merge_union_branches(errors: list[dict], model: type[BaseModel]) -> list[tuple[tuple, str]]:
    """One message per key: `int | 'auto'` fails as "should be an integer, or 'auto'", not twice."""
    merged: dict[tuple, list[dict]] = {}
    for err in errors:
        loc = _clean_loc(err["loc"])
        if err["type"] != "extra_forbidden" and loc and _BRANCH.match(str(loc[-1])):
            loc = loc[:-1]
        merged.setdefault(loc, []).append(err)
    out = []
    for loc, group in merged.items():
        if len(group) == 1:
            out.append((loc, _message(group[0], model)))
            continue
        wants = [e["msg"].removeprefix("Input should be ") for e in group]
        hint = next((h for h in map(_yaml_boolean, group) if h), "")
        out.append((loc, f"Input should be {', or '.join(wants)} (got {group[0].get('input')!r}){hint}"))
    return out


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds "function-after[...]" steps for validators; they are not keys a user wrote
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def locate(loc: tuple, marks: Marks, filename: str | None) -> str:
    """`FILE:LINE:COL: key.path`, or `-o: key.path` for a value set on the command line."""
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    line_col = nearest_mark(loc, marks)
    if line_col == (0, 0):
        return f"-o: {dotted}"
    if filename is None:
        return dotted
    line, column = line_col or (None, None)
    return f"{where(filename, line=line, column=column)}: {dotted}"


def _message(err: dict, model: type[BaseModel]) -> str:
    loc = _clean_loc(err["loc"])
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1], model)
        msg = f"unknown key {loc[-1]!r}{suggest(str(loc[-1]), allowed)}"
        if allowed:
            msg += f" (allowed: {', '.join(allowed)})"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        msg = f"{msg} (got {err.get('input')!r}){suggest(str(err.get('input')), choices)}"
    else:
        msg = f"{msg} (got {err.get('input')!r})"
    return msg + _yaml_boolean(err)


def _yaml_boolean(err: dict) -> str:
    """Why a text key got true or false, when it did."""
    if isinstance(err.get("input"), bool) and err["type"] in ("string_type", "literal_error"):
        return (
            "; YAML 1.1 reads an unquoted yes, no, on, off, y or n as true or false: quote the value "
            f"(e.g. '{'Yes' if err['input'] else 'No'}') to keep it as text"
        )
    return ""


def nearest_mark(loc: tuple, marks: Marks) -> tuple[int, int] | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return None


def _fields_at(loc: tuple, root: type[BaseModel]) -> list[str]:
    """The keys a section accepts, found by walking the models from `root` along `loc`."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = unwrap(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is not None:
        inner = [a for a in get_args(annotation) if a is not type(None)]
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        annotation = models[0] if models else inner[0]
    return annotation
