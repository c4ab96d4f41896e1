"""Text -> token ids -> padded rows.

Ids: 0 is padding (the Embedding's ``mask_zero=True`` masks it, so the recurrent layer skips padded steps),
1 is the out-of-vocabulary token (a character or word the training part did not have among its
``vocab_size - 2`` most frequent ones), 2.. the vocabulary. The vocabulary is built from the training part
only, so the validation and test parts contain honest out-of-vocabulary tokens, as new text will.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ...utils import pad_sequences

PAD, OOV = 0, 1
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)  # words, and each punctuation mark as a token of its own


def split_tokens(text: str, level: str) -> list:
    """The tokens of ``text``: its characters (``"char"``) or its lower-cased words and punctuation (``"word"``)."""
    if level == "char":
        return list(text)
    return _WORD.findall(text.lower())


class Tokenizer:
    """Maps tokens to ids with a fixed vocabulary; saved in the checkpoint as :meth:`to_dict`."""

    def __init__(self, level: str, tokens: list, maxlen: int):
        if level not in ("char", "word"):
            raise ValueError(f"--tokens: expected char or word, got {level!r}")
        self.level, self.tokens, self.maxlen = level, list(tokens), int(maxlen)
        self.index = {t: k + 2 for k, t in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts, level: str, vocab_size: int, maxlen: int | None) -> "Tokenizer":
        """The ``vocab_size - 2`` most frequent tokens of ``texts`` (ties in first-seen order, so the result
        is a function of the data alone); ``maxlen`` None takes the 95th percentile of the token counts."""
        counts = Counter()
        lengths = []
        for t in texts:
            toks = split_tokens(t, level)
            counts.update(toks)
            lengths.append(len(toks))
        tokens = [t for t, _ in counts.most_common(vocab_size - 2)]
        if maxlen is None:
            maxlen = max(1, int(np.percentile(lengths, 95)))
        return cls(level, tokens, maxlen)

    def __len__(self) -> int:
        """Rows of the embedding table: padding, out-of-vocabulary, then the tokens."""
        return len(self.tokens) + 2

    def ids(self, text: str) -> list:
        return [self.index.get(t, OOV) for t in split_tokens(text, self.level)]

    def encode(self, texts) -> np.ndarray:
        """(N, maxlen) int32 ids, padded at the end with 0 and cut at ``maxlen`` (a review's opening is kept)."""
        return pad_sequences([self.ids(t) for t in texts], maxlen=self.maxlen, padding="post",
                             truncating="post", value=PAD)  # (N, maxlen)

    def oov_rate(self, texts) -> float:
        ids = [i for t in texts for i in self.ids(t)]
        return float(np.mean(np.asarray(ids) == OOV)) if ids else 0.0

    def to_dict(self) -> dict:
        return {"level": self.level, "tokens": self.tokens, "maxlen": self.maxlen}

    @classmethod
    def from_dict(cls, d: dict) -> "Tokenizer":
        tokens = d["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or \
                len(set(tokens)) != len(tokens):
            raise ValueError("tokens: expected a list of distinct strings")
        if isinstance(d["maxlen"], bool) or not isinstance(d["maxlen"], int) or d["maxlen"] < 1:
            raise ValueError(f"maxlen: expected a positive integer, got {d['maxlen']!r}")
        return cls(d["level"], tokens, d["maxlen"])
