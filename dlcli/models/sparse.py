"""Training on text vectors kept sparse: each text vectorized once, the model trained on the sparse rows.

A multi-hot, count or TF-IDF vector of 20,000 tokens holds a few dozen non-zero values. Keras'
`TextVectorization` in the model (or in a plain script's tf.data pipeline) makes it dense on every
step of every epoch, and the `Dropout` and `Dense` after it then draw 20,000 random numbers and
multiply 20,000 columns per row: on sms-spam that was 85 % of an epoch. Here each split's texts are
vectorized once, by the model's own vectorizer in sparse `count` mode, times its TF-IDF weights,
and a *trainer* trains the very layers of the saved model on those rows: a leading `Dropout` drops
only the non-zero values (with the layer's own rate and seed generator), a `Dense` multiplies them
sparse, and every later layer sees dense activations as in the saved model. The saved model, its
checkpoints and its optimizer state are the ordinary `model.keras` that takes raw strings.

Used where it is exact and cheap to keep so: one device, float32, no XLA, layers one after another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from dlcli.config import graph
from dlcli.preprocessing.text import CHUNK, input_name

if TYPE_CHECKING:
    from dlcli.config.config import Config
    from dlcli.preprocessing.text import TextVectorizer


def usable(config: Config, text: TextVectorizer | None, distributed: bool, embedded: bool = False) -> bool:
    """Whether the text columns are vectors a trainer can keep sparse here (`embedded`: categorical
    columns go through Embedding layers before the text vectors join them: kept in the model)."""
    return (
        text is not None
        and text.output_mode != "int"
        and not embedded
        and not graph.is_graph(config.model.layers)  # the trainer runs the layers one after another
        and not config.model.branches
        and not config.several
        and not distributed
        and not config.train.mixed_precision
        and config.train.jit_compile is not True
    )


class Trainer:
    """The sparse inputs of each split and the model that trains the saved model's layers on them."""

    def __init__(self, model: keras.Model, config: Config, text: TextVectorizer, steps_per_execution: int):
        self.names = [input_name(c) for c in text.columns]
        self.layers = {name: model.get_layer(f"vectorize_{name}") for name in self.names}
        self.has_features = "features" in model.input
        stack = [model.get_layer(index=i) for i in range(-len(config.model.layers), 0)]
        self.model = SparseTrainer(self.has_features, self.names, stack, name=f"{model.name}_sparse")
        self.model.compile(
            optimizer=model.optimizer,  # one optimizer: the saved model's checkpoints hold its state
            loss=config.loss,
            metrics=list(config.metrics),
            steps_per_execution=steps_per_execution,
            jit_compile=False,
        )

    def inputs(self, x: dict) -> dict:
        """Named inputs with each text column as (token ids, values) per row, vectorized once."""
        out: dict[str, Any] = {"features": x["features"]} if self.has_features else {}
        for name in self.names:
            out[name] = _vectors(self.layers[name], x[name])
        return out

    def finish(self, x: dict) -> dict:
        """A batch gathered from `inputs` → the trainer's inputs (sparse vectors); for tf.data's map."""

        out = {"features": x["features"]} if self.has_features else {}
        for name in self.names:
            ids, values = x[name]
            width = self.layers[name].vocabulary_size()
            rows = tf.cast(ids.nrows(), tf.int64)
            indices = tf.stack([ids.value_rowids(), ids.flat_values], axis=1)
            out[name] = tf.SparseTensor(indices, values.flat_values, tf.stack([rows, width]))
        return out


def _vectors(layer, texts):
    """One text column → (ids, values) as ragged tensors, a row per text: the layer's vector, sparse."""

    mode = layer.get_config()["output_mode"]
    arguments = {
        k: layer.get_config()[k]
        for k in ("max_tokens", "standardize", "split", "ngrams")
        if k in layer.get_config()
    }
    counting = keras.layers.TextVectorization(
        **arguments,
        output_mode="multi_hot" if mode == "multi_hot" else "count",
        sparse=True,
        vocabulary=layer.get_vocabulary(include_special_tokens=False),
    )
    weights = None
    if mode == "tf_idf":
        store: dict = {}
        layer.save_own_variables(store)  # [OOV, then each token], as the layer multiplies them
        weights = np.asarray(store["idf_weights"], dtype="float32")
    rows, ids, values = [], [], []
    for start in range(0, len(texts), CHUNK):
        part = counting(tf.constant(np.asarray(texts[start : start + CHUNK], dtype=str)))
        index = part.indices.numpy()
        order = np.lexsort((index[:, 1], index[:, 0]))  # row-major, as sparse kernels expect
        index, value = index[order], part.values.numpy()[order].astype("float32")
        rows.append(index[:, 0] + start)
        ids.append(index[:, 1])
        values.append(value * weights[index[:, 1]] if weights is not None else value)
    n = len(texts)
    rows_all = np.concatenate(rows) if rows else np.zeros(0, "int64")
    ids_all = np.concatenate(ids) if ids else np.zeros(0, "int64")
    values_all = np.concatenate(values) if values else np.zeros(0, "float32")
    return (
        tf.RaggedTensor.from_value_rowids(tf.constant(ids_all, tf.int64), rows_all, nrows=n),
        tf.RaggedTensor.from_value_rowids(tf.constant(values_all, tf.float32), rows_all, nrows=n),
    )


class SparseTrainer(keras.Model):
    """The saved model's configured layers, applied to sparse vectors (see the module docstring)."""

    def __init__(self, has_features: bool, names: list[str], stack: list, **kwargs):
        super().__init__(**kwargs)
        self.has_features, self.names, self.stack = has_features, names, stack

    def call(self, inputs, training=False):
        parts = [tf.sparse.from_dense(inputs["features"])] if self.has_features else []
        parts += [inputs[name] for name in self.names]
        x = parts[0] if len(parts) == 1 else tf.sparse.concat(axis=1, sp_inputs=parts)
        for layer in self.stack:
            if isinstance(x, tf.SparseTensor):
                if isinstance(layer, keras.layers.Dropout) and layer.noise_shape is None:
                    x = _dropout(layer, x) if training else x
                    continue
                if not isinstance(layer, keras.layers.Dense):
                    x = tf.sparse.to_dense(x)  # a layer that takes dense inputs only
            x = layer(x, training=training)
        return x


def _dropout(layer, x):
    """Keras' Dropout on the non-zero values only: the same rate, scaling and seed generator."""
    if layer.rate == 0:
        return x
    keep = keras.random.uniform(tf.shape(x.values), seed=layer.seed_generator) >= layer.rate
    values = tf.where(keep, x.values / (1 - layer.rate), tf.zeros_like(x.values))
    return tf.SparseTensor(x.indices, values, x.dense_shape)
