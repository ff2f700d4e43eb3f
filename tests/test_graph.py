"""`model.layers` as a graph (config/graph.py): named layers, `inputs`, repeated blocks. The plan read
directly from YAML lists; every mistake through `dlcli validate` (before TensorFlow, FILE:LINE:COL);
a shape Keras alone can judge through `dlcli train`, with the layer's key path. The shipped graph
(configs/ci/images.yaml, a residual convnet) trains, exports and serves in test_export, test_serve and
test_hostile_*, through the shared `images_run`; a graph resumes bit for bit in test_multitask (its
trunk adds two named layers)."""

from __future__ import annotations

import textwrap

import yaml
from conftest import CONFIGS, ROOT, fails

from dlcli.config import graph


def _layers(text: str) -> list:
    return yaml.safe_load(textwrap.dedent(text))


def test_a_plain_list_is_a_chain_and_its_last_layer_the_output():
    plan, problems = graph.plan(_layers("[{Dense: {units: 4}}, {Dropout: {rate: 0.1}}, {Dense: {units: 1}}]"))
    assert problems == []
    assert [(n.id, n.layer, n.inputs) for n in plan.nodes] == [
        ("#0", "Dense", ("input",)),
        ("#1", "Dropout", ("#0",)),
        ("#2", "Dense", ("#1",)),
    ]
    assert plan.output == "#2" and plan.last.key == ("model", "layers", 2, "Dense")
    assert not graph.is_graph(_layers("[{Dense: {units: 1}}]"))


def test_a_block_is_expanded_once_per_repetition_each_reading_the_last():
    layers = _layers(
        """
        - Conv2D: {filters: 8, kernel_size: 3, name: stem}
        - block:
            name: res
            repeat: 2
            layers:
              - Conv2D: {filters: 8, kernel_size: 3, padding: same, name: conv}
              - Add: {inputs: [input, conv]}
        - Dense: {units: 1, inputs: [res]}
        """
    )
    plan, problems = graph.plan(layers)
    assert problems == [] and graph.is_graph(layers)
    assert [(n.id, n.kwargs.get("name"), n.inputs) for n in plan.nodes] == [
        ("stem", "stem", ("input",)),
        ("res/1/conv", "res_1_conv", ("stem",)),
        ("res/1/#1", None, ("stem", "res/1/conv")),
        ("res/2/conv", "res_2_conv", ("res/1/#1",)),
        ("res/2/#1", None, ("res/1/#1", "res/2/conv")),
        ("#2", None, ("res/2/#1",)),
    ]
    assert all("inputs" not in n.kwargs for n in plan.nodes)
    assert plan.nodes[2].reads == ("input", "conv") and plan.nodes[2].key == (
        "model", "layers", 1, "block", "layers", 1, "Add"
    )  # fmt: skip
    # a layer may name a later one (built after it): the build order follows the reads
    plan, problems = graph.plan(
        _layers(
            "[{Dense: {units: 2, name: a, inputs: [b]}}, {Dense: {units: 2, name: b, inputs: [input]}},"
            " {Concatenate: {inputs: [a, b]}}]"
        )
    )
    assert problems == [] and [n.id for n in plan.nodes] == ["b", "a", "#2"] and plan.output == "#2"


def _validate(cli, tmp_path, layers: str) -> str:
    head = f"name: g\ndata: {{path: {ROOT}/data/tiny_digits.npz}}\nloss: sparse_categorical_crossentropy\nmodel:\n  layers:\n"
    (tmp_path / "g.yaml").write_text(head + textwrap.indent(textwrap.dedent(layers).lstrip("\n"), "    "))
    return fails(cli, "validate", str(tmp_path / "g.yaml"))


def test_names_and_inputs_mistakes_each_with_line_and_column(cli, tmp_path):
    err = _validate(
        cli,
        tmp_path,
        """
        - Conv2D: {filters: 8, kernel_size: 3, name: stem}
        - Conv2D: {filters: 8, kernel_size: 3, name: stem}
        - Conv2D: {filters: 8, kernel_size: 3, name: 2nd}
        - Conv2D: {filters: 8, kernel_size: 3, name: input}
        - Add: {inputs: [stem, nowhere]}
        - Dense: {units: 10, activation: softmax, inputs: [stem, input]}
        - Concatenate: {}
        """,
    )
    for message in (
        "g.yaml:7:44: model.layers.1.Conv2D.name: the name 'stem' is already given to model.layers.0.Conv2D",
        "g.yaml:8:44: model.layers.2.Conv2D.name: a layer's name is a word of letters, digits and _ (got '2nd')",
        "g.yaml:9:44: model.layers.3.Conv2D.name: 'input' names what enters the list: choose another name",
    ):
        assert message in err
    err = _validate(
        cli,
        tmp_path,
        """
        - Conv2D: {filters: 8, kernel_size: 3, name: stem}
        - Add: {inputs: [stem, nowhere]}
        - Dense: {units: 10, activation: softmax, inputs: [stem, input]}
        - Concatenate: {}
        """,
    )
    assert "g.yaml:7:13: model.layers.1.Add.inputs: no layer is named 'nowhere' (known: input, stem)" in err
    assert (
        "g.yaml:8:47: model.layers.2.Dense.inputs: Dense reads one input (got 2: stem, input): join them "
        "first with Concatenate or Add"
    ) in err
    assert (
        "g.yaml:9:7: model.layers.3.Concatenate.inputs: Concatenate joins two or more layers: name them, "
        "e.g. inputs: [input, conv]"
    ) in err


