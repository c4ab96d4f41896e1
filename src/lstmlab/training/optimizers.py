"""Optimizers that own their state, with Keras 3's update rules and defaults.

With ``g`` the (clipped) gradient, ``lr`` the learning rate at this step and
``t`` the 1-based step number::

    SGD       v = momentum*v - lr*g;   w += v                  (nesterov: w += momentum*v - lr*g)
    RMSprop   a = rho*a + (1-rho)*g^2; w -= lr*g / sqrt(a + eps)      (centered: a - mean(g)^2)
    Adagrad   a += g^2;                w -= lr*g / sqrt(a + eps)      (a starts at 0.1)
    Adam      m += (1-b1)(g - m);  v += (1-b2)(g^2 - v)
              w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)

Gradient clipping, at most one of: ``clipnorm`` (each gradient's L2 norm),
``global_clipnorm`` (the norm of all gradients together), ``clipvalue``
(each element).
"""
from __future__ import annotations

import math

import numpy as np

from ..registry import Registry


def _number(name, v, *, low=0.0, strict=False, high=None):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > low if strict else v >= low) and (high is None or v < high)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        bound += f" and < {high}" if high is not None else ""
        raise ValueError(f"{name}: expected a number {bound}, got {v!r}")
    return float(v)


class LearningRateSchedule:
    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
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


class Optimizer:
    name = "optimizer"
    slot_names: tuple = ()

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None, global_clipnorm=None):
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("clipnorm, clipvalue, global_clipnorm: expected at most one of them, got "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self.clipnorm = None if clipnorm is None else _number("clipnorm", clipnorm, strict=True)
        self.clipvalue = None if clipvalue is None else _number("clipvalue", clipvalue, strict=True)
        self.global_clipnorm = None if global_clipnorm is None else _number("global_clipnorm", global_clipnorm, strict=True)
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: dict[str, dict[str, np.ndarray]] = {s: {} for s in self.slot_names}

    @property
    def learning_rate(self):
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, (dict, LearningRateSchedule)):
            value = SCHEDULES.get(value, argument="learning_rate")
        else:
            value = _number("learning_rate", value, strict=True)
        self._lr = value

    def current_learning_rate(self) -> float:
        return self._lr(self.iterations) if isinstance(self._lr, LearningRateSchedule) else self._lr

    def clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
            if norm > self.global_clipnorm:
                grads = [g * (self.global_clipnorm / norm) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                n = math.sqrt(float(np.sum(np.square(g, dtype=np.float64))))
                out.append(g * (self.clipnorm / n) if n > self.clipnorm else g)
            grads = out
        if self.clipvalue is not None:
            grads = [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def apply(self, weights, grads) -> None:
        """One update of ``weights`` (live :class:`~lstmlab.layers.Weight` objects) in place."""
        grads = self.clip([np.asarray(g) for g in grads])
        lr = self.current_learning_rate()
        for w, g in zip(weights, grads):
            slots = {}
            for s in self.slot_names:
                if w.path not in self.slots[s]:
                    self.slots[s][w.path] = self._initial_slot(s, w.value)
                slots[s] = self.slots[s][w.path]
            self._update(w.value, g.astype(w.value.dtype, copy=False), lr, slots)
        self.iterations += 1

    def _initial_slot(self, slot, value):
        return np.zeros_like(value)

    def _update(self, w, g, lr, slots):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        lr = self._lr
        if isinstance(lr, LearningRateSchedule):
            lr = SCHEDULES.serialize(lr)
        return {"learning_rate": lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}


OPTIMIZERS = Registry("optimizer", Optimizer, ignore_case=True)  # Keras matches optimizer names in any case


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        self.momentum = _number("momentum", momentum, high=1.0)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()
        super().__init__(learning_rate, **kwargs)

    def _update(self, w, g, lr, slots):
        if self.momentum == 0:
            w -= lr * g
            return
        v = slots["momentum"]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            w += self.momentum * v - lr * g
        else:
            w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, **kwargs):
        self.rho = _number("rho", rho, high=1.0)
        self.momentum = _number("momentum", momentum, high=1.0)
        self.epsilon = _number("epsilon", epsilon)
        self.centered = bool(centered)
        self.slot_names = ("velocity",) + (("average_gradient",) if centered else ()) + (
            ("momentum",) if self.momentum > 0 else ())
        super().__init__(learning_rate, **kwargs)

    def _update(self, w, g, lr, slots):
        a = slots["velocity"]
        a *= self.rho
        a += (1 - self.rho) * g * g
        denom = a + self.epsilon
        if self.centered:
            mg = slots["average_gradient"]
            mg *= self.rho
            mg += (1 - self.rho) * g
            denom = denom - mg * mg
        step = lr * g / np.sqrt(denom)
        if self.momentum > 0:
            m = slots["momentum"]
            m *= self.momentum
            m += step
            step = m
        w -= step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    name = "adagrad"
    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs):
        self.initial_accumulator_value = _number("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = _number("epsilon", epsilon)
        super().__init__(learning_rate, **kwargs)

    def _initial_slot(self, slot, value):
        return np.full_like(value, self.initial_accumulator_value)

    def _update(self, w, g, lr, slots):
        a = slots["accumulator"]
        a += g * g
        w -= lr * g / np.sqrt(a + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 **kwargs):
        self.beta_1 = _number("beta_1", beta_1, high=1.0)
        self.beta_2 = _number("beta_2", beta_2, high=1.0)
        self.epsilon = _number("epsilon", epsilon)
        super().__init__(learning_rate, **kwargs)

    def _update(self, w, g, lr, slots):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)  # bias correction folded into the step
        m, v = slots["m"], slots["v"]
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        w -= alpha * m / (np.sqrt(v) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


get, serialize, deserialize = OPTIMIZERS.get, OPTIMIZERS.serialize, OPTIMIZERS.deserialize
