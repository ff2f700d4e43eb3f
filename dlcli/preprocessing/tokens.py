"""What a word is to a text model: the tokens Keras' TextVectorization makes of a text before its
vocabulary, in plain Python (no TensorFlow), for `dlcli explain` and `dlcli init --data`.

    >>> words("Don't WIN a prize!!")
    ['dont', 'win', 'a', 'prize']
"""

from __future__ import annotations

import re

#: What Keras' TextVectorization removes when it strips punctuation (its DEFAULT_STRIP_REGEX).
PUNCTUATION = re.compile(r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']")


def words(
    text: str, standardize: str | None = "lower_and_strip_punctuation", split: str = "whitespace"
) -> list[str]:
    """`text`'s tokens as a TextVectorization with these `standardize` and `split` makes them, before
    its vocabulary: what a word is to the model (`dlcli explain`, `dlcli init --data`)."""
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = text.lower()
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = PUNCTUATION.sub("", text)
    return list(text) if split == "character" else text.split()
