"""How training computes: zero-copy arrays, steps_per_execution, mixed precision, XLA switch, timings."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from conftest import CONFIGS, dlcli, forked, read_json

from dlcli.utils import arrays


def test_npz_members_are_read_into_aligned_memory_equal_to_numpy(tmp_path):
    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 255, (50, 8, 8), dtype=np.uint8), "y_train": np.arange(50)}
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "d.npz", **data, f=np.asfortranarray(rng.random((3, 4))))
        loaded = arrays.read_npz(tmp_path / "d.npz")
        with np.load(tmp_path / "d.npz") as reference:
            for key in reference.files:
                np.testing.assert_array_equal(loaded[key], reference[key])
        assert arrays.is_aligned(loaded["x_train"]) and arrays.is_aligned(loaded["y_train"])


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.array([{"a": 1}], dtype=object))
    with zipfile.ZipFile(tmp_path / "d.npz") as archive, archive.open("x_train.npy") as handle:
        with pytest.raises(ValueError, match="x_train.npy holds Python objects, which would need pickle"):
            arrays.read_npy(handle, "x_train.npy")


def test_take_rows_copies_only_when_rows_change():
    x = arrays.aligned_empty((10, 3), "float32")
    x[:] = np.arange(30).reshape(10, 3)
    assert arrays.take_rows(x, np.arange(10)) is x
    taken = arrays.take_rows(x, np.array([3, 1]))
    np.testing.assert_array_equal(taken, x[[3, 1]])
    assert arrays.is_aligned(taken)


def test_training_tensor_shares_the_arrays_memory():
    from dlcli.datasets.pipeline import as_tensor

    x = arrays.aligned_empty((100, 28, 28), "uint8")
    x[:] = 7
    tensor = as_tensor(x)
    x[0, 0, 0] = 9  # visible through the tensor: the same memory, not a copy
    assert int(tensor[0, 0, 0]) == 9
    unaligned = np.zeros((5, 3), dtype="float32")[:, :2]  # not contiguous: copied
    assert as_tensor(unaligned).shape == (5, 2)


def _train(cli, *overrides: str):
    code, _, err = cli("train", str(CONFIGS / "ci" / "regression.yaml"), "-q", *overrides)
    assert code == 0, err
    (run,) = [p for p in (p.resolve() for p in _runs()) if p.is_dir()]
    return run


def _runs():
    from pathlib import Path

    return sorted(Path("runs/ci-regression").glob("2*"))[-1:]


def test_steps_per_execution_leaves_results_identical(cli):
    one = _train(cli, "-o", "train.steps_per_execution=1", "-o", "train.epochs=3")
    many = _train(cli, "-o", "train.steps_per_execution=32", "-o", "train.epochs=3")
    assert read_json(one / "metrics.json") == read_json(many / "metrics.json")
    assert read_json(one / "run.json")["compute"]["steps_per_execution"] == 1
    assert read_json(many / "run.json")["compute"]["steps_per_execution"] == 32


def test_mixed_precision_keeps_the_output_in_float32_and_loads_back(cli, tmp_path):
    run = _train(cli, "-o", "train.mixed_precision=mixed_bfloat16", "-o", "train.epochs=2")
    status = read_json(run / "run.json")
    status["compute"].pop("intra_op_threads")  # in this process: whatever its first run set
    assert status["compute"] == {
        "steps_per_execution": 32,
        "jit_compile": False,
        "dtype_policy": "mixed_bfloat16",
    }
    with zipfile.ZipFile(run / "model.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    dense = [layer for layer in layers if layer["class_name"] == "Dense"]
    assert dense[0]["config"]["dtype"]["config"]["name"] == "mixed_bfloat16"
    assert dense[-1]["config"]["dtype"]["config"]["name"] == "float32"
    assert np.isfinite(read_json(run / "metrics.json")["test"]["r2"])
    code, out, err = cli("evaluate", str(run), "--json")
    assert code == 0, err
    assert json.loads(out)["r2"] == pytest.approx(read_json(run / "metrics.json")["test"]["r2"], rel=1e-5)


def test_jit_compile_can_be_forced_and_timings_are_recorded(tmp_path, dlcli_fork):
    # a subprocess: op determinism, once on in a process (earlier tests), cannot be turned off
    config = str(CONFIGS / "ci" / "regression.yaml")
    proc = forked(
        dlcli_fork,
        "train",
        config,
        "-q",
        "-o",
        "train.jit_compile=true",
        "-o",
        "train.epochs=2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "runs" / "ci-regression").glob("2*")
    status = read_json(run / "run.json")
    assert status["compute"]["jit_compile"] is True and status["deterministic"] is False
    timings = status["timings"]
    assert len(timings["epoch_s"]) == 2 and all(t > 0 for t in timings["epoch_s"])
    assert timings["first_step_s"] > 0


def test_jit_compile_with_explicit_determinism_is_refused(tmp_path):
    proc = dlcli(
        "validate",
        str(CONFIGS / "ci" / "regression.yaml"),
        "-o",
        "train.jit_compile=true",
        "-o",
        "train.deterministic=true",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "-o: train.jit_compile: XLA cannot run under TensorFlow op determinism" in proc.stderr


def test_forward_gives_the_outputs_loss_and_metrics_of_predict_and_evaluate():
    import keras

    from dlcli.datasets.pipeline import array_dataset, forward

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((301, 5)).astype("float32")  # 301: the last batch is partial
    y = keras.utils.to_categorical(rng.integers(0, 3, 301), 3).astype("float32")
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3, "softmax")]
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
    model.fit(x, y, epochs=2, verbose=0)
    expected = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    outputs, metrics = forward(model, array_dataset(x, y, 64), compiled=True)
    np.testing.assert_allclose(outputs, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-4), name
    np.testing.assert_allclose(forward(model, array_dataset(x, None, 256)), outputs, rtol=1e-6)


def test_dataset_guard_lifts_determinism_only_between_steps(request):
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    from dlcli.training.callbacks.dataset_guard import dataset_guard

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    request.addfinalizer(lambda: None if was_on else tf_config.disable_op_determinism())
    (guard,) = dataset_guard()
    guard.on_epoch_begin(0)  # Keras makes the epoch's iterator after this
    assert not tf_config.is_op_determinism_enabled()
    guard.on_train_batch_begin(0)  # steps run deterministic
    assert tf_config.is_op_determinism_enabled()
    guard.on_train_batch_end(0)
    guard.on_test_begin()
    assert not tf_config.is_op_determinism_enabled()
    guard.on_test_batch_begin(0)
    assert tf_config.is_op_determinism_enabled()
    guard.on_test_end()
    guard.on_epoch_end(0)
    assert tf_config.is_op_determinism_enabled()  # and on again once the epoch ends


def test_small_dense_models_use_one_thread_per_op_and_others_all_cores(tmp_path, dlcli_fork):
    # processes of their own (forked before any op): TensorFlow takes its thread settings once per
    # process, before its first op
    for name, expected in (("regression", 1), ("images", "all cores")):
        proc = forked(
            dlcli_fork,
            "train",
            str(CONFIGS / "ci" / f"{name}.yaml"),
            "-q",
            "-o",
            "train.epochs=1",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        (run,) = (tmp_path / "runs" / f"ci-{name}").glob("2*")
        assert read_json(run / "run.json")["compute"]["intra_op_threads"] == expected, name


def test_the_step_cost_estimate_counts_dense_layers_only():
    from dlcli.config.config import load_config
    from dlcli.devices.compute import SMALL_STEP_MACS, dense_step_macs

    mlp = load_config(CONFIGS / "mnist.yaml")
    assert dense_step_macs(mlp, [28, 28]) == 32 * (784 * 128 + 128 * 10)  # Flatten, Dense, Dropout, Dense
    assert dense_step_macs(mlp, [28, 28]) < SMALL_STEP_MACS
    wide = load_config(CONFIGS / "mnist.yaml", ["train.batch_size=512"])
    assert dense_step_macs(wide, [28, 28]) > SMALL_STEP_MACS  # big batches are worth splitting
    assert dense_step_macs(load_config(CONFIGS / "mnist_cnn.yaml"), [28, 28]) is None  # Conv2D: unknown
