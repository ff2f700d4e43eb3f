"""The config as a library: load, override, resolve paths, show. (Every mistake a user can make is in
test_errors.py, through the CLI.)"""

from __future__ import annotations

import textwrap

import pytest
from conftest import CONFIGS, GOOD, dlcli

from dlcli.config.config import load_config
from dlcli.utils.errors import ConfigError


def _write(tmp_path, text: str, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_library_raises_one_config_error_listing_every_problem(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD.replace("train:", "trainn:").replace("[accuracy]", "[acuracy]")))
    assert [p.split(": ")[1] for p in info.value.problems] == ["metrics.0", "trainn"]


def test_every_example_config_is_valid():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        load_config(path)


def test_overrides_take_precedence_and_parse_yaml(tmp_path):
    path = _write(tmp_path, GOOD)
    config = load_config(
        path,
        [
            "train.epochs=7",
            "optimizer.learning_rate=0.5",
            "metrics=[accuracy, top_k_categorical_accuracy]",
            "model.layers.0.Dense.units=3",
        ],
    )
    assert config.train.epochs == 7
    assert config.optimizer.model_extra == {"learning_rate": 0.5}
    assert config.metrics == ["accuracy", "top_k_categorical_accuracy"]
    assert config.train.batch_size == 32  # the default


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = _write(tmp_path, GOOD.replace("dataset: iris", "path: ../d.csv\n  target: y"), "sub/c.yaml")
    assert load_config(path).data.path == str((tmp_path / "d.csv").resolve())


def test_config_show_prints_resolved_config(tmp_path):
    proc = dlcli("config", "show", str(_write(tmp_path, GOOD)), "-o", "seed=7", cwd=tmp_path)
    assert proc.returncode == 0
    assert "seed: 7\n" in proc.stdout and "batch_size: 32" in proc.stdout


def test_a_key_that_takes_a_number_or_auto_gets_one_message(tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    with pytest.raises(ConfigError) as caught:
        load_config(
            tmp_path / "c.yaml",
            ["train.intra_op_threads=-1", "train.steps_per_execution=many", "train.deterministic=3"],
        )
    assert str(caught.value).splitlines() == [
        "-o: train.steps_per_execution: Input should be a valid integer, unable to parse string as an "
        "integer, or 'auto' (got 'many')",
        "-o: train.intra_op_threads: Input should be greater than or equal to 0, or 'auto' (got -1)",
        "-o: train.deterministic: Input should be a valid boolean, unable to interpret input, or 'auto' (got 3)",
    ]
