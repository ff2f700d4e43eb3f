"""The committed Keras catalog matches the installed Keras (regenerate: python -m dlcli.config.catalog)."""

from __future__ import annotations

import json

from dlcli.config import catalog


def test_committed_catalog_matches_installed_keras():
    committed = json.loads(catalog.CATALOG_FILE.read_text())
    built = json.loads(json.dumps(catalog.build()))
    assert committed == built, "stale dlcli/keras_catalog.json: run `python -m dlcli.config.catalog`"


def test_catalog_knows_what_configs_use():
    known = catalog.load()
    assert {"units", "activation", "name"} <= set(known["layers"]["Dense"]["args"])
    assert known["layers"]["Dense"]["required"] == ["units"]
    assert "Lambda" in known["layers"]  # refused by checks.REFUSED_LAYERS, not by absence
    assert {"mse", "mae", "sparse_categorical_crossentropy"} <= set(known["losses"])
    assert {"accuracy", "mae", "auc"} <= set(known["metrics"])
    assert "learning_rate" in known["optimizers"]["adam"]["args"]
    assert "trainable" not in known["optimizers"]["adam"]["args"]


def test_other_keras_version_rebuilds_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path))
    with monkeypatch.context() as patched:
        patched.setattr(catalog.metadata, "version", lambda name: "0.0.1")
        catalog.load.cache_clear()
        try:
            rebuilt = catalog.load()
        finally:
            catalog.load.cache_clear()  # later callers load the committed catalog again
    cached = tmp_path / "keras-catalog-0.0.1.json"
    assert cached.is_file()
    assert json.loads(cached.read_text()) == json.loads(json.dumps(rebuilt))
    # built from the installed Keras, so it equals the committed catalog (not the cache compared with itself)
    assert json.loads(json.dumps(rebuilt)) == json.loads(catalog.CATALOG_FILE.read_text())
    assert catalog.load()["keras"] == json.loads(catalog.CATALOG_FILE.read_text())["keras"]
