"""What every tuning objective (train, forecast, classify) shares: its options, its space and its budget, and
the spec a worker process rebuilds it from."""
from __future__ import annotations

from .space import Param


class Objective:
    """One command's objective. Subclasses set ``command``, ``parameters``, ``value_unit``, ``columns`` and
    ``run_hint``, and define ``__call__(trial)``, ``default_space()`` and ``best_line(trial)``."""

    command = ""

    def __init__(self, options: dict, space, minutes=None):
        self.options, self.space, self.minutes = dict(options), tuple(space), minutes

    @classmethod
    def from_spec(cls, spec: dict) -> "Objective":
        return cls(spec["options"], [Param(**p) for p in spec["space"]], spec.get("minutes"))

    def spec(self) -> dict:
        return {"command": self.command, "options": self.options, "minutes": self.minutes,
                "space": [p.__dict__ for p in self.space]}
