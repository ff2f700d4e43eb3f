"""Image files: folders of class subfolders and CSVs of paths, streamed through tf.data; augmentation
inside the model; predict on one image, a folder or a CSV; bad files named or skipped; the mistakes a
user makes with them. keras.applications backbones, offline: weights from a file or the mirror,
frozen weights that stay bit-identical, preprocess_input as layers. hymenoptera/ as it ships (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    CONFIGS,
    GOOD,
    ROOT,
    ci_config,
    fails,
    latest_run,
    model_layers,
    read_json,
    train_shipped,
)

TINY = ROOT / "data" / "tiny_images"
FOLDER = ci_config("image_folder")


@pytest.fixture
def folder_run(image_folder_run):
    return image_folder_run


def test_a_folder_of_class_folders_trains_from_paths(folder_run):
    data = read_json(folder_run / "run.json")["data"]
    assert sum(data["rows"].values()) == 48  # every PNG, JPEG, .jpeg and GIF, the name with a space too
    assert data["columns"]["image"] == ["path"] and data["columns"]["ignored"] == {"label": "the target"}
    assert "skipped_files" not in data
    state = read_json(folder_run / "preprocessing.json")
    assert state["kind"] == "image_files"
    assert state["image"]["size"] == [24, 24] and state["image"]["shape"] == [24, 24, 3]
    assert state["target"]["classes_"] == ["blue", "red"]  # the subfolders, in alphabetical order
    layers = {layer["class_name"]: layer["config"] for layer in model_layers(folder_run)}
    assert layers["InputLayer"]["batch_shape"] == [None, 24, 24, 3]  # resized pixels, 0-255
    assert layers["RandomFlip"]["mode"] == "horizontal"  # augmentation inside the model
    assert read_json(folder_run / "metrics.json")["test"]["accuracy"] >= 0.75


def test_photos_read_once_train_exactly_as_photos_read_every_epoch(folder_run, cli, tmp_path, monkeypatch):
    """A folder whose decoded photos fit pipeline.DECODED_BYTES is read once, before the first epoch;
    the epochs then see the very pixels, in the very order, that reading them every epoch gives (both
    trained in this process: TensorFlow's threads as one)."""
    from dlcli.datasets import pipeline

    assert read_json(folder_run / "run.json")["compute"]["image_files"] == "read once"
    (tmp_path / "c.yaml").write_text(FOLDER)
    runs = {}
    for read, fits in (("read once", pipeline.DECODED_BYTES), ("read every epoch", 0)):
        monkeypatch.setattr(pipeline, "DECODED_BYTES", fits)  # 0: nothing fits, read as batches stream
        code, _, err = cli("train", "c.yaml", "-q", "-o", "train.plots=false", "--run-dir", str(fits))
        assert code == 0, err
        runs[read] = (tmp_path / str(fits) / "ci-image-folder" / "latest").resolve()
        assert read_json(runs[read] / "run.json")["compute"]["image_files"] == read
    once, every = runs.values()
    assert (once / "history.csv").read_text() == (every / "history.csv").read_text()
    assert read_json(once / "metrics.json") == read_json(every / "metrics.json")


def _predicts(cli, *args: str) -> None:
    code, _, err = cli("predict", *args)
    assert code == 0, err


def test_predict_one_image_a_folder_or_a_csv_of_paths(tmp_path, folder_run, cli):
    one = tmp_path / "one.csv"
    _predicts(cli, str(folder_run), "--input", str(TINY / "red" / "red 1.jpg"), "--output", str(one))
    table = pd.read_csv(one)
    assert list(table.columns) == ["path", "prediction", "probability_blue", "probability_red"]
    assert table["path"].tolist() == [str(TINY / "red" / "red 1.jpg")]

    _predicts(cli, str(folder_run), "--input", str(TINY), "--output", "all.csv")
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == 48 and table["path"].str.startswith(str(TINY)).all()  # recursively
    truth = table["path"].map(lambda p: "red" if "/red/" in p else "blue")
    assert (table["prediction"] == truth).mean() >= 0.75

    shutil.copytree(TINY / "blue", tmp_path / "photos")
    pd.DataFrame({"path": ["photos/blue_00.png", "photos/blue_03.png"], "note": ["x", "y"]}).to_csv(
        tmp_path / "paths.csv", index=False
    )
    _predicts(cli, str(folder_run), "--input", "paths.csv", "--output", "out.csv")
    table = pd.read_csv(tmp_path / "out.csv")
    assert table["path"].tolist() == [
        str(tmp_path / "photos" / "blue_00.png"),
        str(tmp_path / "photos" / "blue_03.png"),
    ]
    assert table["note"].tolist() == ["x", "y"]


def test_evaluate_on_another_folder(folder_run, cli):
    code, out, err = cli("evaluate", str(folder_run), "--data", str(TINY), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert sum(c["support"] for c in metrics["per_class"].values()) == 48


def _messy_folder(tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(TINY, folder)
    (folder / "red" / "broken.jpg").write_bytes(b"<html>404 not found</html>")
    (folder / "red" / ".DS_Store").write_bytes(b"\0\1")
    (folder / "blue" / "README.md").write_text("photos of blue things")
    (folder / ".hidden").mkdir()
    return folder


def test_an_undecodable_file_is_named_or_skipped_and_counted(cli, tmp_path):
    folder = _messy_folder(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(
        FOLDER.replace(f"{ROOT}/data/tiny_images", str(folder)).replace("epochs: 3", "epochs: 1")
    )
    code, out, err = cli("train", str(config), "-q")
    assert code == 2, err
    assert " ".join(err.split()) == (
        f"error: {folder}: 1 of 49 image file(s) cannot be decoded as JPEG, PNG, GIF or BMP ("
        f"{folder / 'red' / 'broken.jpg'}): fix or remove them, or set data.skip_bad_files: true to "
        "leave them out"
    )
    assert not (tmp_path / "runs").exists()
    code, out, err = cli("train", str(config), "-o", "data.skip_bad_files=true")
    assert code == 0, err
    flat = " ".join(err.split())
    assert f"{folder}: 1 file(s) that are not images ignored (blue/README.md); 49 images files read" in flat
    assert (
        f"1 image file(s) that cannot be decoded left out (data.skip_bad_files): {folder / 'red' / 'broken.jpg'}"
        in flat
    )
    data = read_json(latest_run(tmp_path, "ci-image-folder") / "run.json")["data"]
    assert data["skipped_files"] == {"count": 1, "files": [str(folder / "red" / "broken.jpg")]}
    assert sum(data["rows"].values()) == 48  # .DS_Store and the hidden folder: not even counted


def test_a_csv_of_image_paths(cli, tmp_path):
    shutil.copytree(TINY, tmp_path / "photos")
    paths = sorted(p.relative_to(tmp_path) for p in (tmp_path / "photos").rglob("*.*"))
    frame = pd.DataFrame({"file": [str(p) for p in paths], "kind": [p.parent.name for p in paths]})
    frame["id"] = range(len(frame))
    frame.to_csv(tmp_path / "photos.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        FOLDER.replace(f"path: {ROOT}/data/tiny_images", "path: photos.csv\n  target: kind")
        .replace("image: {size: [24, 24],", "image: {column: file, size: [24, 24],")
        .replace("epochs: 3", "epochs: 1")
    )
    code, out, err = cli("train", str(config))
    assert code == 0, err
    assert (
        "columns used: 1 image (file); ignored: id (images are the model's input (preprocessing.image.column))"
        in " ".join(err.split())
    )


# ---- mistakes: exit 2 with the file, line and key, before anything trains ------------------------
_fails = fails


def test_image_config_mistakes(cli, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "ants").mkdir()
    (tmp_path / "c.yaml").write_text(FOLDER.replace(f"{ROOT}/data/tiny_images", "one"))
    assert (
        f"c.yaml:5:3: data.path: {tmp_path / 'one'} is a folder with only ants/: a folder source holds one "
        "subfolder per class (e.g. one/ants/ and one/bees/), at least two; or name a data file"
    ) in _fails(cli, "validate", "c.yaml")

    table = GOOD.replace("model:", "preprocessing:\n  image: {augment: {flip: horizontal}}\nmodel:")
    (tmp_path / "t.yaml").write_text(table)
    assert (
        "t.yaml:5:11: preprocessing.image.augment: augment is for images, and this data is a table: name a "
        "folder of class subfolders as data.path, or a column of image file paths as "
        "preprocessing.image.column; else remove it"
    ) in _fails(cli, "validate", "t.yaml")

    backbone = FOLDER.replace("model:\n", "model:\n  backbone: {name: MobileNetv2, weights: null}\n")
    (tmp_path / "b.yaml").write_text(backbone)
    err = _fails(cli, "validate", "b.yaml")
    assert (
        "b.yaml:8:27: preprocessing.image.rescale: the backbone scales pixels itself (its preprocess_input, inside the model): remove rescale"
        in err
    )
    assert (
        "b.yaml:10:14: model.backbone.name: 'MobileNetv2' is not a keras.applications model; did you mean 'MobileNetV2'"
        in err
    )

    arrays = (
        (CONFIGS / "ci" / "images.yaml")
        .read_text()
        .replace("{rescale: 0.0625}", "{rescale: 0.0625, size: [8, 8]}")
    )
    (tmp_path / "a.yaml").write_text(arrays)
    assert "preprocessing.image.size: size is for image files; image arrays keep their own shape" in _fails(
        cli, "validate", "a.yaml"
    )


# ---- backbones, offline -------------------------------------------------------------------------
def _mobilenet(path):
    """MobileNetV2 (alpha 0.35, 32x32, no top) with random weights, saved to `path`."""
    import keras

    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35
    )
    base.save_weights(path)
    return [w.copy() for w in base.get_weights()]


def _backbone_config(tmp_path, weights: str) -> str:
    return (
        FOLDER.replace("size: [24, 24], rescale: 0.00392156862745098, ", "size: [32, 32], ")
        .replace("name: ci-image-folder", "name: bb")
        .replace(
            "model:\n  layers:\n    - Conv2D: {filters: 4, kernel_size: 3, activation: relu}\n    - GlobalAveragePooling2D: {}\n",
            f"model:\n  backbone: {{name: MobileNetV2, weights: {weights}, trainable: false, pooling: avg, "
            "arguments: {alpha: 0.35}}\n  layers:\n",
        )
        # steps_per_execution auto is 1 on a backbone (Keras traces a multi-step loop's body twice,
        # which for MobileNetV2's 150 layers would be most of these tests' time)
        .replace("epochs: 3, batch_size: 8,", "epochs: 1, batch_size: 8,")
    )


def _backbone_weights(run):
    import keras

    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    (base,) = (layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    (head,) = (layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    return model, base.get_weights(), head.get_weights()


def _mirror(tmp_path, monkeypatch) -> tuple[Path, list]:
    """A DLCLI_DATA_DIR holding MobileNetV2's imagenet file (alpha 0.35, no top) under Keras' name, made
    of random weights in Keras' own .h5 layout, and a proxy that refuses every connection (so no
    download is attempted); returns the folder and those weights."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format  # Keras' own .h5 layout, to forge the file

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35
    )
    with h5py.File(mirror / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    monkeypatch.setenv("DLCLI_DATA_DIR", str(mirror))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    return mirror, [w.copy() for w in base.get_weights()]


def test_a_frozen_backbone_from_the_mirror_keeps_its_weights_bit_identical_while_the_head_learns(
    cli, tmp_path, monkeypatch
):
    """`weights: imagenet` is MobileNetV2's file (Keras publishes no hash for it) taken from
    DLCLI_DATA_DIR under Keras' name, never downloaded; frozen, it stays bit for bit that file's
    through training and a resume (BatchNormalization statistics too) while the head learns. A path
    of weights is read in the fine-tuning test."""
    _, saved = _mirror(tmp_path, monkeypatch)
    (tmp_path / "c.yaml").write_text(_backbone_config(tmp_path, "imagenet"))
    code, out, err = cli("train", "c.yaml", "-q")
    assert code == 0, err
    run = latest_run(tmp_path, "bb")
    assert read_json(run / "run.json")["compute"]["steps_per_execution"] == 1  # auto, on a backbone
    model, first, head_first = _backbone_weights(run)
    assert len(first) == len(saved) and all(np.array_equal(a, b) for a, b in zip(first, saved, strict=True))
    # the application's preprocess_input (x / 127.5 - 1 for MobileNetV2) is a layer of the model
    (rescaling,) = (layer for layer in model.layers if type(layer).__name__ == "Rescaling")
    assert rescaling.scale == pytest.approx(1 / 127.5) and rescaling.offset == -1.0
    code, out, err = cli("train", "--resume", str(run), "-q", "-o", "train.epochs=3")
    assert code == 0, err
    _, after, head_after = _backbone_weights(run)
    assert all(np.array_equal(a, b) for a, b in zip(after, saved, strict=True))  # BatchNorm statistics too
    assert not all(np.array_equal(a, b) for a, b in zip(head_after, head_first, strict=True))


def test_imagenet_weights_keras_refuses_or_cannot_fetch_are_named(cli, tmp_path, monkeypatch):
    """ResNet50's imagenet file, which Keras hashes, is checked: a file in the mirror that is not
    Keras' is refused, naming it. A file neither in the mirror nor downloadable names the URL, the
    places tried and how to work offline."""
    import hashlib

    mirror, _ = _mirror(tmp_path, monkeypatch)
    forged = b"not Keras' file"
    (mirror / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(forged)
    resnet = (
        _backbone_config(tmp_path, "imagenet")
        .replace("name: MobileNetV2", "name: ResNet50")
        .replace(", arguments: {alpha: 0.35}", "")
    )
    (tmp_path / "r.yaml").write_text(resnet)
    err = _fails(cli, "train", "r.yaml", "-q")
    assert (
        f"error: {mirror / 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'}: Keras refused it as "
        "ResNet50's imagenet weights (Incomplete or corrupted file detected. The auto file hash does not "
        "match the provided value of 4d473c1dd8becc155b73f8504c6f6626. Its md5 is "
        f"{hashlib.md5(forged).hexdigest()}): replace it with Keras' file, or remove it to download" in err
    )

    (tmp_path / "m.yaml").write_text(
        _backbone_config(tmp_path, "imagenet").replace("alpha: 0.35", "alpha: 0.5")
    )
    err = _fails(cli, "train", "m.yaml", "-q")
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{fname}"
    assert (
        f"error: model.backbone: MobileNetV2's imagenet weights could not be downloaded (URL fetch failure on {url}"
        in err
    )
    assert (
        f"Tried {mirror / fname} (not there), Keras' cache, then {url}. To work offline, save that file as "
        f"{fname} in a folder and set DLCLI_DATA_DIR to it" in err
    )


@pytest.mark.parametrize(
    ("name", "mode"),
    [("MobileNetV2", "tf"), ("ResNet50", "caffe"), ("DenseNet121", "torch"), ("EfficientNetB0", "none")],
)
def test_preprocess_input_as_layers_that_load_safely(tmp_path, name, mode):
    """Each application's own preprocess_input, and the layers dlcli puts in the model instead, agree
    on random pixels, and the model holding them loads with safe_mode=True."""
    import importlib

    import keras

    from dlcli.models import backbones

    found, steps = backbones.preprocessing(name, 3, "test")
    assert found == mode
    pixels = keras.Input((5, 5, 3))
    model = keras.Model(pixels, backbones._apply(steps, pixels))
    model.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras", safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    own = importlib.import_module(getattr(keras.applications, name).__module__).preprocess_input
    np.testing.assert_allclose(loaded.predict(x, verbose=0), own(x.copy()), rtol=1e-5, atol=1e-4)


# ---- hymenoptera as it ships (slow) -------------------------------------------------------------
@pytest.mark.slow
def test_hymenoptera_photos_train_and_predict(tmp_path, shared_data, cli):
    # 20 of the config's 60 epochs (early stopping ends it at 46 here, test accuracy 0.673): 0.660 here
    run = train_shipped(cli, "hymenoptera.yaml", "hymenoptera", "train.epochs=20")
    data = read_json(run / "run.json")["data"]
    assert data["rows"]["train"] + data["rows"]["validation"] == 245  # the GIF and "ant photos.jpg" too
    assert data["rows"]["test"] == 153
    test = read_json(run / "metrics.json")["test"]
    assert test["accuracy"] >= 0.62, test  # the majority class is 83/153 = 0.54
    val = shared_data / "hymenoptera" / "val"
    _predicts(cli, str(run), "--input", str(val), "--output", "val.csv")
    assert len(pd.read_csv(tmp_path / "val.csv")) == 153
    one = val / "ants" / sorted(p.name for p in (val / "ants").iterdir())[0]
    _predicts(cli, str(run), "--input", str(one), "--output", "one.csv")
    assert pd.read_csv(tmp_path / "one.csv")["prediction"].isin(["ants", "bees"]).all()


def _fine_tune_config(tmp_path) -> str:
    return (
        _backbone_config(tmp_path, "backbone.weights.h5")
        .replace(
            "epochs: 1, batch_size: 8,",
            "epochs: 2, batch_size: 8, fine_tune: {unfreeze: 5, epochs: 2, learning_rate: 0.001},",
        )
        .replace("trainable: false, ", "")
    )


def _changed_backbone_layers(run, weights_file) -> tuple[set, set]:
    """`(changed, top)`: the backbone layers whose weights differ from `weights_file`'s in the run's
    last epoch (model.keras is the best epoch of both phases, which may be phase 1's), and the
    non-BatchNormalization layers among the top 5."""
    import keras

    model = keras.saving.load_model(run / "checkpoints" / "last.keras", safe_mode=True)
    (base,) = (layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    fresh = keras.applications.MobileNetV2(
        include_top=False, weights=str(weights_file), input_shape=(32, 32, 3), alpha=0.35
    )
    top = {layer.name for layer in base.layers[-5:] if not isinstance(layer, keras.layers.BatchNormalization)}
    before = {layer.name: layer.get_weights() for layer in fresh.layers}
    assert {layer.name for layer in base.layers if layer.weights} <= set(before)
    changed = {
        layer.name
        for layer in base.layers
        if layer.weights
        and not all(
            np.array_equal(a, b) for a, b in zip(layer.get_weights(), before[layer.name], strict=True)
        )
    }
    return changed, top


def test_fine_tuning_interrupted_anywhere_resumes_to_the_end_training_the_unfrozen_top_only(
    tmp_path, cli, dlcli_fork
):
    """SIGINT once the first epoch is committed (in phase 1, between the phases or in phase 2, as
    the machine's speed has it), then --resume: both phases end, each epoch once, and phase 2 changed
    the top 5 layers of the backbone only (BatchNormalization statistics untouched too). A resume with
    more fine-tuning epochs goes on in phase 2; one past the end is refused."""
    import signal
    import time

    from conftest import STUCK_S

    _mobilenet(tmp_path / "backbone.weights.h5")
    config = _fine_tune_config(tmp_path).replace("epochs: 2, batch_size: 8,", "epochs: 2, batch_size: 2,")
    (tmp_path / "c.yaml").write_text(config)
    proc = dlcli_fork("train", "c.yaml", cwd=tmp_path)  # forked: TensorFlow already imported
    try:
        deadline = time.monotonic() + STUCK_S
        while time.monotonic() < deadline and proc.poll() is None:
            resume = list((tmp_path / "runs").glob("bb/2*/checkpoints/resume.json"))
            if resume and json.loads(resume[0].read_text())["epoch"] >= 1:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, printed = proc.communicate(timeout=STUCK_S)
    finally:
        proc.kill()
    (run,) = (tmp_path / "runs" / "bb").glob("2*")
    if proc.returncode == 130:
        code, _, err = cli("train", "--resume", str(run))  # in this process
        assert code == 0, err
        printed += err
    assert proc.returncode in (0, 130)
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4] and history["phase"].tolist() == [1, 1, 2, 2]
    assert read_json(run / "run.json")["status"] == "completed"
    assert (
        "fine-tuning mobilenetv2_0.35_32: the top 5 layers train (BatchNormalization frozen), learning "
        "rate 0.001, epochs 3–4" in " ".join(printed.split())
    )
    changed, top = _changed_backbone_layers(run, tmp_path / "backbone.weights.h5")
    assert changed and changed <= top, (changed, top)

    code, out, err = cli("train", "--resume", str(run), "-q", "-o", "train.fine_tune.epochs=3")
    assert code == 0, err
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5] and history["phase"].tolist() == [1, 1, 2, 2, 2]
    code, out, err = cli("train", "--resume", str(run), "-q")
    assert code == 2
    assert (
        "the run completed both phases after epoch 5; to train on, raise -o train.fine_tune.epochs=N" in err
    )
