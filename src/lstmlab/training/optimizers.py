"""Optimizers that own their state, with Keras 3's update rules and defaults.

With ``g`` the (clipped) gradient, ``lr`` the learning rate at this step and
``t`` the 1-based step number::

    SGD       v = momentum*v - lr*g;   w += v                  (nesterov: w += momentum*v - lr*g)
    RMSprop   a = rho*a + (1-rho)*g^2; w -= lr*g / sqrt(a + eps)      (centered: a - mean(g)^2)
    Adagrad   a += g^2;                w -= lr*g / sqrt(a + eps)      (a starts at 0.1)
    Adam      m += (1-b1)(g - m);  v += (1-b2)(g^2 - v)
              w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)   (amsgrad: v -> v_hat = max(v_hat, v))
    AdamW     w -= lr*weight_decay*w, then Adam              (decoupled weight decay, Loshchilov & Hutter)
    Nadam     m, v as Adam;  u_s = b1*(1 - 0.5*0.96^s),  U_t = u_1*...*u_t
              m_hat = u_{t+1}*m / (1 - U_{t+1}) + (1 - u_t)*g / (1 - U_t);  v_hat = v / (1 - b2^t)
              w -= lr * m_hat / (sqrt(v_hat) + eps)
    Adamax    m += (1-b1)(g - m);  u = max(b2*u, |g|)
              w -= lr * m / ((1 - b1^t) * (u + eps))

Before the update, as Keras's base optimizer does: gradient clipping, at most
one of ``clipnorm`` (each gradient's L2 norm), ``global_clipnorm`` (the norm of
all gradients together), ``clipvalue`` (each element); then, with
``weight_decay`` set (any optimizer; AdamW defaults to 0.004),
``w -= lr * weight_decay * w``.

Slots (``optimizer.slots[slot][weight path]``, saved in model files) hold the
per-weight state; anything else an update needs (Nadam's ``U_t``) is a function
of ``iterations``, which is saved too, so a restored optimizer continues exactly.
"""
from __future__ import annotations

import math

import numpy as np

from ..registry import Registry
from .schedules import SCHEDULES, ExponentialDecay, LearningRateSchedule, StepDecay, _number


class Optimizer:
    name = "optimizer"
    slot_names: tuple = ()

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None, global_clipnorm=None, weight_decay=None):
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("clipnorm, clipvalue, global_clipnorm: expected at most one of them, got "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self.clipnorm = None if clipnorm is None else _number("clipnorm", clipnorm, strict=True)
        self.clipvalue = None if clipvalue is None else _number("clipvalue", clipvalue, strict=True)
        self.global_clipnorm = None if global_clipnorm is None else _number("global_clipnorm", global_clipnorm, strict=True)
        self.weight_decay = None if weight_decay is None else _number("weight_decay", weight_decay)
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
        if self.weight_decay:
            for w in weights:  # decoupled decay, before the update, at this step's rate (Keras's order)
                w.value -= w.value * (self.weight_decay * lr)
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
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay}


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

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **kwargs):
        self.beta_1 = _number("beta_1", beta_1, high=1.0)
        self.beta_2 = _number("beta_2", beta_2, high=1.0)
        self.epsilon = _number("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("m", "v") + (("v_hat",) if self.amsgrad else ())
        super().__init__(learning_rate, **kwargs)

    def _update(self, w, g, lr, slots):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)  # bias correction folded into the step
        m, v = slots["m"], slots["v"]
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        if self.amsgrad:  # the largest second moment so far: steps never grow back (Reddi et al., 2018)
            np.maximum(slots["v_hat"], v, out=slots["v_hat"])
            v = slots["v_hat"]
        w -= alpha * m / (np.sqrt(v) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay: ``w -= lr * weight_decay * w`` before each Adam step (Keras's defaults)."""

    name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ValueError("weight_decay: expected a number >= 0.0 for AdamW, got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class _TwoMoments(Optimizer):
    """What Nadam and Adamax share: the decay rates of their two moments and epsilon, checked and saved."""

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 **kwargs):
        self.beta_1 = _number("beta_1", beta_1, high=1.0)
        self.beta_2 = _number("beta_2", beta_2, high=1.0)
        self.epsilon = _number("epsilon", epsilon)
        super().__init__(learning_rate, **kwargs)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


@OPTIMIZERS.register("nadam")
class Nadam(_TwoMoments):
    """Adam with Nesterov momentum (Dozat, 2016), with Keras's momentum schedule ``u_s = b1*(1 - 0.5*0.96^s)``."""

    name = "nadam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 **kwargs):
        self._product_at = (0, 1.0)  # (t, U_t): the last product computed, so a step extends it by one factor
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)

    _SETTLED = 1000  # 0.96**1000 ~ 2e-18: from here on u_s is beta_1 to double precision

    def _u(self, s: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**s)

    def _u_product(self, t: int) -> float:
        """``U_t = u_1 * ... * u_t``, a pure function of t (so restoring ``iterations`` restores it).

        Extended one factor per step from the last product; a jump (a loaded model with a large step count)
        costs at most ``_SETTLED`` multiplications: past that, ``0.96**s`` is below 1e-17 and every further
        factor is ``beta_1`` exactly, so no memory or time grows with t.
        """
        last_t, product = self._product_at
        if t < last_t or t - last_t > self._SETTLED:
            last_t, product = 0, 1.0
        for s in range(last_t + 1, min(t, self._SETTLED) + 1 if t > self._SETTLED else t + 1):
            product *= self._u(s)
        if t > self._SETTLED:
            product *= self.beta_1 ** (t - max(last_t, self._SETTLED))
        self._product_at = (t, product)
        return product

    def _update(self, w, g, lr, slots):
        t = self.iterations + 1
        u_t, u_next = self._u(t), self._u(t + 1)
        prod_t, prod_next = self._u_product(t), self._u_product(t + 1)
        m, v = slots["m"], slots["v"]
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        # The Nesterov look-ahead: next step's momentum on m plus this step's share of the raw gradient.
        m_hat = (u_next / (1 - prod_next)) * m + ((1 - u_t) / (1 - prod_t)) * g
        v_hat = v / (1 - self.beta_2**t)
        w -= lr * m_hat / (np.sqrt(v_hat) + self.epsilon)


@OPTIMIZERS.register("adamax")
class Adamax(_TwoMoments):
    """Adam with the infinity norm in place of the second moment (Kingma & Ba, section 7.1)."""

    name = "adamax"
    slot_names = ("m", "u")

    def _update(self, w, g, lr, slots):
        t = self.iterations + 1
        m, u = slots["m"], slots["u"]
        m += (1 - self.beta_1) * (g - m)
        np.maximum(self.beta_2 * u, np.abs(g), out=u)  # an exponentially weighted infinity norm: no bias to correct
        w -= (lr / (1 - self.beta_1**t)) * m / (u + self.epsilon)


get, serialize, deserialize = OPTIMIZERS.get, OPTIMIZERS.serialize, OPTIMIZERS.deserialize

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Adamax", "ExponentialDecay", "LearningRateSchedule", "Nadam",
           "OPTIMIZERS", "Optimizer", "RMSprop", "SCHEDULES", "StepDecay", "deserialize", "get", "serialize"]
