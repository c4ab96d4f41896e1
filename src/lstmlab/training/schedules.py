"""Learning-rate schedules: ``lr = schedule(step)`` with ``step`` the optimizer's 0-based update count.

With ``lr0`` the initial learning rate and ``s`` the step, as Keras 3 computes them::

    ExponentialDecay        lr0 * decay_rate ** (s / decay_steps)            (floor(s / decay_steps) with staircase)
    StepDecay               ExponentialDecay with staircase=True
    CosineDecay             s' = min(s, decay_steps)
                            lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * s' / decay_steps)) + alpha)
      with warmup_target    s < warmup_steps: lr0 + (warmup_target - lr0) * s / warmup_steps  (linear warm-up)
                            else the cosine above from warmup_target, on s - warmup_steps
    PiecewiseConstantDecay  values[0] for s <= boundaries[0], values[i] for boundaries[i-1] < s <= boundaries[i],
                            values[-1] for s > boundaries[-1]

A schedule is given as an optimizer's ``learning_rate`` and saved with it as
``{"class_name", "config"}`` (registered by its Keras class name).
"""
from __future__ import annotations

import math

from ..registry import Registry


def _number(name, v, *, low=0.0, strict=False, high=None):
    """``v`` as a float, or ValueError naming ``name`` when it is not a finite number in the range."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > low if strict else v >= low) and (high is None or v < high)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        bound += f" and < {high}" if high is not None else ""
        raise ValueError(f"{name}: expected a number {bound}, got {v!r}")
    return float(v)


def _integer(name, v, low=0):
    """``v`` as an int >= ``low``; a float with an integer value is accepted (JSON may write 1000.0)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    return int(v)


class LearningRateSchedule:
    """Base class: a callable ``step -> learning rate`` with a ``get_config`` of its constructor's arguments."""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


SCHEDULES = Registry("learning-rate schedule", LearningRateSchedule)


@SCHEDULES.register
class ExponentialDecay(LearningRateSchedule):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored step with ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate, strict=True)
        self.decay_steps = _number("decay_steps", decay_steps, strict=True)
        self.decay_rate = _number("decay_rate", decay_rate, strict=True)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


@SCHEDULES.register
class StepDecay(ExponentialDecay):
    """Step decay: multiply by ``decay_rate`` every ``decay_steps`` steps (staircase exponential decay)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float = 0.5):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase=True)

    def get_config(self):
        config = super().get_config()
        config.pop("staircase")
        return config


@SCHEDULES.register
class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha * initial_learning_rate`` over ``decay_steps``,
    optionally after a linear warm-up to ``warmup_target`` over ``warmup_steps`` (Loshchilov & Hutter, SGDR).

    Parameters
    ----------
    initial_learning_rate : float
        The rate at step 0 (the start of the warm-up when ``warmup_target`` is given).
    decay_steps : int
        Steps of the cosine part; after them the rate stays at its floor.
    alpha : float
        The floor, as a fraction of the rate the cosine starts from.
    warmup_target : float or None
        The rate the warm-up reaches; ``None`` means no warm-up (``warmup_steps`` is then ignored, as in Keras).
    warmup_steps : int
        Length of the linear warm-up.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _integer("decay_steps", decay_steps, low=1)
        self.alpha = _number("alpha", alpha)
        self.name = str(name)
        self.warmup_target = None if warmup_target is None else _number("warmup_target", warmup_target)
        self.warmup_steps = _integer("warmup_steps", warmup_steps)

    def _cosine(self, step, start):
        fraction = step / self.decay_steps
        decayed = (1 - self.alpha) * 0.5 * (1.0 + math.cos(math.pi * fraction)) + self.alpha
        return start * decayed

    def __call__(self, step):
        if self.warmup_target is None:
            return self._cosine(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            rise = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + rise * step / self.warmup_steps
        return self._cosine(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


@SCHEDULES.register
class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate between step boundaries: ``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``.

    Parameters
    ----------
    boundaries : list of int, increasing
        The steps where the rate changes (a step equal to a boundary still has the earlier value, as in Keras).
    values : list of float
        One more value than boundaries.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError(f"boundaries, values: expected two lists, got {type(boundaries).__name__} and "
                             f"{type(values).__name__}")
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values: expected one more value than boundaries ({len(boundaries)} boundaries, "
                             f"so {len(boundaries) + 1} values), got {len(values)} values {list(values)}")
        self.boundaries = [_number(f"boundaries[{k}]", b) for k, b in enumerate(boundaries)]
        if any(b1 <= b0 for b0, b1 in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries: expected strictly increasing steps, got {list(boundaries)}")
        self.values = [_number(f"values[{k}]", v) for k, v in enumerate(values)]
        self.name = str(name)
        self._raw = (list(boundaries), list(values))  # saved as given: ints stay ints in the config

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self._raw[0], "values": self._raw[1], "name": self.name}


def get(spec, *, argument: str = "learning_rate") -> LearningRateSchedule:
    """A schedule from an instance or ``{"class_name", "config"}`` (names are Keras's class names)."""
    return SCHEDULES.get(spec, argument=argument)


serialize, deserialize = SCHEDULES.serialize, SCHEDULES.deserialize
