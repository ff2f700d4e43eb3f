"""Every private TensorFlow API dlcli uses, by name: when TensorFlow moves or drops one, this fails
and says which dlcli function depends on it and what it buys.

Kept uses (see each function's docstring for the measurement):
- pipeline.determinism_switch (callbacks/dataset_guard.py, pipeline.forward): op determinism lifted while
  tf.data makes an iterator, which otherwise copies the training arrays: 41 MB less peak memory on
  configs/mnist.yaml (benchmarks/private_apis.py, in RESULTS.md).
(distribute.py parsed Slurm's task list with a private TensorFlow helper; it has its own 8 lines now.)
"""

from __future__ import annotations

import importlib

import pytest

PRIVATE = [
    (
        "tensorflow.python.framework.config",
        ["is_op_determinism_enabled", "enable_op_determinism", "disable_op_determinism"],
        "dlcli.datasets.pipeline.determinism_switch",
    ),
]

#: Every private name of Keras (keras.src), TensorFlow (tensorflow.python) and tf2onnx (anything but its
#: documented `tf2onnx.convert.from_*`) that dlcli/ names: where, why, and the upstream version it was
#: checked against. A new one fails test_every_private_name_in_dlcli_is_listed until it is written here.
LISTED = {
    "tensorflow.python.framework.config": (
        "datasets/pipeline.py determinism_switch",
        "op determinism lifted while tf.data makes an iterator (41 MB less peak memory on mnist); the "
        "three functions are checked above",
        "tensorflow 2.21.0",
    ),
    "keras.src.backend.tensorflow.trainer:TensorFlowTrainer._maybe_symbolic_build": (
        "devices/distcompat.py KERAS_CALL_SITES",
        "read, never called: the sha256 of its source guards MultiWorkerStrategy.reduce's fix "
        "(tests/test_distributed.py fails when Keras changes it)",
        "keras 3.15.1",
    ),
    "keras.src.backend.tensorflow.trainer:reduce_per_replica": (
        "devices/distcompat.py KERAS_CALL_SITES",
        "read, never called: as above",
        "keras 3.15.1",
    ),
    "tf2onnx.tf_loader.from_saved_model": (
        "export/converters.py _tf2onnx_in_process",
        "what `python -m tf2onnx.convert --saved-model` calls, in process (half an ONNX export's time); "
        "signature checked below, and export falls back to the command when it changes",
        "tf2onnx 1.17.0",
    ),
    "tf2onnx.convert._convert_common": (
        "export/converters.py _tf2onnx_in_process",
        "as above",
        "tf2onnx 1.17.0",
    ),
}

PRIVATE_PREFIXES = ("keras.src", "tensorflow.python")


def private_names_in(source: str) -> set[str]:
    """The private upstream names a module's source uses: imports of keras.src / tensorflow.python
    (and strings naming them, as distcompat's guarded call sites), and tf2onnx names other than its
    documented converters."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            if node.module.startswith(PRIVATE_PREFIXES):
                found.update(names)
            elif node.module.split(".")[0] == "tf2onnx":
                found.update(
                    n for n in names if not n.startswith(("tf2onnx.convert.from_", "tf2onnx.tf_loader"))
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PRIVATE_PREFIXES))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(PRIVATE_PREFIXES)
        ):
            found.add(node.value)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "tf_loader"
        ):
            found.add(f"tf2onnx.tf_loader.{node.attr}")
    return found


def test_every_private_name_in_dlcli_is_listed():
    """dlcli/ names no private Keras, TensorFlow or tf2onnx API that LISTED does not give a reason
    for, and LISTED holds none that dlcli/ no longer uses."""
    from pathlib import Path

    import dlcli

    used = {}
    for path in sorted(Path(dlcli.__file__).parent.rglob("*.py")):
        for name in private_names_in(path.read_text(encoding="utf-8")):
            used.setdefault(name, []).append(path.name)
    assert {n: w for n, w in used.items() if n not in LISTED} == {}
    assert sorted(set(LISTED) - set(used)) == []
    assert all(version.split()[0] in ("keras", "tensorflow", "tf2onnx") for _, _, version in LISTED.values())


def test_the_scan_finds_each_kind_of_private_name():
    source = (
        "from keras.src.utils import file_utils\n"
        "import tensorflow.python.ops\n"
        "from tf2onnx.convert import _convert_common, from_keras\n"
        "from tf2onnx import tf_loader\n"
        "tf_loader.from_saved_model\n"
        "SITE = 'keras.src.trainers.trainer:Trainer.fit'\n"
        "import keras\n"
    )
    assert private_names_in(source) == {
        "keras.src.utils.file_utils",
        "tensorflow.python.ops",
        "tf2onnx.convert._convert_common",
        "tf2onnx.tf_loader.from_saved_model",
        "keras.src.trainers.trainer:Trainer.fit",
    }


@pytest.mark.parametrize(("module", "names", "user"), PRIVATE, ids=[p[2] for p in PRIVATE])
def test_private_tensorflow_names_still_exist(module, names, user):
    found = importlib.import_module(module)
    missing = [n for n in names if not callable(getattr(found, n, None))]
    assert missing == [], f"{user} uses {module}.{', '.join(missing)}, which this TensorFlow lacks"


def test_the_determinism_switch_turns_determinism_off_and_on(request):
    from tensorflow.python.framework import config as tf_config

    from dlcli.datasets.pipeline import determinism_switch

    was_on = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    request.addfinalizer(lambda: None if was_on else tf_config.disable_op_determinism())
    off, on = determinism_switch()
    off()
    assert not tf_config.is_op_determinism_enabled()
    on()
    assert tf_config.is_op_determinism_enabled()


def test_only_these_modules_import_private_tensorflow():
    from pathlib import Path

    import dlcli

    users = sorted(
        path.name
        for path in Path(dlcli.__file__).parent.rglob("*.py")
        if "tensorflow.python" in path.read_text(encoding="utf-8")
    )
    assert users == ["pipeline.py"]


def test_slurm_task_lists_are_read_without_tensorflow():
    from dlcli.devices.distribute import tasks_per_node

    assert tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert tasks_per_node("4") == [4]
    with pytest.raises(ValueError, match="is not a list like 2"):
        tasks_per_node("2(3)")


def test_tf2onnx_still_has_the_functions_export_calls_in_process():
    """dlcli/export/converters.py converts to ONNX in its own process with what `python -m tf2onnx.convert
    --saved-model` calls (half an ONNX export's time); when this fails, tf2onnx changed them: export
    falls back to the command (slower, still right) until _tf2onnx_in_process is updated."""
    import inspect

    pytest.importorskip("tf2onnx", reason="the export extra is not installed")
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    loader = inspect.signature(tf_loader.from_saved_model).parameters
    assert list(loader)[:7] == [
        "model_path", "input_names", "output_names", "tag", "signatures", "concrete_function", "large_model",
    ]  # fmt: skip
    assert {"return_initialized_tables", "return_tensors_to_rename"} <= set(loader)
    converter = inspect.signature(_convert_common).parameters
    assert {"name", "output_path"} <= set(converter)  # the rest go on to process_tf_graph
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in converter.values())
    from tf2onnx.tfonnx import process_tf_graph

    graph = set(inspect.signature(process_tf_graph).parameters)
    assert {"opset", "input_names", "output_names", "tensors_to_rename", "initialized_tables"} <= graph
