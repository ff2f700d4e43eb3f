"""The shape of one split's metrics in metrics.json, read in one place: one target's numbers at the
top, or with several targets the total `loss` and each target's numbers under its output's name.
Imports nothing heavy: `dlcli --help` loads it with the console."""

from __future__ import annotations

#: The parts of one target's metrics that are not numbers.
NOT_NUMBERS = ("per_class", "confusion_matrix")


def flatten(values: dict, sep: str = ".", prefix: str = "") -> dict[str, float]:
    """`metric` → number; several targets' as `<output><sep><metric>`."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
        elif isinstance(value, dict) and key not in NOT_NUMBERS:
            out.update(flatten(value, sep, f"{prefix}{key}{sep}"))
    return out


def by_output(values: dict) -> dict[str, dict]:
    """Each target's metrics by output name; one target's under ""."""
    nested = {k: v for k, v in values.items() if isinstance(v, dict) and k not in NOT_NUMBERS}
    return nested or {"": values}
