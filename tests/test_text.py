"""Text columns (preprocessing.text): a TextVectorization inside the model, adapted on the train split;
raw strings into predict; int sequences for an Embedding whose input_dim is the vocabulary's size; the
mistakes a user makes with them; per-class metrics. The SMS Spam Collection as it ships (slow)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import (
    CONFIGS,
    ROOT,
    ci_config,
    fails,
    latest_run,
    model_layers,
    read_json,
    train_shipped,
)

TEXT = ci_config("text")


def _layers(run) -> dict[str, dict]:
    return {
        layer["class_name"] + ":" + layer["config"]["name"]: layer["config"] for layer in model_layers(run)
    }


def test_the_vectorizer_is_fitted_on_train_and_lives_in_the_model(text_run):
    data = read_json(text_run / "run.json")["data"]
    assert data["rows"] == {"train": 144, "validation": 48, "test": 48}  # every line of the headerless TSV
    assert data["columns"]["text"] == ["message"]
    assert data["columns"]["ignored"] == {"label": "the target"}
    described = data["text"]["message"]
    assert described["vocabulary_size"] == 100  # max_tokens: words and pairs, plus the OOV token
    assert set(described["oov_share"]) == {"train", "validation", "test"}
    assert described["oov_share"]["train"] == 0.0  # the vocabulary is the train split's
    state = read_json(text_run / "preprocessing.json")["text"]
    assert state["output_mode"] == "tf_idf" and state["ngrams"] == 2
    assert len(state["vocabularies_"][0]) == 99 and len(state["idf_weights_"][0]) == 99
    layers = _layers(text_run)
    vectorizer = layers["TextVectorization:vectorize_message"]
    assert vectorizer["output_mode"] == "tf_idf"
    assert vectorizer["vocabulary"] == state["vocabularies_"][0]
    inputs = [layer for name, layer in layers.items() if name.startswith("InputLayer")]
    assert [(i["name"], i["dtype"]) for i in inputs] == [("message", "string")]


def test_metrics_per_class_and_roc_auc(text_run):
    test = read_json(text_run / "metrics.json")["test"]
    assert set(test["per_class"]) == {"ham", "spam"}
    assert set(test["per_class"]["spam"]) == {"precision", "recall", "f1", "support"}
    assert sum(c["support"] for c in test["per_class"].values()) == 48
    assert 0.5 < test["roc_auc"] <= 1.0


def test_predict_takes_raw_messages_with_or_without_a_header(tmp_path, text_run, cli):
    # a CSV as pandas writes it (quoted fields: its own quoting, not the TSV's `quoting: none`), and a
    # file like the training one (headerless, tabs, the label column too, a stray quote)
    messages = ["WIN a free prize, claim cash now!", "see you at lunch later, thanks", 'a stray " quote']
    pd.DataFrame({"message": messages}).to_csv(tmp_path / "with_header.csv", index=False)
    (tmp_path / "like_training.tsv").write_text("".join(f"?\t{m}\n" for m in messages))
    for name in ("with_header.csv", "like_training.tsv"):
        out = tmp_path / f"{name}.predictions.csv"
        code, _, err = cli("predict", str(text_run), "--input", name, "--output", str(out))
        assert code == 0, err
        table = pd.read_csv(out)
        given = ["label", "message"] if name.endswith(".tsv") else ["message"]
        assert list(table.columns) == [*given, "prediction", "probability_ham", "probability_spam"]
        assert table["message"].tolist() == messages
        assert table["prediction"].tolist()[:2] == ["spam", "ham"]


def test_evaluate_prints_the_per_class_table(text_run, cli):
    code, out, err = cli("evaluate", str(text_run))
    assert code == 0, err
    assert "per class (test)" in out
    assert "precision" in out and "spam" in out


def test_int_sequences_feed_an_embedding_sized_by_the_vocabulary_and_resume(cli, tmp_path):
    config = tmp_path / "seq.yaml"
    config.write_text(
        TEXT.replace("name: ci-text", "name: seq")
        .replace(
            "text: {columns: [message], output_mode: tf_idf, max_tokens: 100, ngrams: 2}",
            "text: {columns: [message], output_mode: int, output_sequence_length: 12}",
        )
        .replace(
            "    - Dense: {units: 8, activation: relu}",
            "    - Embedding: {output_dim: 8}\n    - GlobalAveragePooling1D: {}",
        )
        .replace("epochs: 3", "epochs: 2")
    )
    code, out, err = cli("train", str(config), "-q")
    assert code == 0, err
    run = latest_run(tmp_path, "seq")
    size = read_json(run / "run.json")["data"]["text"]["message"]["vocabulary_size"]
    vocabulary = read_json(run / "preprocessing.json")["text"]["vocabularies_"][0]
    assert size == len(vocabulary) + 2  # the padding 0 and the out-of-vocabulary token
    layers = _layers(run)
    (embedding,) = (c for name, c in layers.items() if name.startswith("Embedding"))
    assert embedding["input_dim"] == size
    assert layers["TextVectorization:vectorize_message"]["output_sequence_length"] == 12
    # resuming rebuilds the vectorizer from preprocessing.json and continues
    code, out, err = cli("train", "--resume", str(run), "-q", "-o", "train.epochs=4")
    assert code == 0, err
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2, 3, 4]


def test_text_beside_numeric_and_categorical_columns(cli, tmp_path):
    """Also: TF-IDF vectors train sparse (sparse.py), through a leading Dropout and the features beside
    them, and the saved model, which vectorizes dense, scores what training measured; a resumed run
    computes exactly what an uninterrupted one did."""
    _mixed_table(tmp_path)
    config = tmp_path / "mixed.yaml"
    config.write_text(
        TEXT.replace("name: ci-text", "name: mixed")
        .replace(f"path: {ROOT}/data/tiny_text.tsv", "path: mixed.csv")
        .replace("  columns: [label, message]     # the file has no header row\n", "")
        .replace('  quoting: none                 # a stray " is part of the message\n', "")
        .replace("  layers:\n", "  layers:\n    - Dropout: {rate: 0.3}\n")
        .replace("epochs: 3", "epochs: 4")
    )
    code, out, err = cli("train", str(config))
    assert code == 0, err
    assert "columns used: 1 numeric (length) 1 categorical (channel) 1 text (message)" in " ".join(
        err.split()
    )
    assert "text column 'message': a vocabulary of 100 tokens from the train split" in " ".join(err.split())
    run = latest_run(tmp_path, "mixed")
    inputs = sorted(c["name"] for n, c in _layers(run).items() if n.startswith("InputLayer"))
    assert inputs == ["features", "message"]
    assert read_json(run / "run.json")["compute"]["text_vectors"] == "sparse"
    history, metrics = pd.read_csv(run / "history.csv"), read_json(run / "metrics.json")
    best = read_json(run / "run.json")["epochs"]["best"]
    assert metrics["validation"]["loss"] == pytest.approx(history["val_loss"][best - 1], rel=1e-5)
    code, out, err = cli("train", str(config), "-q", "-o", "train.epochs=2", "--run-dir", "resumed")
    assert code == 0, err
    (resumed,) = (tmp_path / "resumed" / "mixed").glob("2*")
    code, out, err = cli("train", "--resume", str(resumed), "-q", "-o", "train.epochs=4")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(resumed / "history.csv"), history)
    pd.DataFrame({"length": [20], "channel": ["sms"], "message": ["free cash prize now"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, out, err = cli("predict", str(run), "--input", "new.csv", "--output", "new_out.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "new_out.csv")["prediction"].tolist() == ["spam"]


def _mixed_table(tmp_path) -> None:
    frame = pd.read_csv(
        ROOT / "data" / "tiny_text.tsv", sep="\t", header=None, quoting=3, names=["label", "message"]
    )
    frame["length"] = frame["message"].str.len()
    frame["channel"] = ["sms", "mail"] * (len(frame) // 2)
    frame.to_csv(tmp_path / "mixed.csv", index=False)


BRANCHES = """name: branches
data: {path: mixed.csv, target: label, split: {validation: 0.2, test: 0.2}}
preprocessing:
  text: {columns: [message], output_mode: int, max_tokens: 100, output_sequence_length: 12}
