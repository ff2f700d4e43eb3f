"""Free-text columns: one keras `TextVectorization` per column, adapted on the train split only and
built into the model, so `model.keras` takes raw strings and predict reads text as it is.

The adapted vocabulary (and the TF-IDF weights) are kept in preprocessing.json as well: the model is
rebuilt from them when a run resumes, and they are the fitted state an export reads.

    >>> text = TextVectorizer(["message"], "tf_idf", 20000, 2, None).fit(train_frame)
    >>> text.vocabulary_size(0), text.layers()[0][0]
    (20001, 'message')
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from dlcli.preprocessing import state_schema
from dlcli.preprocessing.tokens import words
from dlcli.preprocessing.transforms import Stateful
from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

#: Texts vectorized per call when adapting and counting (bounds the padded int matrix).
CHUNK = 4096


def input_name(column: str) -> str:
    """The model input that takes a text column: its name, with characters Keras refuses as `_`."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", column)
    return name if name and name != "features" else f"text_{name}"


def strings(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as an array of Python strings; an empty cell is the empty text."""
    return frame[column].fillna("").astype(str).to_numpy(dtype=object)


class TextVectorizer(Stateful):
    """Keras' TextVectorization arguments (the `text` key of the config) and, per column, the
    vocabulary adapted on the training rows (most frequent first) and its TF-IDF weights."""

    state = state_schema.TextState

    def __init__(
        self,
        columns: list[str],
        output_mode: str = "int",
        max_tokens: int | None = 20000,
        ngrams: int | None = None,
        output_sequence_length: int | None = None,
        standardize: str | None = "lower_and_strip_punctuation",
        split: str = "whitespace",
    ):
        self.columns, self.output_mode, self.max_tokens = list(columns), output_mode, max_tokens
        self.ngrams, self.output_sequence_length = ngrams, output_sequence_length
        self.standardize, self.split = standardize, split

    def _arguments(self, output_mode: str | None = None) -> dict[str, Any]:
        mode = output_mode or self.output_mode
        return {
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": self.ngrams,
            "output_mode": mode,
            "output_sequence_length": self.output_sequence_length if mode == "int" else None,
        }

    def fit(self, frame: pd.DataFrame, source: str = "") -> TextVectorizer:
        import keras

        self.vocabularies_: list[list[str]] = []
        self.idf_weights_: list[list[float]] | None = [] if self.output_mode == "tf_idf" else None
        for column in self.columns:
            layer = keras.layers.TextVectorization(**self._arguments())
            layer.adapt(strings(frame, column), batch_size=CHUNK)
            vocabulary = [str(t) for t in layer.get_vocabulary(include_special_tokens=False)]
            if not vocabulary:
                raise DataError(
                    f"{source}: text column {column!r} has no words in its {len(frame)} training rows "
                    "(every text is empty once standardized): fill it, or remove it from "
                    "preprocessing.text.columns"
                )
            self.vocabularies_.append(vocabulary)
            if self.idf_weights_ is not None:
                store: dict = {}
                layer.save_own_variables(store)  # Keras' public saving hook: [OOV, then each token]
                self.idf_weights_.append([float(w) for w in store["idf_weights"][1 : len(vocabulary) + 1]])
        return self

    def words(self, text: str) -> list[str]:
        """`text`'s tokens as this vectorizer's layers make them (module-level `words`)."""
        return words(text, self.standardize, self.split)

    def vocabulary_size(self, i: int) -> int:
        """Token numbers the vectorizer of column i gives: its vocabulary plus the out-of-vocabulary
        token, and the padding 0 in int mode (an Embedding's `input_dim`)."""
        return len(self.vocabularies_[i]) + (2 if self.output_mode == "int" else 1)

    @property
    def width(self) -> int:
        """Values the text columns add to the feature vector (vector modes; an int sequence is not
        part of it)."""
        if self.output_mode == "int":
            return 0
        return sum(self.vocabulary_size(i) for i in range(len(self.columns)))

    def layers(self) -> list[tuple[str, Any]]:
        """`(input name, TextVectorization)` per column, built from the fitted vocabulary."""
        import keras

        out = []
        for i, column in enumerate(self.columns):
            idf = self.idf_weights_[i] if self.idf_weights_ is not None else None
            layer = keras.layers.TextVectorization(
                **self._arguments(),
                vocabulary=self.vocabularies_[i],
                idf_weights=idf,
                name=f"vectorize_{input_name(column)}",
            )
            out.append((input_name(column), layer))
        return out

    def inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {input_name(c): strings(frame, c) for c in self.columns}

    def oov_share(self, frame: pd.DataFrame) -> dict[str, float]:
        """Per column, the share of the words of `frame` that are not in the vocabulary (single words:
        n-grams are not counted)."""
        import keras

        shares = {}
        for column, vocabulary in zip(self.columns, self.vocabularies_, strict=True):
            words = [t for t in vocabulary if " " not in t] if self.ngrams else vocabulary
            count = keras.layers.TextVectorization(
                # no max_tokens: int mode adds a padding token, which a full vector vocabulary would exceed
                **{
                    **self._arguments("int"),
                    "ngrams": None,
                    "output_sequence_length": None,
                    "max_tokens": None,
                },
                vocabulary=words or ["\x00"],
            )
            texts, unknown, total = strings(frame, column), 0, 0
            for start in range(0, len(texts), CHUNK):
                ids = np.asarray(count(texts[start : start + CHUNK]))
                unknown += int((ids == 1).sum())
                total += int((ids > 0).sum())
            shares[column] = round(unknown / total, 6) if total else 0.0
        return shares

    def describe(self, splits: dict[str, pd.DataFrame]) -> dict:
        """run.json's `data.text`: per column the vocabulary size and each split's out-of-vocabulary share."""
        by_split = {name: self.oov_share(frame) for name, frame in splits.items()}
        return {
            column: {
                "vocabulary_size": self.vocabulary_size(i),
                "oov_share": {name: shares[column] for name, shares in by_split.items()},
            }
            for i, column in enumerate(self.columns)
        }
