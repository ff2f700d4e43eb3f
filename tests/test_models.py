"""dlcli/models/: the model a config describes, the checks of its layers and optimizer, and the
mirror that serves backbone weights to Keras' own download, called directly (no training)."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import GOOD

from dlcli.config.config import load_config
from dlcli.models import backbones, model
from dlcli.utils.errors import ConfigError


def _config(tmp_path, text=GOOD, overrides=()):
    (tmp_path / "c.yaml").write_text(text)
    return load_config(tmp_path / "c.yaml", list(overrides))


def test_the_configured_layers_on_the_datas_input(tmp_path):
    built = model.build(_config(tmp_path), [4], "float32", 3)
    assert built.input_shape == (None, 4) and built.output_shape == (None, 3)
    assert [type(layer).__name__ for layer in built.layers] == ["InputLayer", "Dense", "Dense"]


def test_an_output_that_does_not_fit_the_classes_names_the_last_layer(tmp_path):
    with pytest.raises(ConfigError) as caught:
        model.build(_config(tmp_path), [4], "float32", 5)
    assert str(caught.value) == (
        f"{tmp_path / 'c.yaml'}:7:7: model.layers.1: the model's output has shape [3] but the data needs 5 "
        "output unit(s) for 5 classes: end with `- Dense: {units: 5}`"
    )


def test_every_bad_layer_argument_is_reported_at_once(tmp_path):
    """What only a layer's constructor can tell (validate checks names and types): each layer built
    once, every problem kept."""
    config = _config(tmp_path)
    config.model.layers[0] = {"Dense": {"units": 8, "kernel_initializer": "nope"}}
    config.model.layers[1] = {"Dropout": {"rate": 3}}
    with pytest.raises(ConfigError) as caught:
        model.check_layer_arguments(config)
    first, second = caught.value.problems
    assert first.startswith(
        f"{tmp_path / 'c.yaml'}:6:7: model.layers.0.Dense: ValueError: Could not interpret"
    )
    assert "nope" in first
    assert second.startswith(f"{tmp_path / 'c.yaml'}:7:7: model.layers.1.Dropout: ValueError: ")
    assert "rate" in second


def test_the_optimizer_takes_a_schedule_and_names_a_keras_refusal(tmp_path):
    config = _config(
        tmp_path,
        GOOD.replace(
            "optimizer: {name: adam, learning_rate: 0.01}",
            "optimizer: {name: adam, learning_rate: {ExponentialDecay: "
            "{initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5}}}",
        ),
    )
    assert model.optimizer(config).get_config()["learning_rate"]["class_name"] == "ExponentialDecay"
    assert float(model.optimizer(_config(tmp_path), learning_rate=1).learning_rate) == 1.0
    config = _config(tmp_path, overrides=["optimizer.name=adam"])
    config.optimizer.name = "adamm"
    with pytest.raises(ConfigError, match=r"optimizer.name: unknown optimizer 'adamm'; did you mean 'adam'"):
        model.optimizer(config)


def test_the_mirror_serves_a_file_of_the_urls_name_and_passes_others_on(tmp_path, monkeypatch):
    (tmp_path / "weights.h5").write_bytes(b"mirrored bytes")
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path))
    with backbones.mirrored_downloads() as handler:
        with urllib.request.urlopen("https://example.invalid/models/weights.h5") as response:
            assert response.read() == b"mirrored bytes"
        assert handler.served == tmp_path / "weights.h5"
        assert handler.requested == "https://example.invalid/models/weights.h5"
        other = (tmp_path / "other.txt").as_uri()
        (tmp_path / "other.txt").write_text("not mirrored")  # a file:// URL the mirror has no file of
        with urllib.request.urlopen(other) as response:
            assert response.read() == b"not mirrored"
    failure = backbones.download_failure(handler, "ResNet50", OSError("offline"))
    assert str(failure).startswith(
        f"{tmp_path / 'weights.h5'}: Keras refused it as ResNet50's imagenet weights"
    )
