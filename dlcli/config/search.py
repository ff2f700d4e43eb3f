"""The `search:` section of a config: which keys `dlcli tune` varies, each with a distribution, read
and checked without TensorFlow (so `dlcli validate` checks it too).

    search:
      parameters:
        optimizer.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
        model.layers.0.Dense.units: {choice: [32, 64, 128]}
        model.layers.1.Dropout.rate: {uniform: [0.0, 0.5]}
        train.batch_size: {int: [32, 256], step: 32}
      metric: val_loss
      trials: 30

Every path is a key of the config as `-o` names it. A distribution is checked for its own form
(bounds in order, a positive low bound for a log scale, a non-empty choice), and then the config is
validated with each extreme value (both bounds, every choice) in place: a path that is not a key, or
a value the key cannot take, is reported at the search key's line before any trial starts.

    >>> space = parse(config.search.parameters, config.where)
    >>> params = sample(trial, space)            # an optuna trial
    >>> overrides(params)                         # ["optimizer.learning_rate=0.0031", ...]
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from dlcli.config.keypaths import apply_overrides, locate
from dlcli.utils.errors import ConfigError

KINDS = ("loguniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched key and its distribution."""

    path: str
    kind: str  # loguniform | uniform | int | choice
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def extremes(self) -> list[tuple[str, Any]]:
        """The values that bound what can be sampled, with what each is: both bounds, every choice."""
        if self.kind == "choice":
            return [("choice", c) for c in self.choices]
        return [("low bound", self.low), ("high bound", self.high)]

    def grid(self) -> list:
        """The values a grid search tries."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step:
            count = int(round((self.high - self.low) / self.step))
            return [round(self.low + i * self.step, 12) for i in range(count + 1)]
        raise ConfigError(
            f"{self.path}: a grid search needs values it can list: give this {self.kind} distribution a "
            "step, or use choice"
        )


def parse(parameters: dict[str, dict], where) -> list[Param]:
    """Every searched key's distribution, or a ConfigError naming each bad one at its line."""
    problems, space = [], []
    for path, spec in parameters.items():
        try:
            space.append(_param(path, spec))
        except ValueError as exc:
            problems.append(f"{where('search', 'parameters', path)}: {exc}")
    if problems:
        raise ConfigError(problems)
    return space


def _param(path: str, spec: dict) -> Param:
    kinds = [k for k in spec if k in KINDS]
    extra = [k for k in spec if k not in (*KINDS, "step", "log")]
    if len(kinds) != 1 or extra:
        from dlcli.config.checks import suggest

        got = ", ".join(map(str, spec)) or "nothing"
        hint = "".join(suggest(str(k), [*KINDS, "step", "log"]) for k in extra[:1])
        raise ValueError(
            f"expected one distribution ({', '.join(KINDS)}), with step or log where it applies; got "
            f"{got}{hint}"
        )
    kind, value = kinds[0], spec[kinds[0]]
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise ValueError(f"choice: expected a non-empty list of values, got {value!r}")
        if any(isinstance(v, dict | list) for v in value):
            raise ValueError("choice: each value must be a number, text, true/false or null")
        if len({json.dumps(v) for v in value}) < len(value):
            raise ValueError(f"choice: {value!r} repeats a value")
        if set(spec) != {"choice"}:
            raise ValueError("choice takes no step or log")
        return Param(path, kind, choices=tuple(value))
    numbers = isinstance(value, list) and len(value) == 2
    numbers = numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not numbers:
        raise ValueError(f"{kind}: expected [low, high] (two numbers), got {value!r}")
    low, high = value
    if not low < high:
        raise ValueError(f"{kind}: the low bound {low!r} must be below the high bound {high!r}")
    step, log = spec.get("step"), spec.get("log", kind == "loguniform")
    if kind == "int" and not all(isinstance(v, int) for v in value):
        raise ValueError(f"int: expected whole-number bounds, got {value!r}")
    if log is not True and log is not False:
        raise ValueError(f"log: expected true or false, got {log!r}")
    if kind == "loguniform" and "log" in spec:
        raise ValueError("loguniform is already on a log scale: remove log, or use uniform")
    if log and low <= 0:
        raise ValueError(f"{kind}: a log scale needs a positive low bound, got {low!r}")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
            raise ValueError(f"step: expected a positive number, got {step!r}")
        if log or kind == "loguniform":
            raise ValueError("step does not go with a log scale: remove one")
        if kind == "int" and not isinstance(step, int):
            raise ValueError(f"step: an int distribution takes a whole-number step, got {step!r}")
    return Param(path, kind, low, high, step, bool(log))


def problems(raw: dict, marks, path, validate) -> list[str]:
    """What is wrong with `raw`'s search section: each distribution's form, then the config validated
    with every extreme value in place (`validate(raw, marks, path)`, the search section left out)."""

    section = raw.get("search")
    parameters = section.get("parameters") if isinstance(section, dict) else None
    if not isinstance(parameters, dict):
        return []  # the schema says what is wrong with it

    def where(*key):
        return locate(tuple(key), marks, str(path))

    try:
        space = parse(parameters, where)
    except ConfigError as exc:
        return list(exc.problems)
    found = []
    for param in space:
        for what, value in param.extremes():
            trial_raw = copy.deepcopy({k: v for k, v in raw.items() if k != "search"})
            trial_marks = dict(marks)
            try:
                apply_overrides(trial_raw, trial_marks, [override(param.path, value)])
                validate(trial_raw, trial_marks, path)
            except ConfigError as exc:
                found.append(rejected(where("search", "parameters", param.path), param, what, value, exc))
                break
    return found


#: What a message about a path (not a value) says: the key is not there to set.
NOT_A_KEY = ("unknown key", "has no argument", "index out of range", "is a value, not a section")


def rejected(where: str, param: Param, what: str, value, exc: ConfigError) -> str:
    """The message for an extreme value the config does not take, or for a path that is no key."""
    given = f"-o {override(param.path, value)}: "
    reasons = "; ".join(p.removeprefix("-o: ").removeprefix(given) for p in exc.problems)
    if any(marker in reasons for marker in NOT_A_KEY):
        return f"{where}: not a key of this config: {reasons}"
    return f"{where}: {param.path} cannot take its {what} {value!r}: {reasons}"


def override(path: str, value) -> str:
    """`path=value` as `-o` reads it (the value as YAML: JSON is YAML)."""
    return f"{path}={json.dumps(value)}"


def sample(trial, space: list[Param]) -> dict[str, Any]:
    """One value per searched key from an Optuna trial."""
    out = {}
    for p in space:
        if p.kind == "choice":
            out[p.path] = trial.suggest_categorical(p.path, list(p.choices))
        elif p.kind == "int":
            out[p.path] = trial.suggest_int(p.path, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            step = None if p.step is None else float(p.step)
            out[p.path] = trial.suggest_float(p.path, float(p.low), float(p.high), step=step, log=p.log)
    return out


def overrides(params: dict[str, Any]) -> list[str]:
    return [override(k, v) for k, v in params.items()]
