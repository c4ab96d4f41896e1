"""The LSTM variants as cells: ``PeepholeLSTMCell`` and ``LayerNormLSTMCell``.

Each is the LSTM's Keras arguments and weights (kernel, recurrent kernel, bias,
gate order i, f, c, o; see :class:`~lstmlab.layers.cells.LSTMFamilyCell`) plus
its own weights, and its step is the one-step math of its functional module
with the weights bound (``GatedCell._step_math``), run over a sequence by
the RNN layer's generic loop; whole sequences run the C time loop of
:mod:`lstmlab._fast.peephole` or :mod:`lstmlab._fast.layernorm` when it covers
the call (kernels built, float32 or float64, tanh and sigmoid)::

    layer = layers.RNN(layers.PeepholeLSTMCell(64), return_sequences=True)

The equations (numbered, forward and backward) are in the modules'
docstrings: :mod:`lstmlab.functional.peephole_lstm` and
:mod:`lstmlab.functional.layernorm_lstm`.
"""
from __future__ import annotations

import numpy as np

from .._fast import layernorm as fast_layernorm  # the C time loops when they cover the call
from .._fast import peephole as fast_peephole
from ..functional import layernorm_lstm, peephole_lstm
from . import initializers as inits
from . import regularizers as regs
from .base import LAYERS
from .cells import LSTMFamilyCell


@LAYERS.register
class PeepholeLSTMCell(LSTMFamilyCell):
    """The peephole LSTM (Gers & Schmidhuber 2000; DL4J's GravesLSTM; the ``P`` input of ONNX's ``LSTM``).

    The input and forget gates also see c_{t-1}, the output gate sees c_t, each through a diagonal weight.

    Equations (:mod:`lstmlab.functional.peephole_lstm`, sigma = ``recurrent_activation``,
    tanh = ``activation``, ``z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`` in blocks
    ``zi, zf, zg, zo``)::

        (1) i_t = sigma(zi_t + p_i * c_{t-1})        (4) c_t = f_t * c_{t-1} + i_t * g_t
        (2) f_t = sigma(zf_t + p_f * c_{t-1})        (5) o_t = sigma(zo_t + p_o * c_t)
        (3) g_t = tanh(zg_t)                         (6) h_t = o_t * tanh(c_t)

    Weights: ``kernel (input_dim, 4*units)``, ``recurrent_kernel (units, 4*units)``, ``bias (4*units,)``
    and ``peephole (3, units)`` with rows p_i, p_f, p_o (ONNX's ``P`` is ``peephole[[0, 2, 1]].ravel()``).
    ``peephole_initializer`` defaults to ``"glorot_uniform"``, the kernel's default, as TF's
    ``PeepholeLSTMCell`` initializes its peephole weights with the kernel initializer.

    Other arguments are :class:`~lstmlab.layers.LSTMCell`'s.
    """

    def __init__(self, units: int, peephole_initializer="glorot_uniform", peephole_regularizer=None, **kwargs):
        super().__init__(units, **kwargs)
        self.peephole_initializer = inits.get(peephole_initializer, argument="peephole_initializer")
        self.peephole_regularizer = regs.get(peephole_regularizer, argument="peephole_regularizer")

    def _extra_weights(self, input_dim):
        shape = peephole_lstm.weight_shapes(input_dim, self.units)["peephole"]  # (3, H)
        return [("peephole", shape, self.peephole_initializer, self.peephole_regularizer)]

    def _step_math(self):
        return peephole_lstm.peephole_lstm_step, peephole_lstm.peephole_lstm_step_backward, {}

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        """Whole sequences through the C time loop (:mod:`lstmlab._fast.peephole`) when it covers the call
        (kernels built, float32 or float64, tanh and sigmoid), else None: the generic loop runs the step."""
        if not fast_peephole.covers(self.activation, self.recurrent_activation, x.dtype):
            return None
        k, r, b = self._weights_args()
        hs, (h, c), cache = fast_peephole.peephole_forward(
            x, k, r, b, self.peephole.value, states[0], states[1], mask=mask, recurrent_mask=recurrent_mask,
            need_cache=need_cache)
        return hs, [h, c], cache

    def sequence_backward(self, douts, dfinal, cache):
        dx, (dh0, dc0), dweights = fast_peephole.peephole_backward(douts, dfinal[0], dfinal[1], cache)
        return dx, [dh0, dc0], dweights

    def get_config(self):
        return {**super().get_config(), "peephole_initializer": inits.serialize(self.peephole_initializer),
                "peephole_regularizer": regs.serialize(self.peephole_regularizer)}


