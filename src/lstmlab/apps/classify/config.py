"""The configuration of a classification run: the model's shape and how it is trained, both saved in every
checkpoint so a run describes itself. Every check names the option the user typed."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ...layers import cell_kinds
from .data import BUILTIN


def _int(option: str, value, low: int = 1):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{option}: expected {what}, got {value!r}")


def _fraction(option: str, value, high: float = 1.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < high:
        raise ValueError(f"{option}: expected a number in (0, {high:g}), got {value!r}")


@dataclass
class ModelConfig:
    """Embedding -> ``layers`` recurrent layers of ``cell`` (optionally Bidirectional) -> Dense."""

    vocab_size: int
    n_classes: int
    embedding: int = 64
    units: int = 64
    layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = False

    def __post_init__(self):
        _int("--vocab-size", self.vocab_size, 3)
        _int("--embedding", self.embedding)
        _int("--units", self.units)
        _int("--layers", self.layers)
        if self.cell not in cell_kinds():
            raise ValueError(f"--cell: expected one of {', '.join(cell_kinds())}, got {self.cell!r}")
        _int("labels", self.n_classes, 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls)})


@dataclass
class TrainConfig:
    """Where the data come from, how they are split and tokenised, and how long and how fast to train."""

    data: str = BUILTIN
    text: str | None = None
    label: str | None = None
    tokens: str = "char"
    vocab_size: int = 4000
    maxlen: int | None = None
    limit: int | None = None
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    batch_size: int = 32
    learning_rate: float = 2e-3
    clipnorm: float | None = 1.0
    epochs: int = 8
    minutes: float | None = None
    steps: int | None = None
    class_weight: str = "none"
    seed: int = 0

    def __post_init__(self):
        if self.tokens not in ("char", "word"):
            raise ValueError(f"--tokens: expected char or word, got {self.tokens!r}")
        _int("--vocab-size", self.vocab_size, 3)
        for option, v in (("--maxlen", self.maxlen), ("--limit", self.limit), ("--steps", self.steps)):
            if v is not None:
                _int(option, v)
        _fraction("--test-fraction", self.test_fraction, 0.9)
        _fraction("--val-fraction", self.val_fraction, 0.9)
        if self.test_fraction + self.val_fraction >= 0.95:
            raise ValueError(f"--test-fraction + --val-fraction: expected less than 0.95 (training needs the "
                             f"rest), got {self.test_fraction + self.val_fraction:g}")
        _int("--batch-size", self.batch_size)
        _int("--epochs", self.epochs)
        _int("--seed", self.seed, 0)
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0 \
                or not math.isfinite(self.learning_rate):
            raise ValueError(f"--lr: expected a number > 0, got {self.learning_rate!r}")
        if self.clipnorm is not None and not (self.clipnorm > 0 and math.isfinite(self.clipnorm)):
            raise ValueError(f"--clip: expected a number > 0 (or 0 for none), got {self.clipnorm!r}")
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise ValueError(f"--minutes: expected a number > 0, got {self.minutes!r}")
        if self.class_weight not in ("none", "balanced"):
            raise ValueError(f"--class-weight: expected none or balanced, got {self.class_weight!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls)})


# What a resumed run may change: the budget. Everything else fixes the data, the split, the tokens, the
# weights' shapes or the optimizer's trajectory, so changing it would make a different run.
RESUMABLE = {"epochs": "--epochs", "minutes": "--minutes", "steps": "--steps"}
