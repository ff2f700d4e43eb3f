"""Data sources: download with verification (against a file:// URL), the mirror, splits, bad files."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from dlcli.config.config import Config
from dlcli.io import data
from dlcli.utils.errors import DataError

CSV = ROOT / "data" / "tiny_binary.csv"
SHA = hashlib.sha256(CSV.read_bytes()).hexdigest()


def _config(**data_keys) -> Config:
    return Config.model_validate(
        {
            "name": "t",
            "data": data_keys,
            "loss": "sparse_categorical_crossentropy",
            "model": {"layers": [{"Dense": {"units": 2}}]},
        }
    )


def test_url_is_downloaded_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLCLI_DATA_DIR", raising=False)
    source = tmp_path / "served" / "labels.csv"
    source.parent.mkdir()
    shutil.copy(CSV, source)
    got = data.fetch_url(source.as_uri(), SHA)
    assert got == tmp_path / "cache" / "downloads" / "labels.csv" and got.read_bytes() == CSV.read_bytes()
    source.unlink()  # a second fetch comes from the cache
    assert data.fetch_url(source.as_uri(), SHA) == got


def test_download_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLCLI_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="the downloaded file failed verification"):
        data.fetch_url(CSV.as_uri(), "0" * 64)


def test_unreachable_url_says_what_was_tried_and_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLCLI_DATA_DIR", raising=False)
    url = (tmp_path / "absent" / "gone.csv").as_uri()
    with pytest.raises(DataError) as error:
        data.fetch_url(url, SHA)
    assert str(error.value).startswith(f"{url}: download failed (URL fetch failure on {url}")
    assert (
        f"Tried $DLCLI_DATA_DIR (not set), the cache {tmp_path / 'cache' / 'downloads' / 'gone.csv'}, then "
        "the address. Check the address and your connection; to work offline, put the file in a folder "
        "and set DLCLI_DATA_DIR to that folder (see `dlcli doctor` for where dlcli looks) as gone.csv"
    ) in str(error.value)
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=rf"Tried {tmp_path / 'gone.csv'} \(not there\), the cache"):
        data.fetch_url(url, SHA)


def test_mirror_is_used_and_its_hash_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path))
    shutil.copy(CSV, tmp_path / "tiny_binary.csv")
    assert data.fetch_url("https://example.invalid/x/tiny_binary.csv", SHA) == tmp_path / "tiny_binary.csv"
    with pytest.raises(DataError, match="sha256 is .* but the config expects 1111"):
        data.fetch_url("https://example.invalid/x/tiny_binary.csv", "1" * 64)


def test_stratified_split_keeps_class_balance():
    loaded = data.load(_config(path=str(CSV), target="label", split={"validation": 0.25, "test": 0.25}))
    rates = {name: (part["label"] == "yes").mean() for name, part in loaded.splits.items()}
    assert [len(p) for p in loaded.splits.values()] == [120, 60, 60]
    assert max(rates.values()) - min(rates.values()) < 0.03


def test_time_ordered_split_never_shuffles():
    series = ROOT / "data" / "tiny_series.csv"
    config = Config.model_validate(
        {
            "name": "t",
            "data": {
                "path": str(series),
                "target": "value",
                "time_column": "date",
                "split": {"validation": 0.2, "test": 0.2},
            },  # a window's default: never shuffled
            "preprocessing": {"window": {"length": 5}},
            "loss": "mse",
            "model": {"layers": [{"Dense": {"units": 1}}]},
        }
    )
    loaded = data.load(config)
    dates = [part["date"] for part in loaded.splits.values()]
    assert dates[0].max() < dates[1].min() and dates[1].max() < dates[2].min()
    assert [len(d) for d in dates] == [180, 60, 60]


def test_split_column(tmp_path):
    frame = pd.read_csv(CSV).assign(part=["train"] * 200 + ["validation"] * 20 + ["test"] * 20)
    frame.to_csv(tmp_path / "s.csv", index=False)
    loaded = data.load(_config(path=str(tmp_path / "s.csv"), target="label", split={"column": "part"}))
    assert {k: len(v) for k, v in loaded.splits.items()} == {"train": 200, "validation": 20, "test": 20}
    assert "part" not in loaded.splits["train"].columns


def test_npz_uses_its_own_test_split():
    loaded = data.load(_config(path=str(ROOT / "data" / "tiny_digits.npz"), split={"validation": 0.2}))
    assert [len(loaded.splits[k][0]) for k in ("train", "validation", "test")] == [480, 120, 200]
    assert loaded.splits["train"][0].dtype == np.uint8  # pixels are not copied to float


def test_sklearn_dataset_has_class_names():
    loaded = data.load(_config(dataset="iris"))
    assert set(loaded.splits["train"]["target"]) == {"setosa", "versicolor", "virginica"}


def test_compact_rows_moves_rows_to_the_front_in_place():
    from dlcli.utils.arrays import compact_rows

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (5000, 3, 7), dtype=np.uint8)
    original = x.copy()
    keep = np.sort(rng.choice(5000, 3600, replace=False))
    out = compact_rows(x, keep)
    assert np.shares_memory(out, x) and out.base is not None
    np.testing.assert_array_equal(out, original[keep])
    with pytest.raises(ValueError, match="strictly increasing"):
        compact_rows(x, np.array([3, 1]))
