"""`dlcli schema` validates every shipped config; every `dlcli init` template validates and trains."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from conftest import CONFIGS, ROOT, dlcli, latest_run, ok, read_json

from dlcli.config.templates import TEMPLATES


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    proc = ok(dlcli("schema", cwd=tmp_path_factory.mktemp("schema")))
    return json.loads(proc.stdout)


def test_schema_is_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_validates_against_the_schema(schema, path):
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_schema_rejects_a_misspelled_key(schema):
    config = yaml.safe_load((CONFIGS / "iris.yaml").read_text())
    config["train"]["epocs"] = 3
    with pytest.raises(jsonschema.ValidationError, match="'epocs' was unexpected"):
        jsonschema.Draft202012Validator(schema).validate(config)


# Each template, pointed at the tiny CI data by overrides, as a user would after editing its data section.
TINY = {
    "tabular-classification": [
        "data.path=" + str(ROOT / "data" / "tiny_binary.csv"),
        "data.target=label",
        "preprocessing.categorical.columns=[colour]",
    ],
    "tabular-regression": [
        "data.path=" + str(ROOT / "data" / "tiny_regression.csv"),
        "preprocessing.categorical.columns=[city]",
    ],
    "image-classification": [
        "data.path=" + str(ROOT / "data" / "tiny_digits.npz"),
        "model.input_shape=[8, 8, 1]",
        "preprocessing.image.rescale=0.0625",
    ],
    "timeseries": ["data.path=" + str(ROOT / "data" / "tiny_series.csv"), "preprocessing.window.length=10"],
    "image-folder": [  # random weights: no download in tests; small images
        "data.path=" + str(ROOT / "data" / "tiny_images"),
        "model.backbone.weights=null",
        "preprocessing.image.size=[32, 32]",
        "model.backbone.arguments={alpha: 0.35}",
        "train.fine_tune=null",  # the fine-tuning phase is tested in test_images.py
    ],
    "text-classification": [
        "data.path=" + str(ROOT / "data" / "tiny_text.tsv"),
        "preprocessing.text.max_tokens=100",
    ],
}


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_validates_and_trains(template, tmp_path, schema, cli):
    ok(dlcli("init", template, "starter.yaml", cwd=tmp_path))
    text = (tmp_path / "starter.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=dlcli.schema.json")
    assert "dlcli train starter.yaml" in text
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(text))
    ok(dlcli("validate", "starter.yaml", cwd=tmp_path))
    args = [a for o in TINY[template] for a in ("-o", o)]
    code, _, err = cli("train", "starter.yaml", "-q", *args, "-o", "train.epochs=2")  # in this process
    assert code == 0, err
    name = yaml.safe_load(text)["name"]
    assert read_json(latest_run(tmp_path, name) / "run.json")["status"] == "completed"


def test_every_key_has_a_description(schema):
    # `dlcli schema` is what editors show on hover: no key may be silent
    silent = [
        f"{name}.{key}"
        for name, part in [("Config", schema), *schema["$defs"].items()]
        for key, value in part.get("properties", {}).items()
        if not value.get("description")
    ]
    assert silent == []
