"""The light model `dlcli train` leaves in every run it can: `export/model.onnx` (else `model.tflite`),
written and checked on the test rows exactly as `dlcli export` writes and checks it, so that `predict`
and `serve` answer without importing TensorFlow. Where it cannot be written (the option is off, the
export extra is missing, text or image files inside the model, a converter's failure) run.json says
why, once, and predict says it again when it goes through TensorFlow (artifacts/lite.py).

>>> light.choice(config)          # before training: "auto", "onnx", "tflite" or "off"
>>> light.write(run_dir, config, asked)  # after it: run.json's `light_model` entry
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from dlcli.artifacts import runtime
from dlcli.artifacts.saved import load_preprocessing
from dlcli.runs import record
from dlcli.utils.errors import DataError, DlcliError

#: The machine's default for configs that leave train.light_model out (`off` on a CI that never predicts).
ENV = "DLCLI_LIGHT_MODEL"
CHOICES = ("auto", "onnx", "tflite", "off")
#: What each format needs installed (the `export` extra).
MODULES = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "tflite": ("ai_edge_litert",)}


def choice(config) -> str:
    """train.light_model, else $DLCLI_LIGHT_MODEL, else auto; a format named outright needs its
    runtime installed (said before training, not after it)."""
    asked = config.train.light_model
    if asked is None:
        asked = os.environ.get(ENV, "").strip().lower() or "auto"
        if asked not in CHOICES:
            raise DataError(
                f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(CHOICES)}; unset it for auto"
            )
    for module in MODULES.get(asked, ()):
        runtime.need(module, "export")
    return asked


def write(run_dir: Path, config, asked: str) -> dict:
    """The finished run's light model as `choice(config)` asked for it (before training), and run.json's
    `light_model` entry: `{"format", "path", "seconds"}` when written, `{"format": None, "reason",
    "seconds"}` when not."""
    clock = time.perf_counter()
    if asked == "off":
        where = "train.light_model" if config.train.light_model == "off" else f"${ENV}"
        entry = {"format": None, "reason": f"{where} is off"}
    else:
        entry = _first_written(run_dir, ["onnx", "tflite"] if asked == "auto" else [asked])
    entry["seconds"] = round(time.perf_counter() - clock, 3)
    record.amend(run_dir, light_model=entry)
    return entry


def _first_written(run_dir: Path, formats: list[str]) -> dict:
    from dlcli.export import export  # TensorFlow: imported by now, at the end of training

    prep = load_preprocessing(run_dir)
    refused = export.unsupported(prep) or export.lacking(prep, " or ".join(formats))
    if refused:  # said once for every format
        return {"format": None, "reason": refused}
    reasons: dict[str, str] = {}
    for fmt in formats:
        if not all(importlib.util.find_spec(m) for m in MODULES[fmt]):
            reasons[fmt] = "the export extra is not installed (pip install 'dlcli[export]')"
            continue
        try:
            meta = export.export(run_dir, fmt)
        except DlcliError as exc:
            reasons[fmt] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a converter's own failure never fails a trained run
            reasons[fmt] = f"the {fmt} converter failed ({type(exc).__name__}: {str(exc)[:300]})"
        else:
            return {"format": fmt, "path": f"export/{Path(meta['path']).name}"}
    if len(set(reasons.values())) == 1:
        return {"format": None, "reason": next(iter(reasons.values()))}
    return {"format": None, "reason": "; ".join(f"{fmt}: {why}" for fmt, why in reasons.items())}
