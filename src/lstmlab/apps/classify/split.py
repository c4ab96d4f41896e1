"""From labeled text to the arrays a run trains on: label ids, an optional stratified sample (``--limit``), the
stratified training / validation / test split, and the tokenizer fitted on the training part.

Everything here is a function of the data and the seed, so a resumed run rebuilds exactly the same parts (and
checks that the tokenizer it rebuilds is the one its checkpoint carries).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TrainConfig
from .data import DataError, LabeledText
from .tokens import Tokenizer

MIN_PER_CLASS = 3  # one example each for training, validation and test


@dataclass
class Prepared:
    labels: list  # class names; id k is labels[k]
    texts: dict  # part -> list of texts ("train", "val", "test")
    y: dict  # part -> (N,) int64 class ids
    x: dict  # part -> (N, maxlen) int32 token ids
    tokenizer: Tokenizer
    n_total: int


def stratified_split(labels: np.ndarray, n_classes: int, test_fraction: float, val_fraction: float,
                     seed: int) -> tuple:
    """``(train, val, test)`` index arrays; each class is split in the same proportions (seeded).

    Every class keeps at least one example in each part, so a class needs :data:`MIN_PER_CLASS` examples.
    """
    rng = np.random.default_rng([seed, 3])
    parts = ([], [], [])
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = min(max(1, round(test_fraction * len(idx))), len(idx) - 2)
        n_val = min(max(1, round(val_fraction * len(idx))), len(idx) - n_test - 1)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def stratified_sample(labels: np.ndarray, n_classes: int, limit: int, seed: int) -> np.ndarray:
    """Indices of about ``limit`` examples, each class keeping its share (and at least 3), seeded."""
    rng = np.random.default_rng([seed, 5])
    keep = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx), max(MIN_PER_CLASS, round(limit * len(idx) / len(labels))))
        keep.append(idx[rng.permutation(len(idx))[:k]])
    return np.sort(np.concatenate(keep))


def label_ids(labels: list) -> tuple:
    """``(class names sorted, (N,) ids)``; refuses a single class and a class too small to split."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise DataError(f"--label: the data hold a single class ({names[0]!r}); expected at least two")
    index = {lb: k for k, lb in enumerate(names)}
    y = np.array([index[lb] for lb in labels], np.int64)
    counts = np.bincount(y, minlength=len(names))
    small = [f"{names[k]!r} ({counts[k]})" for k in range(len(names)) if counts[k] < MIN_PER_CLASS]
    if small:
        raise DataError(f"--label: class {', '.join(small)} has too few examples; expected at least "
                        f"{MIN_PER_CLASS} per class (one each for training, validation and test)")
    return names, y


def prepare(data: LabeledText, tcfg: TrainConfig, tokenizer: Tokenizer | None = None) -> Prepared:
    names, y = label_ids(data.labels)
    rows = np.arange(len(y))
    if tcfg.limit is not None and tcfg.limit < len(y):
        rows = stratified_sample(y, len(names), tcfg.limit, tcfg.seed)
    parts = dict(zip(("train", "val", "test"),
                     (rows[i] for i in stratified_split(y[rows], len(names), tcfg.test_fraction,
                                                        tcfg.val_fraction, tcfg.seed))))
    texts = {k: [data.texts[i] for i in v] for k, v in parts.items()}
    if tokenizer is None:
        tokenizer = Tokenizer.fit(texts["train"], tcfg.tokens, tcfg.vocab_size, tcfg.maxlen)
    x = {k: tokenizer.encode(v) for k, v in texts.items()}  # part -> (N, maxlen)
    return Prepared(names, texts, {k: y[v] for k, v in parts.items()}, x, tokenizer, len(rows))