def check_norm_epsilon(value) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating))
            or not np.isfinite(value) or value <= 0):
        raise ValueError(f"norm_epsilon: expected a positive finite number, got {value!r}")
    return float(value)


@LAYERS.register
class LayerNormLSTMCell(LSTMFamilyCell):
    """The layer-normalized LSTM (Ba et al. 2016) with the arguments and weight layout of TF-Addons'
    ``tfa.rnn.LayerNormLSTMCell``.

    Three layer norms (over the last axis, epsilon ``norm_epsilon``): of the input term ``x_t @ kernel``
    (all 4*units columns together), of the recurrent term ``h_{t-1} @ recurrent_kernel``, and of the new
    cell state, which is carried normalized. The bias is added after the two gate norms.

    Equations (:mod:`lstmlab.functional.layernorm_lstm`)::

        (1) a_t  = LN(x_t @ kernel)                  (6) g_t  = tanh(zg_t)
        (2) u_t  = LN(h_{t-1} @ recurrent_kernel)    (7) cc_t = f_t * c_{t-1} + i_t * g_t
        (3) z_t  = a_t + u_t + bias                  (8) c_t  = LN(cc_t)
        (4) i_t  = sigma(zi_t)                       (9) o_t  = sigma(zo_t)
        (5) f_t  = sigma(zf_t)                       (10) h_t = o_t * tanh(c_t)

    Weights, in TF-Addons' order: ``kernel``, ``recurrent_kernel``, ``bias`` as the LSTM's, then
    ``kernel_norm_gamma``, ``kernel_norm_beta``, ``recurrent_norm_gamma``, ``recurrent_norm_beta``
    (4*units,) each and ``state_norm_gamma``, ``state_norm_beta`` (units,) (TF: ``kernel_norm/gamma``, ...).

    Parameters beyond :class:`~lstmlab.layers.LSTMCell`'s
    ----------------------------------------------------
    norm_gamma_initializer, norm_beta_initializer : initializer
        Of the three gammas (default ``"ones"``) and betas (default ``"zeros"``).
    norm_epsilon : float
        Added to the variance in the three norms (default 1e-3, TF-Addons').
    """

    def __init__(self, units: int, norm_gamma_initializer="ones", norm_beta_initializer="zeros",
                 norm_epsilon: float = layernorm_lstm.NORM_EPSILON, **kwargs):
        super().__init__(units, **kwargs)
        self.norm_gamma_initializer = inits.get(norm_gamma_initializer, argument="norm_gamma_initializer")
        self.norm_beta_initializer = inits.get(norm_beta_initializer, argument="norm_beta_initializer")
        self.norm_epsilon = check_norm_epsilon(norm_epsilon)

    def _extra_weights(self, input_dim):
        shapes = layernorm_lstm.weight_shapes(input_dim, self.units, use_bias=self.use_bias)
        init = {"gamma": self.norm_gamma_initializer, "beta": self.norm_beta_initializer}
        return [(name, shapes[name], init[name.rsplit("_", 1)[1]], None)
                for name in shapes if name.endswith(("_gamma", "_beta"))]

    def _step_math(self):
        return (layernorm_lstm.layernorm_lstm_step, layernorm_lstm.layernorm_lstm_step_backward,
                {"norm_epsilon": self.norm_epsilon})

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        """Whole sequences through the C time loop (:mod:`lstmlab._fast.layernorm`) when it covers the call
        (kernels built, float32 or float64, tanh and sigmoid), else None: the generic loop runs the step."""
        if not fast_layernorm.covers(self.activation, self.recurrent_activation, x.dtype):
            return None
        k, r, b = self._weights_args()
        norms = {name: w.value for name, w in self._extras.items()}  # the three gammas and betas
        hs, (h, c), cache = fast_layernorm.layernorm_forward(
            x, k, r, b, norms, states[0], states[1], norm_epsilon=self.norm_epsilon, mask=mask,
            recurrent_mask=recurrent_mask, need_cache=need_cache)
        return hs, [h, c], cache

    def sequence_backward(self, douts, dfinal, cache):
        dx, (dh0, dc0), dweights = fast_layernorm.layernorm_backward(douts, dfinal[0], dfinal[1], cache)
        return dx, [dh0, dc0], dweights

    def get_config(self):
        return {**super().get_config(), "norm_gamma_initializer": inits.serialize(self.norm_gamma_initializer),
                "norm_beta_initializer": inits.serialize(self.norm_beta_initializer),
                "norm_epsilon": self.norm_epsilon}
