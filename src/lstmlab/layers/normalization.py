"""LayerNormalization and BatchNormalization with Keras 3's arguments, weights and formulas.

The math is :mod:`lstmlab.functional.normalization`. Weights, in Keras's order:

* LayerNormalization: ``gamma``, ``beta``, each shaped like the normalized axes (``(features,)``).
* BatchNormalization: ``gamma``, ``beta`` (trainable), ``moving_mean``, ``moving_variance``
  (non-trainable, updated by each training call), each ``(features,)``.

Keras's constraints are not supported: ``beta_constraint`` / ``gamma_constraint`` accept only None
(what a Keras file holds unless the user set one), so Keras configs load and nothing is silently dropped.
"""
from __future__ import annotations

import numpy as np

from ..functional import normalization as N
from ..functional._validate import as_float_array
from . import initializers as inits
from . import regularizers as regs
from .base import LAYERS, Layer


def check_epsilon(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) \
            or value <= 0:
        raise ValueError(f"epsilon: expected a positive finite number, got {value!r}")
    return float(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return bool(value)


def check_no_constraint(name: str, value) -> None:
    if value is not None:
        raise ValueError(f"{name}: constraints are not supported; expected None, got {value!r}")


def _check_axis_argument(axis):
    ok = (isinstance(axis, (int, np.integer)) and not isinstance(axis, bool)) or (
        isinstance(axis, (list, tuple)) and len(axis) > 0
        and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis))
    if not ok:
        raise ValueError(f"axis: expected an integer or a non-empty list of integers, got {axis!r}")
    return int(axis) if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]


class _ScaleShift(Layer):
    """What both normalizations share: the optional gamma and beta and their arguments."""

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                 gamma_regularizer, beta_constraint, gamma_constraint, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_epsilon(epsilon)
        self.center = check_bool("center", center)
        self.scale = check_bool("scale", scale)
        self.beta_initializer = inits.get(beta_initializer, argument="beta_initializer")
        self.gamma_initializer = inits.get(gamma_initializer, argument="gamma_initializer")
        self.beta_regularizer = regs.get(beta_regularizer, argument="beta_regularizer")
        self.gamma_regularizer = regs.get(gamma_regularizer, argument="gamma_regularizer")
        check_no_constraint("beta_constraint", beta_constraint)
        check_no_constraint("gamma_constraint", gamma_constraint)

    def _add_gamma_beta(self, shape: tuple) -> None:
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer) \
            if self.center else None

    def _gamma_beta(self):
        return (None if self.gamma is None else self.gamma.value), (None if self.beta is None else self.beta.value)

    def _weight_grads(self, dgamma, dbeta) -> list:
        return ([dgamma] if self.scale else []) + ([dbeta] if self.center else [])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": inits.serialize(self.beta_initializer),
                "gamma_initializer": inits.serialize(self.gamma_initializer),
                "beta_regularizer": regs.serialize(self.beta_regularizer),
                "gamma_regularizer": regs.serialize(self.gamma_regularizer),
                "beta_constraint": None, "gamma_constraint": None}


