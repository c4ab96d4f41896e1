"""What a forecast run is: the data it reads, its windows and splits, its model and its training.

One dataclass, stored in every checkpoint of the run, so a run directory describes itself and
``--resume`` and ``predict`` need nothing but the directory.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ...layers import cell_kinds
from .data import BUILTIN


def _positive_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")


def _fraction(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 0.5:
        raise ValueError(f"{name}: expected a fraction between 0 and 0.5, got {v!r}")


@dataclass
class ForecastConfig:
    """A forecast run's description (every field has the CLI option of the same name)."""

    csv: str = BUILTIN  # absolute path, or the built-in series
    target: list = field(default_factory=lambda: ["co2_ppm"])
    features: list = field(default_factory=list)
    date: str | None = "date"
    lookback: int = 24
    horizon: int = 6
    stride: int = 1
    season: int | None = 12
    folds: int = 1
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    cell: str = "lstm"
    layers: int = 1
    units: int = 32
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("lookback", "horizon", "stride", "folds", "layers", "units", "epochs", "batch_size"):
            _positive_int(name, getattr(self, name))
        _positive_int("seed", self.seed, minimum=0)
        if self.season is not None:
            _positive_int("season", self.season)
            if self.season > self.lookback:
                raise ValueError(f"season: expected at most --lookback ({self.lookback}), got {self.season}; the "
                                 "seasonal-naive forecast reads the value one season back inside the window")
        _fraction("val_fraction", self.val_fraction)
        _fraction("test_fraction", self.test_fraction)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate: expected a number > 0, got {lr!r}")
        if self.cell not in cell_kinds():
            raise ValueError(f"cell: expected one of {', '.join(cell_kinds())}, got {self.cell!r}")
        if not self.target or not all(isinstance(t, str) and t for t in self.target):
            raise ValueError(f"target: expected one or more column names, got {self.target!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ForecastConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def cell_name(self) -> str:
        """How the report names the model: "the LSTM", "the GRU"."""
        return self.cell.upper() if len(self.cell) <= 4 else self.cell