def test_a_cycle_an_unused_layer_and_widths_that_cannot_be_added(cli, tmp_path):
    err = _validate(
        cli,
        tmp_path,
        """
        - Dense: {units: 8, name: a, inputs: [b]}
        - Dense: {units: 8, name: b}
        - Dense: {units: 10, activation: softmax}
        """,
    )
    assert (
        "g.yaml:6:34: model.layers.0.Dense.inputs: the layers a → b → a read each other in a cycle: a "
        "layer can read only layers that do not read it back"
    ) in err
    err = _validate(
        cli,
        tmp_path,
        """
        - Dense: {units: 8, name: narrow}
        - Dense: {units: 16, name: wide, inputs: [input]}
        - Dense: {units: 4, name: lost, inputs: [input]}
        - BatchNormalization: {inputs: [wide]}
        - Add: {inputs: [narrow, item]}
        - Dense: {units: 10, activation: softmax}
        """.replace("item]", "wide]"),
    )
    assert err.count("nothing reads this layer's output") == 2
    assert (
        "g.yaml:8:7: model.layers.2.Dense: nothing reads this layer's output (each layer feeds the next "
        "item unless it names its inputs): name it in a later layer's inputs, or remove it"
    ) in err
    assert "g.yaml:9:7: model.layers.3.BatchNormalization: nothing reads" in err
    assert (
        "g.yaml:10:13: model.layers.4.Add.inputs: Add needs inputs of the same shape, but their last "
        "dimensions differ (narrow has 8, wide has 16): give them the same units or filters, or join "
        "them with Concatenate"
    ) in err


def test_block_mistakes(cli, tmp_path):
    err = _validate(
        cli,
        tmp_path,
        """
        - block: {repeat: 0, layers: [{Dense: {units: 3, inputs: [outside]}}], times: 2}
        - block: {name: empty, layers: []}
        - Dense: {units: 10, activation: softmax}
        """,
    )
    for message in (
        "g.yaml:6:7: model.layers.0.block: a block needs a name, which its layers' Keras names start with "
        "(e.g. `- block: {name: residual, repeat: 2, layers: [...]}`)",
        "g.yaml:6:15: model.layers.0.block.repeat: repeat is how many times the block is built, 1 or more "
        "(got 0)",
        "model.layers.0.block.times: a block has name, repeat and layers, not 'times'",
        "model.layers.0.block.layers.0.Dense.inputs: no layer is named 'outside' (known: input); a "
        "block's layers read only each other and `input`",
        "g.yaml:7:28: model.layers.1.block.layers: a block needs a list of layers",
    ):
        assert message in err
    err = _validate(
        cli, tmp_path, "- block: {name: a, layers: [{block: {name: b, layers: [{Dense: {units: 2}}]}}]}\n"
    )
    assert (
        "model.layers.0.block.layers.0.block: blocks do not nest: write the inner block's layers out" in err
    )


def test_shapes_known_only_to_keras_fail_at_build_with_the_layers_key_path(cli, tmp_path):
    text = (CONFIGS / "ci" / "images.yaml").read_text().replace("../../data/", f"{ROOT}/data/")
    text = text.replace(
        "{filters: 8, kernel_size: 3, padding: same, name: conv}", "{filters: 8, kernel_size: 3, name: conv}"
    )
    (tmp_path / "c.yaml").write_text(text)
    err = fails(cli, "train", str(tmp_path / "c.yaml"), "-q")
    assert (
        "c.yaml:17:13: model.layers.1.block.layers.1.Add: Inputs have incompatible shapes. Received shapes "
        "(8, 8, 8) and (6, 6, 8) (Add joins input, conv, which must agree on the same shape: `padding: "
        "same` keeps a convolution's height and width, or give the shortcut a Conv2D of kernel_size 1 "
        "and the same strides)"
    ) in err
    assert not list((tmp_path / "runs").glob("*/2*/model.keras"))