@LAYERS.register
class LayerNormalization(_ScaleShift):
    """Normalizes each example over ``axis`` (the features by default): ``(x - mean) / sqrt(var + eps) * gamma + beta``.

    Passes a time mask through unchanged, as Keras does.
    """

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, rms_scaling: bool = False, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        self.axis = _check_axis_argument(axis)
        if rms_scaling:  # deprecated in Keras 3 (it scales by the variance); keras.layers.RMSNormalization replaces it
            raise ValueError(f"rms_scaling: only false is supported (deprecated in Keras), got {rms_scaling!r}")
        self.rms_scaling = False

    def build(self, input_shape):
        axes = N.normalized_axes(self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(s is None for s in shape):
            raise ValueError(f"axis: the normalized axes {self.axis!r} of input shape {tuple(input_shape)} "
                             "must have known sizes")
        self._norm_shape = shape  # the sizes the weights were made for, also when there are no weights
        self._add_gamma_beta(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        N.normalized_axes(self.axis, len(input_shape))
        return tuple(input_shape)

    def forward(self, x, training=False, mask=None):
        x = as_float_array("x", x).astype(self.dtype, copy=False)
        axes = N.normalized_axes(self.axis, x.ndim, argument="x")
        if tuple(x.shape[a] for a in axes) != self._norm_shape:
            raise ValueError(f"x: layer {self.name!r} was built for size {self._norm_shape} on axis {self.axis!r}, "
                             f"got shape {x.shape}")
        y, cache = N.layer_norm_forward(x, *self._gamma_beta(), axes, self.epsilon)
        self._cache = cache if training else None
        return y

    def _backward(self, dy):
        dx, dgamma, dbeta = N.layer_norm_backward(np.asarray(dy, self.dtype), self._cache)
        return dx, self._weight_grads(dgamma, dbeta)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "rms_scaling": False}


@LAYERS.register
class BatchNormalization(_ScaleShift):
    """Normalizes each feature (``axis``) with statistics over every other axis: batch and time for
    ``(batch, time, features)``.

    Training (``training=True`` and the layer trainable) uses the batch's mean and biased variance, over
    the valid positions when a mask ``(batch, time)`` is given, and then moves the running statistics:
    ``moving = moving * momentum + batch * (1 - momentum)``. Inference, and a frozen layer
    (``trainable=False``) even in training, uses the moving statistics. Exactly Keras 3's rules.
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, renorm: bool = False,
                 renorm_clipping=None, renorm_momentum: float = 0.99, synchronized: bool = False, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis: expected an integer, got {axis!r}")
        self.axis = int(axis)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)) \
                or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.moving_mean_initializer = inits.get(moving_mean_initializer, argument="moving_mean_initializer")
        self.moving_variance_initializer = inits.get(moving_variance_initializer,
                                                     argument="moving_variance_initializer")
        if renorm:
            raise ValueError(f"renorm: batch renormalization is not supported; expected false, got {renorm!r}")
        if synchronized:  # Keras itself supports it only on TensorFlow
            raise ValueError(f"synchronized: expected false (one process holds the whole batch), got {synchronized!r}")
        self.renorm, self.renorm_clipping, self.renorm_momentum = False, renorm_clipping, float(renorm_momentum)
        self.synchronized = False

    def build(self, input_shape):
        self._ndim = len(input_shape)
        self._feature_axis = N.normalized_axes(self.axis, self._ndim)[0]
        features = input_shape[self._feature_axis]
        if features is None:
            raise ValueError(f"axis: the feature axis {self.axis} of input shape {tuple(input_shape)} must have a "
                             "known size")
        self._add_gamma_beta((features,))
        self.moving_mean = self.add_weight("moving_mean", (features,), self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (features,), self.moving_variance_initializer,
                                               trainable=False)
        self.built = True

    def compute_output_shape(self, input_shape):
        N.normalized_axes(self.axis, len(input_shape))
        return tuple(input_shape)

    def forward(self, x, training=False, mask=None):
        x = as_float_array("x", x).astype(self.dtype, copy=False)
        features = self.moving_mean.shape[0]
        if x.ndim != self._ndim or x.shape[self._feature_axis] != features:
            raise ValueError(f"x: layer {self.name!r} was built for {features} features on axis {self.axis} of a "
                             f"{self._ndim}-D input, got shape {x.shape}")
        gamma, beta = self._gamma_beta()
        if training and self.trainable:
            if mask is not None:
                mask = np.asarray(mask)
                if mask.shape != x.shape[:-1]:
                    raise ValueError(f"mask: expected shape {x.shape[:-1]} (x's shape without its last axis), "
                                     f"got {mask.shape}")
                mask = mask.astype(bool)
            y, mean, var, cache = N.batch_norm_train_forward(x, gamma, beta, self._feature_axis, self.epsilon, mask)
            # (10): the running statistics move after the step, from the batch's biased statistics
            m = self.momentum
            self.moving_mean.value[...] = self.moving_mean.value * m + mean * (1.0 - m)
            self.moving_variance.value[...] = self.moving_variance.value * m + var * (1.0 - m)
            self._cache = ("batch", cache)
        else:
            y, cache = N.batch_norm_inference_forward(x, self.moving_mean.value, self.moving_variance.value,
                                                      gamma, beta, self._feature_axis, self.epsilon)
            self._cache = ("moving", cache) if training else None
        return y

    def _backward(self, dy):
        kind, cache = self._cache
        dy = np.asarray(dy, self.dtype)
        if kind == "batch":
            dx, dgamma, dbeta = N.batch_norm_train_backward(dy, cache)
            # the output does not depend on the running statistics in a training step
            dmean, dvar = np.zeros_like(self.moving_mean.value), np.zeros_like(self.moving_variance.value)
        else:
            dx, dgamma, dbeta, dmean, dvar = N.batch_norm_inference_backward(dy, cache)
        return dx, self._weight_grads(dgamma, dbeta) + [dmean, dvar]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "moving_mean_initializer": inits.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": inits.serialize(self.moving_variance_initializer),
                "synchronized": False, "renorm": False, "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}
