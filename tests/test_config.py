"""Config loading: strict keys with suggestions, file:line:col, overrides, YAML hazards, exit code 2."""

from __future__ import annotations

import textwrap

import pytest
from conftest import CONFIGS, dlcli

from dlcli.config import load_config
from dlcli.errors import ConfigError

GOOD = """\
name: t
data:
  dataset: iris
model:
  layers:
    - Dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
train:
  epochs: 2
"""


def _write(tmp_path, text: str, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _errors(tmp_path, text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), overrides)
    return str(info.value)


def test_every_example_config_is_valid():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        load_config(path)


def test_misspelled_keys_get_suggestions_with_line_and_column(tmp_path):
    message = _errors(
        tmp_path,
        GOOD.replace("  epochs: 2", "  epocs: 2").replace("dataset: iris", "dataset: iris\n  taget: x"),
    )
    lines = message.splitlines()
    assert lines[0] == (
        f"{tmp_path / 'c.yaml'}:4:3: data.taget: unknown key 'taget'; did you mean 'target'? "
        "(allowed: path, url, sha256, dataset, target, time_column, test_path, split)"
    )
    assert lines[1].startswith(
        f"{tmp_path / 'c.yaml'}:11:3: train.epocs: unknown key 'epocs'; did you mean 'epochs'?"
    )


def test_wrong_type_names_value(tmp_path):
    message = _errors(tmp_path, GOOD.replace("epochs: 2", "epochs: many"))
    assert (
        "c.yaml:10:3: train.epochs: Input should be a valid integer" in message and "(got 'many')" in message
    )


def test_monitor_must_be_reported(tmp_path):
    text = GOOD + "  early_stopping: {monitor: val_acc}\n"
    assert _errors(tmp_path, text).endswith(
        "c.yaml:11:20: train.early_stopping.monitor: 'val_acc' is not a quantity this model reports "
        "(expected one of loss, accuracy, val_loss, val_accuracy); did you mean 'val_accuracy'?"
    )


def test_exactly_one_data_source(tmp_path):
    message = _errors(tmp_path, GOOD.replace("dataset: iris", "dataset: iris\n  path: a.csv"))
    assert "c.yaml:2:1: data: give exactly one data source (got path, dataset" in message


def test_url_needs_sha256(tmp_path):
    message = _errors(tmp_path, GOOD.replace("dataset: iris", "url: https://example.com/a.csv\n  target: y"))
    assert "data: url needs sha256 so the download can be verified" in message


def test_split_fractions_leave_training_rows(tmp_path):
    message = _errors(
        tmp_path, GOOD.replace("dataset: iris", "dataset: iris\n  split: {validation: 0.5, test: 0.45}")
    )
    assert "data.split: validation + test = 0.95 leaves too few rows for training" in message


def test_overrides_take_precedence_and_parse_yaml(tmp_path):
    path = _write(tmp_path, GOOD)
    config = load_config(
        path,
        [
            "train.epochs=7",
            "optimizer.learning_rate=0.5",
            "metrics=[accuracy, auc]",
            "model.layers.0.Dense.units=3",
        ],
    )
    assert config.train.epochs == 7
    assert config.optimizer.model_extra == {"learning_rate": 0.5}
    assert config.metrics == ["accuracy", "auc"]
    assert config.train.batch_size == 32  # the default


def test_unknown_override_path_is_refused_with_suggestion(tmp_path):
    message = _errors(tmp_path, GOOD, ["train.epocs=3"])
    assert message.startswith("-o: train.epocs: unknown key 'epocs'; did you mean 'epochs'?")


def test_malformed_override(tmp_path):
    assert (
        _errors(tmp_path, GOOD, ["train.epochs"])
        == "-o train.epochs: expected key.path=value, e.g. -o train.epochs=3"
    )


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = _write(tmp_path, GOOD.replace("dataset: iris", "path: ../d.csv\n  target: y"), "sub/c.yaml")
    assert load_config(path).data.path == str((tmp_path / "d.csv").resolve())


def test_duplicate_keys_are_an_error(tmp_path):
    message = _errors(tmp_path, GOOD + "  epochs: 3\n")
    assert message == (
        f"{tmp_path / 'c.yaml'}:11:3: train.epochs: duplicate key (first defined at line 10); "
        "YAML keeps only one of them: delete one"
    )


def test_python_tags_are_refused(tmp_path):
    message = _errors(tmp_path, GOOD.replace("name: t", "name: !!python/object/apply:os.system ['echo x']"))
    assert (
        "c.yaml:1:7: name: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
        in message
    )


def test_alias_bomb_is_refused_quickly(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        bomb += (
            f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, "
            f"*{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        )
    assert "expands to more than 100000 values" in _errors(tmp_path, bomb)


def test_cli_validate_exit_codes(tmp_path):
    path = _write(tmp_path, GOOD.replace("  epochs: 2", "  epocs: 2"))
    proc = dlcli("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "train.epocs: unknown key 'epocs'; did you mean 'epochs'?" in proc.stderr
    good = dlcli("validate", str(_write(tmp_path, GOOD, "g.yaml")), cwd=tmp_path)
    assert good.returncode == 0 and "ok" in good.stdout


def test_cli_missing_config_file(tmp_path):
    proc = dlcli("train", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"nope.yaml: config file not found (resolved to {tmp_path.resolve() / 'nope.yaml'})" in proc.stderr


def test_config_show_prints_resolved_config(tmp_path):
    proc = dlcli("config", "show", str(_write(tmp_path, GOOD)), "-o", "seed=7", cwd=tmp_path)
    assert proc.returncode == 0
    assert "seed: 7\n" in proc.stdout and "batch_size: 32" in proc.stdout