model:
  branches:
    message:
      - Embedding: {output_dim: 8}
      - GlobalAveragePooling1D: {}
      - Dense: {units: 4, activation: relu, name: words}
    features:
      - Dense: {units: 4, activation: relu, name: numbers}
  combine: COMBINE
  layers:
    - Dense: {units: 1, activation: sigmoid}
optimizer: {name: adam, learning_rate: 0.05}
loss: binary_crossentropy
metrics: [accuracy]
train: {epochs: 2, batch_size: 32, tensorboard: false}
"""


@pytest.mark.parametrize("combine", ["concatenate", "add"])
def test_branches_give_each_input_its_own_layers_before_they_join(cli, tmp_path, combine):
    """An int sequence of words through its Embedding branch, the numbers through theirs, joined side
    by side or added, then the shared layers: the saved model takes the raw columns and predicts."""
    _mixed_table(tmp_path)
    (tmp_path / "b.yaml").write_text(BRANCHES.replace("COMBINE", combine))
    code, out, err = cli("train", "b.yaml", "-q")
    assert code == 0, err
    run = latest_run(tmp_path, "branches")
    layers = _layers(run)
    joined = "Concatenate:features_and_text" if combine == "concatenate" else "Add:combine_add"
    assert {"Dense:words", "Dense:numbers", joined} <= set(layers)
    assert any(k.startswith("Embedding:") for k in layers)
    inputs = sorted(c["name"] for n, c in layers.items() if n.startswith("InputLayer"))
    assert inputs == ["features", "message"]
    pd.DataFrame({"length": [20], "channel": ["sms"], "message": ["free cash prize now"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    code, out, err = cli("predict", str(run), "--input", "new.csv", "--output", "new_out.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "new_out.csv")["prediction"].isin(["spam", "ham"]).all()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    message:",
            "    mesage:",
            "b.yaml:7:5: model.branches.mesage: no input is named 'mesage' (this model's: features, "
            "message); did you mean 'message'?",
        ),
        (
            "      - Embedding: {output_dim: 8}\n      - GlobalAveragePooling1D: {}\n",
            "",
            "b.yaml:8:9: model.branches.message.0.Dense: output_mode int gives 'message' as a sequence of "
            "token numbers, which must become a vector before it joins the other inputs: give it a branch "
            "that starts with `- Embedding: {output_dim: 16}` and pools the sequence (GlobalAveragePooling1D)",
        ),
        (
            "name: numbers}",
            "name: numbers}\n      - Dropout: {rate: 0.1}\n      - Dense: {units: 6}",
            "b.yaml:15:3: model.combine: add needs every input at the same width, stated by the last layer "
            "of its branch (features: 6, message: 4): end each branch with a Dense of the same units, or "
            "combine: concatenate",
        ),
        (
            "preprocessing:\n  text: {columns: [message], output_mode: int, max_tokens: 100, "
            "output_sequence_length: 12}\n",
            "",
            "b.yaml:4:3: model.branches: branches give each input its own layers, and this model has one "
            "input (its numeric and categorical columns; text columns would be others, in "
            "preprocessing.text, and a column of image files another, in preprocessing.image.column): put "
            "those layers in model.layers",
        ),
    ],
)
def test_branch_mistakes(cli, tmp_path, old, new, expected):
    text = BRANCHES.replace("COMBINE", "add")
    assert old in text
    (tmp_path / "b.yaml").write_text(text.replace(old, new))
    assert expected in _fails(cli, "validate", "b.yaml")


def test_an_int_sequence_beside_other_columns_needs_a_branch(cli, tmp_path):
    _mixed_table(tmp_path)
    text = BRANCHES.replace("COMBINE", "concatenate")
    model = text[text.index("model:") : text.index("optimizer:")]
    (tmp_path / "b.yaml").write_text(
        text.replace(model, "model:\n  layers:\n    - Embedding: {output_dim: 4}\n    - Flatten: {}\n"
                     "    - Dense: {units: 1, activation: sigmoid}\n")
    )  # fmt: skip
    assert (
        "b.yaml:4:30: preprocessing.text.output_mode: int gives token sequences for an Embedding, which "
        "cannot take the other feature columns too (length, channel): add them to data.drop, give the "
        "text a branch of its own that starts with an Embedding (model.branches), or use output_mode: "
        "tf_idf, multi_hot or count to combine them"
    ) in _fails(cli, "train", "b.yaml")


# ---- mistakes: exit 2 with the file, line and key, before anything trains ------------------------
_fails = fails


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "output_mode: tf_idf, max_tokens: 100, ngrams: 2",
            "output_mode: int",
            "c.yaml:13:7: model.layers.0.Dense: output_mode int (preprocessing.text) gives sequences of "
            "token numbers, which an Embedding turns into vectors: start model.layers with `- Embedding: "
            "{output_dim: 64}` (input_dim comes from the vocabulary), or set preprocessing.text.output_mode "
            "to tf_idf, multi_hot or count for Dense layers",
        ),
        (
            "ngrams: 2}",
            "output_sequence_length: 20}",
            "c.yaml:10:68: preprocessing.text.output_sequence_length: applies to output_mode int (this is "
            "tf_idf): remove it",
        ),
        (
            "output_mode: tf_idf",
            "output_mode: tfidf",
            "c.yaml:10:30: preprocessing.text.output_mode: Input should be 'int', 'multi_hot', 'count' or "
            "'tf_idf' (got 'tfidf'); did you mean 'tf_idf'?",
        ),
        (
            "columns: [message], output_mode: tf_idf",
            "columns: [message, label], output_mode: int",
            "preprocessing.text.columns: output_mode int feeds one column's sequence to the Embedding (got "
            "2 columns)",
        ),
        (
            "  split: {validation: 0.2, test: 0.2}\n",
            "  split: {validation: 0.2, test: 0.2}\n  time_column: label\n",
            None,
        ),
    ],
    ids=["int-into-dense", "sequence-length-with-vectors", "unknown-mode", "int-with-two-columns", "ok"],
)
def test_text_config_mistakes(cli, tmp_path, old, new, expected):
    (tmp_path / "c.yaml").write_text(TEXT.replace(old, new))
    if expected is None:
        code, out, err = cli("validate", "c.yaml")
        assert code == 0, err
        return
    assert expected in _fails(cli, "validate", "c.yaml")


def test_embedding_without_text_needs_input_dim(cli, tmp_path):
    config = (
        (CONFIGS / "ci" / "binary.yaml")
        .read_text()
        .replace(
            "    - Dense: {units: 8, activation: relu}", "    - Embedding: {output_dim: 4}\n    - Flatten: {}"
        )
    )
    (tmp_path / "c.yaml").write_text(config)
    assert (
        "c.yaml:11:7: model.layers.0.Embedding: Embedding needs input_dim, the number of distinct token "
        "numbers it reads; with preprocessing.text (output_mode: int) it is the vocabulary's size and may "
        "be left out"
    ) in _fails(cli, "validate", "c.yaml")


def test_text_with_a_window_or_image_arrays_is_refused(cli, tmp_path):
    series = (
        (CONFIGS / "ci" / "series.yaml")
        .read_text()
        .replace("preprocessing:\n", "preprocessing:\n  text: {columns: [value], output_mode: tf_idf}\n")
    )
    (tmp_path / "s.yaml").write_text(series)
    assert (
        "s.yaml:9:3: preprocessing.text: text columns are for tables; a series (preprocessing.window) reads numbers"
        in _fails(cli, "validate", "s.yaml")
    )
    images = (
        (CONFIGS / "ci" / "images.yaml")
        .read_text()
        .replace("preprocessing:\n", "preprocessing:\n  text: {columns: [x], output_mode: tf_idf}\n")
    )
    (tmp_path / "i.yaml").write_text(images)
    assert (
        "preprocessing.text: text columns need a table (CSV, TSV, Parquet, JSON lines), not image arrays"
        in _fails(cli, "validate", "i.yaml")
    )


def test_a_text_column_of_numbers_or_a_missing_one(cli, tmp_path):
    frame = pd.DataFrame({"label": ["a", "b"] * 30, "message": [str(i * 1.5) for i in range(60)]})
    frame.loc[3, "message"] = "some words"
    frame.to_csv(tmp_path / "n.csv", index=False)
    config = (
        TEXT.replace(f"path: {ROOT}/data/tiny_text.tsv", "path: n.csv")
        .replace("  columns: [label, message]     # the file has no header row\n", "")
        .replace("loss: binary_crossentropy", "loss: binary_crossentropy")
    )
    (tmp_path / "c.yaml").write_text(config)
    err = _fails(cli, "train", "c.yaml")
    assert (
        "c.yaml:9:20: preprocessing.text.columns.0: column 'message' holds numbers, not text (59 of 60 "
        "values are numbers, the first '0.0' at "
    ) in err
    assert "n.csv line 2): list it under preprocessing.numeric.columns" in err
    assert not (tmp_path / "runs").exists()  # data checks come before the run folder
    (tmp_path / "c.yaml").write_text(config.replace("columns: [message]", "columns: [mesage]"))
    err = _fails(cli, "train", "c.yaml")
    assert (
        "preprocessing.text.columns.0: column 'mesage' not found in the data (it has label, message); did you mean 'message'?"
        in err
    )


# ---- the SMS Spam Collection as it ships (slow) -------------------------------------------------
@pytest.mark.slow
def test_sms_spam_as_it_ships(tmp_path, shared_data, cli):
    run = train_shipped(cli, "sms_spam.yaml", "sms-spam")  # data.path found in the mirror
    data = read_json(run / "run.json")["data"]
    assert data["source"] == str(shared_data / "sms-spam.tsv")
    assert sum(data["rows"].values()) == 5574  # pandas' defaults merge rows at stray quotes: 5572
    test = read_json(run / "metrics.json")["test"]
    assert test["accuracy"] >= 0.98, test
    assert test["per_class"]["spam"]["f1"] >= 0.90, test
    messages = [
        "URGENT! You have won a 1 week FREE membership in our £100,000 Prize Jackpot! Txt CLAIM to 81010",
        "Ok lar... I'll see you at home tonight, don't forget the milk",
        "FREE entry into our weekly competition, just text WIN to 80086 now! 18 T&C www.txttowin.co.uk",
        "Sorry, I'll call later in the meeting",
    ]
    pd.DataFrame({"message": messages}).to_csv(tmp_path / "messages.csv", index=False)
    code, _, err = cli("predict", str(run), "--input", "messages.csv", "--output", "out.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == ["spam", "ham", "spam", "ham"]
