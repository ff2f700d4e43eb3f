"""The model's outputs: one per target column. `data.target: [a, b]` makes a multi-task model, each
target its own output with its own loss, metrics, loss weight and head of layers:

    data: {target: [median_house_value, ocean_proximity]}
    loss: {median_house_value: mse, ocean_proximity: sparse_categorical_crossentropy}
    metrics: {median_house_value: [mae], ocean_proximity: [accuracy]}
    loss_weights: {ocean_proximity: 0.5}
    model:
      layers: [...]                       # shared
      heads:                              # one list per target, each ending in its output layer
        median_house_value: [{Dense: {units: 1}}]
        ocean_proximity: [{Dense: {units: 5, activation: softmax}}]

Keras names each output's quantities `<output>_<metric>` (`val_ocean_proximity_accuracy`); monitors
name them so. Checked here without Keras, with every other config problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dlcli.config.checks import (
    CLASSIFICATION_LOSSES,
    Problem,
    get_path,
    label_mode,
    monitors,
    output_problems,
    several_targets,
    suggest,
)

#: What several targets cannot be combined with yet, and why.
NOT_WITH_SEVERAL = (
    (("preprocessing", "window"), "a time series forecasts one column"),
    (
        ("train", "class_weight"),
        "class weights are per class of one target; Keras takes none for several outputs",
    ),
)


@dataclass(frozen=True)
class Output:
    """One target: its column, the model output's name, its loss and metrics, what they mean."""

    column: str
    name: str
    loss: str
    metrics: tuple[str, ...]
    weight: float = 1.0

    @property
    def task(self) -> str:
        return "classification" if self.loss in CLASSIFICATION_LOSSES else "regression"

    @property
    def label_mode(self) -> str | None:
        return label_mode(self.loss)


def output_name(column: str) -> str:
    """The model output of a target column: its name with characters Keras refuses as `_`."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", column)
    return name if name and name[0].isalpha() else f"output_{name}"


def problems(raw: dict) -> list[Problem]:
    """Several targets: each one's loss, metrics, weight and head, the monitors, and what is not yet
    possible with them. A list of one target, or a dict loss for one, is refused too."""
    target = get_path(raw, "data", "target")
    targets = several_targets(raw)
    if targets is None:
        return _single(raw, target)
    problems: list[Problem] = []
    if len(set(targets)) != len(targets):
        problems.append((("data", "target"), f"each target is listed once (got {', '.join(targets)})"))
    for key, why in NOT_WITH_SEVERAL:
        if get_path(raw, *key) not in (None, False, "auto"):
            problems.append(
                (key, f"several targets (data.target) are not possible here yet: {why}; remove it")
            )
    return problems + _per_target(raw, targets) + _heads(raw, targets) + monitor_problems(raw, targets)


def _single(raw: dict, target: Any) -> list[Problem]:
    if isinstance(target, list) and len(target) == 1:
        return [(("data", "target"), f"one target is a column name: write target: {target[0]}")]
    problems: list[Problem] = []
    for key in ("loss", "metrics", "loss_weights"):
        if isinstance(raw.get(key), dict):
            problems.append(
                (
                    (key,),
                    f"{key} per target is for several targets (data.target: [a, b]); with one, give it "
                    "directly",
                )
            )
    if get_path(raw, "model", "heads") is not None:
        problems.append(
            (
                ("model", "heads"),
                "heads are one per target (data.target: [a, b]); with one, end model.layers with the output",
            )
        )
    return problems


def _keyed(raw: dict, key: str, targets: list[str], required: bool) -> list[Problem]:
    value = raw.get(key)
    if not isinstance(value, dict):
        return []
    problems: list[Problem] = [
        (
            (key, name),
            f"{name!r} is not a target (the targets: {', '.join(targets)}){suggest(str(name), targets)}",
        )
        for name in value
        if name not in targets
    ]
    missing = [t for t in targets if t not in value]
    if required and missing:
        problems.append(
            ((key,), f"every target needs its {key}: add {', '.join(f'{t}: ...' for t in missing)}")
        )
    return problems


def _per_target(raw: dict, targets: list[str]) -> list[Problem]:
    loss = raw.get("loss")
    problems: list[Problem] = []
    if isinstance(loss, str):
        example = ", ".join(f"{t}: ..." for t in targets)
        problems.append((("loss",), f"with several targets each needs its own loss: loss: {{{example}}}"))
    problems += _keyed(raw, "loss", targets, required=True) + _keyed(raw, "metrics", targets, False)
    problems += _keyed(raw, "loss_weights", targets, False)  # their names and values: checks.py, pydantic
    return problems


def _heads(raw: dict, targets: list[str]) -> list[Problem]:
    heads, key = get_path(raw, "model", "heads"), ("model", "heads")
    if not isinstance(heads, dict):
        example = "; ".join(f"{t}: [{{Dense: {{units: ...}}}}]" for t in targets)
        return [
            (
                ("model",),
                f"several targets need a head each, ending in its output layer: model.heads: {{{example}}}",
            )
        ]
    problems: list[Problem] = [
        (
            (*key, name),
            f"{name!r} is not a target (the targets: {', '.join(targets)}){suggest(str(name), targets)}",
        )
        for name in heads
        if name not in targets
    ]
    problems += [
        (
            key,
            f"the output of target {t!r} is reached by no head: add model.heads.{t}, ending in its "
            "output layer",
        )
        for t in targets
        if t not in heads
    ]
    loss = raw.get("loss") if isinstance(raw.get("loss"), dict) else {}
    for name in targets:
        if name in heads and isinstance(loss.get(name), str):
            problems += output_problems(loss[name], heads[name], (*key, name))
    return problems


def reported(raw: dict, targets: list[str]) -> list[str]:
    """What a model of several outputs reports per epoch, as Keras names it."""
    metrics = raw.get("metrics")
    names = ["loss"]
    for target in targets:
        listed = metrics.get(target) if isinstance(metrics, dict) else metrics
        listed = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
        names += [f"{output_name(target)}_{m}" for m in ["loss", *listed]]
    return names


def monitor_problems(raw: dict, targets: list[str]) -> list[Problem]:
    return monitors(raw, reported(raw, targets))


def outputs(loss: str | dict, metrics: list | dict, weights: dict | None, targets: list[str]) -> list[Output]:
    """The outputs of a validated config, in data.target's order."""
    if isinstance(loss, str):
        return [Output(targets[0], output_name(targets[0]), loss, tuple(metrics))]
    return [
        Output(
            t,
            output_name(t),
            loss[t],
            tuple(metrics.get(t, []) if isinstance(metrics, dict) else metrics),
            float((weights or {}).get(t, 1.0)),
        )
        for t in targets
    ]
