"""The export module (a tf.Module whose `serve` takes raw inputs) written as a SavedModel, and that
SavedModel converted: to TFLite builtins (LiteRT) and to ONNX (tf2onnx, then onnxruntime's quantizers).

>>> write_saved_model(module, folder); write_onnx(folder, Path("model.onnx"), None, meta)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from dlcli.artifacts import runtime
from dlcli.utils.errors import RunError

#: ONNX opset tf2onnx writes: the newest it supports (1.17), which onnxruntime runs.
ONNX_OPSET = 18


def write_saved_model(module, folder: Path) -> None:
    import tensorflow as tf

    tf.saved_model.save(
        module, str(folder), signatures={"serving_default": module.serve.get_concrete_function()}
    )


def write_tflite(saved_model: Path, path: Path, quantize: str | None, one_row=None, examples=None) -> None:
    """The SavedModel's signature as TFLite builtins only (LiteRT's runtime has no TensorFlow ops). A
    recurrent layer's loop converts only with a static batch: then `one_row()`'s module (one row per
    call) is converted instead. `examples()` (int8): the representative inputs, one row per dict,
    from which the converter calibrates every tensor's int8 range."""
    try:
        path.write_bytes(_tflite_bytes(saved_model, quantize, examples))
        return
    except Exception as exc:  # noqa: BLE001 - the converter's errors are many and internal
        first = str(exc)
        if one_row is None or "TensorListReserve" not in first:
            raise RunError(f"TFLite cannot convert this model: {_first_error(first)}") from None
    fixed = saved_model.with_name("saved_model_one_row")
    write_saved_model(one_row(), fixed)
    try:
        path.write_bytes(_tflite_bytes(fixed, quantize, examples))
    except Exception as exc:  # noqa: BLE001
        raise RunError(f"TFLite cannot convert this model: {_first_error(str(exc))}") from None


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()] or text.splitlines()[:1]
    return lines[0][:500] if lines else "unknown error"


def _tflite_bytes(saved_model: Path, quantize: str | None, examples=None) -> bytes:
    import tensorflow as tf

    # from the loaded signature: TFLite's from_saved_model keeps Keras 3's weights as resource
    # variables that its interpreter never initializes (outputs ±inf); this freezes them
    loaded = tf.saved_model.load(str(saved_model))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [loaded.signatures["serving_default"]], loaded
    )
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif examples is not None:  # int8 weights and activations, calibrated on the training rows
            # (without them only weights of 1,024 values or more are quantized: a small model
            # would stay float32 whole)
            converter.representative_dataset = examples
    return converter.convert()


def int8_tensors(path: Path, fmt: str) -> int:
    """How many int8 tensors (weights, activations) a TFLite or ONNX file holds: what quantizing did."""
    if fmt == "tflite":
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        with runtime.quiet_stderr():
            details = Interpreter(model_path=str(path)).get_tensor_details()
        return sum(1 for d in details if np.dtype(d["dtype"]) == np.int8)
    import onnx

    proto = onnx.load(str(path))
    return sum(1 for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8)


def write_onnx(saved_model: Path, path: Path, quantize: str | None, meta: dict) -> None:
    """tf2onnx's own command (it carries the hash tables over as CategoryMapper), then onnxruntime's
    quantizers; the metadata is stored in the file's metadata_props as well."""
    runtime.need("tf2onnx", "export")
    try:
        _tf2onnx_in_process(saved_model, path)
    except _NoPrivateApi:  # tf2onnx changed: its documented command, in a process of its own
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model)]
        cmd += ["--output", str(path), "--opset", str(ONNX_OPSET)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_quiet_env())
        if proc.returncode != 0 or not path.is_file():
            lines = [ln for ln in proc.stderr.splitlines() if "rror" in ln][-3:]
            raise RunError(
                f"tf2onnx cannot convert this model: {' '.join(lines)[:800] or proc.returncode}"
            ) from None
    import onnx

    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = path.with_suffix(".int8.onnx")
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
        quantized.replace(path)
    proto = onnx.load(str(path))
    if quantize == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        proto = convert_float_to_float16(proto, keep_io_types=True)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "dlcli", json.dumps(meta)
    onnx.save(proto, str(path))


class _NoPrivateApi(Exception):
    pass


def _tf2onnx_in_process(saved_model: Path, path: Path) -> None:
    """What `python -m tf2onnx.convert --saved-model` does (tf2onnx/convert.py's main), in this process:
    it saves the 5 s of importing TensorFlow again (an ONNX export takes half the time). Its two
    functions are internal: tests/test_private_apis.py names them when tf2onnx changes, and without
    them the command runs instead."""
    try:
        from tf2onnx import tf_loader
        from tf2onnx.convert import _convert_common
    except ImportError:
        raise _NoPrivateApi from None

    import tensorflow as tf

    logging.getLogger("tf2onnx").setLevel(
        logging.ERROR
    )  # its shape-inference warnings are for its developers
    try:
        graph_def, inputs, outputs, tables, renamed = tf_loader.from_saved_model(
            str(saved_model), None, None, None, None, None, False,
            return_initialized_tables=True, return_tensors_to_rename=True,
        )  # fmt: skip
        with tf.device("/cpu:0"):
            _convert_common(
                graph_def, name=str(saved_model), opset=ONNX_OPSET, input_names=inputs, output_names=outputs,
                tensors_to_rename=renamed, initialized_tables=tables, output_path=str(path),
            )  # fmt: skip
    except TypeError:  # a changed signature
        raise _NoPrivateApi from None
    except Exception as exc:  # noqa: BLE001 - the converter's errors are many and internal
        raise RunError(f"tf2onnx cannot convert this model: {_first_error(str(exc))}") from None


def _quiet_env() -> dict:

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
