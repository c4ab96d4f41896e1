"""Configuration of a character model, its training and its sampling: one small dataclass per concern.

Checkpoints store the first two next to the vocabulary, so a run directory
describes itself.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ...functional.activations import ACTIVATIONS
from ...layers import cell_kinds
from ...training.optimizers import OPTIMIZERS
BUILTIN = "builtin:pydoc_data.topics"
# Sampling divides float32 logits (|z| < 3.4e38) by the temperature in float64 (max 1.8e308): from 1e-6 up
# nothing can overflow. Below it the distribution is already one-hot for any real model; --top-k 1 is greedy.
MIN_TEMPERATURE = 1e-6


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a number > 0, got {v!r}")


def default_embedding(vocab_size: int) -> int:
    """About 4 sqrt(V), between 64 and 256: 64 for the built-in corpus's 103 characters, 256 for a Chinese
    text's thousands. Measured (README, "The recipe"): on 6,045 characters an embedding of 256 was 0.28 nats
    ahead of 64 after 200 steps, for ~8% more arithmetic per character."""
    return int(min(256, max(64, 4 * round(math.sqrt(vocab_size)))))


SMALL_CORPUS = 1_000_000  # training characters below which the default recipe adds dropout
SMALL_CORPUS_DROPOUT = 0.2


def default_dropout(train_chars: int) -> float:
    """Dropout between layers for a text of ``train_chars`` training characters: 0.2 below a million, else 0.

    Measured (README, "The recipe"): on the built-in corpus (419,000 training characters) the model passes
    over the text dozens of times in a few minutes and its validation loss turns up after ~10 passes
    without dropout; a text of millions of characters is seen about once in a 10-minute run, where
    dropout only slows learning.
    """
    return SMALL_CORPUS_DROPOUT if train_chars < SMALL_CORPUS else 0.0


class _Config:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ModelConfig(_Config):
    """Embedding -> ``layers`` x recurrent(``units``) -> Dense(vocab_size) logits."""

    vocab_size: int
    layers: int = 2
    units: int = 256
    embedding: int | None = None  # None: default_embedding(vocab_size)
    dropout: float | None = None  # None: default_dropout(training characters), set by the trainer
    cell: str = "lstm"
    # Standard deviation of the embedding's normal initialization; None is Keras's default (uniform +-0.05),
    # which stalls at the unigram entropy on a large vocabulary (see the README's recipe section).
    embedding_std: float | None = 1.0
    # Start the output bias at the log frequencies of the training text's characters.
    unigram_bias: bool = True
    # The cells' activation (candidate and output squashing): tanh, or softsign as DL4J's tuning advice
    # suggests trying. Checkpoints written before this field existed mean tanh.
    activation: str = "tanh"

    def __post_init__(self):
        _positive_int("vocab_size", self.vocab_size)
        if self.embedding is None:
            self.embedding = default_embedding(self.vocab_size)
        for name in ("vocab_size", "layers", "units", "embedding"):
            _positive_int(name, getattr(self, name))
        if self.embedding_std is not None:
            _positive("embedding_std", self.embedding_std)
        if self.dropout is not None and (isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float))
                                         or not 0 <= self.dropout < 1):
            raise ValueError(f"dropout: expected a rate in [0, 1), got {self.dropout!r}")
        if self.cell not in cell_kinds():
            raise ValueError(f"cell: expected one of {', '.join(cell_kinds())}, got {self.cell!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(sorted(ACTIVATIONS))}, got {self.activation!r}")


@dataclass
class TrainConfig(_Config):
    """How to train: char-rnn style contiguous streams with stateful truncated BPTT."""

    seq_len: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    clipnorm: float | None = 5.0
    epochs: int = 20
    minutes: float | None = None
    steps: int | None = None  # stop after this many optimizer steps in all (a budget, like minutes)
    val_fraction: float = 0.1
    seed: int = 0
    eval_every: int | None = None  # steps between validations; None = once per epoch
    corpus: str = BUILTIN

    def __post_init__(self):
        for name in ("seq_len", "batch_size", "epochs"):
            _positive_int(name, getattr(self, name))
        _positive("learning_rate", self.learning_rate)
        if self.clipnorm is not None:
            _positive("clipnorm", self.clipnorm)
        if self.minutes is not None:
            _positive("minutes", self.minutes)
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if self.eval_every is not None:
            _positive_int("eval_every", self.eval_every)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS.names())}, got {self.optimizer!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction: expected a fraction in (0, 0.5), got {self.val_fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")


@dataclass
class SampleConfig(_Config):
    """How to sample: ``temperature`` divides the logits; ``top_k`` keeps the k most likely characters."""

    length: int = 500
    temperature: float = 1.0
    top_k: int | None = None
    prime: str = ""
    seed: int | None = None

    def __post_init__(self):
        _positive_int("length", self.length)
        _positive("temperature", self.temperature)
        if self.temperature < MIN_TEMPERATURE:
            raise ValueError(f"temperature: expected a number >= {MIN_TEMPERATURE:g} (smaller ones overflow; use "
                             f"--top-k 1 for greedy sampling), got {self.temperature!r}")
        if self.top_k is not None:
            _positive_int("top_k", self.top_k)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
