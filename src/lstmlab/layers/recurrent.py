"""LSTM, GRU and SimpleRNN layers: weights, state and options around the functional math.

The time loop and its backward live in :mod:`lstmlab.functional`; a layer adds
what Keras users expect around it: ``return_sequences``, ``return_state``,
``go_backwards``, ``stateful`` with ``reset_states()``, ``initial_state``,
masks from ``Embedding(mask_zero=True)`` or ``Masking``, and ``dropout`` /
``recurrent_dropout`` with one mask per sequence.

Weight layouts are the functional ones (Keras's): see
:mod:`lstmlab.functional.lstm` and :mod:`lstmlab.functional.gru`. LSTM and GRU
run through :mod:`lstmlab.functional.fast`, which uses the C time loop when it
covers the call and the reference otherwise.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional import fast  # the C time loop when it covers the call, else the reference
from ..functional._validate import as_float_array
from . import initializers as inits
from . import regularizers as regs
from .base import Layer
from .core import check_features, check_positive_int, check_rate


class _Recurrent(Layer):
    """Shared machinery; subclasses set ``_gates``, ``_n_states`` and ``_run`` / ``_run_backward``."""

    _gates = 1
    _n_states = 1

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = F.get_activation(activation, argument="activation")
        self.recurrent_activation = F.get_activation(recurrent_activation, argument="recurrent_activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = inits.get(kernel_initializer, argument="kernel_initializer")
        self.recurrent_initializer = inits.get(recurrent_initializer, argument="recurrent_initializer")
        self.bias_initializer = inits.get(bias_initializer, argument="bias_initializer")
        self.kernel_regularizer = regs.get(kernel_regularizer, argument="kernel_regularizer")
        self.recurrent_regularizer = regs.get(recurrent_regularizer, argument="recurrent_regularizer")
        self.bias_regularizer = regs.get(bias_regularizer, argument="bias_regularizer")
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras compatibility; the loop is never unrolled
        self.seed = seed
        self.states: list[np.ndarray] | None = None  # carried between calls when stateful
        self.initial_state_grads: list[np.ndarray] | None = None

    # -- weights -----------------------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        D, G = input_shape[-1], self._gates * self.units
        if len(input_shape) != 3:
            raise ValueError(f"input_shape: layer {self.name!r} expects (batch, time, features), got {input_shape}")
        if D is None:
            raise ValueError(f"input_shape: layer {self.name!r} needs a known feature size, got {input_shape}")
        self.kernel = self.add_weight("kernel", (D, G), self.kernel_initializer, self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, G), self.recurrent_initializer,
                                                self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(), self.bias_regularizer)
                     if self.use_bias else None)
        if self.stateful and input_shape[0] is not None:
            self._fixed_batch = input_shape[0]
        self.built = True

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out] + [(B, self.units)] * self._n_states
        return out

    def compute_mask(self, inputs, mask):
        out = mask if self.return_sequences else None
        return [out] + [None] * self._n_states if self.return_state else out

    # -- state -------------------------------------------------------------
    def reset_states(self, states=None) -> None:
        """Forget the carried state (stateful layers); or set it to ``states``."""
        if states is None:
            self.states = None
            return
        states = [np.asarray(s, self.dtype) for s in (states if isinstance(states, (list, tuple)) else [states])]
        if len(states) != self._n_states or any(s.ndim != 2 or s.shape[1] != self.units for s in states):
            raise ValueError(f"states: layer {self.name!r} expects {self._n_states} arrays of shape (batch, "
                             f"{self.units}), got {[s.shape for s in states]}")
        self.states = [s.copy() for s in states]

    def _initial_states(self, B, initial_state):
        if initial_state is not None:
            states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != self._n_states:
                raise ValueError(f"initial_state: layer {self.name!r} expects {self._n_states} state array(s), "
                                 f"got {len(states)}")
            return [as_float_array(f"initial_state[{k}]", s, 2, what="(batch, units)") for k, s in enumerate(states)]
        if self.stateful:
            fixed = getattr(self, "_fixed_batch", None)
            if fixed is None:
                self._fixed_batch = fixed = B
            if B != fixed:
                raise ValueError(
                    f"x: stateful layer {self.name!r} carries state for batch size {fixed}, got a batch of {B}; "
                    f"feed batches of exactly {fixed} sequences (or call reset_states() before changing it)"
                )
            return self.states
        return None

    # -- calling -----------------------------------------------------------
    def __call__(self, x, training=False, mask=None, initial_state=None):
        return super().__call__(x, training=training, mask=mask, initial_state=initial_state)

    def forward(self, x, training=False, mask=None, initial_state=None):
        x = as_float_array("x", x, 3, what="(batch, time, features)").astype(self.dtype, copy=False)
        check_features(self, x, self.kernel.shape[0])
        B, T, D = x.shape
        states = self._initial_states(B, initial_state)
        rng = self._dropout_rng()
        in_keep = rec_keep = None
        if training and self.dropout > 0:
            in_keep = (rng.random((B, 1, D)) >= self.dropout).astype(self.dtype) / (1.0 - self.dropout)  # (B, 1, D)
            x = x * in_keep  # the same input mask at every step of a sequence
        if training and self.recurrent_dropout > 0:
            rec_keep = ((rng.random((B, self.units)) >= self.recurrent_dropout).astype(self.dtype)
                        / (1.0 - self.recurrent_dropout))  # (B, H)
        if mask is not None:
            mask = np.asarray(mask, bool)
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        hs, final, cache = self._run(x, states, mask, rec_keep, training)  # hs (B, T, H), final: list of (B, H)
        if self.stateful:
            self.states = [s.copy() for s in final]
        self._cache = (cache, in_keep, states is not None) if training else None
        out = hs if self.return_sequences else final[0]
        return [out] + list(final) if self.return_state else out

    def _backward(self, dy):
        cache, in_keep, had_states = self._cache
        if self.return_state:
            dout, dfinal = dy[0], list(dy[1:])
        else:
            dout, dfinal = dy, [None] * self._n_states
        if dout is not None and not self.return_sequences:  # the output is h_T
            dfinal[0] = dout if dfinal[0] is None else dfinal[0] + dout
            dout = None
        dx, dstates, grads = self._run_backward(dout, dfinal, cache)
        if self.go_backwards:
            dx = dx[:, ::-1]
        if in_keep is not None:
            dx = dx * in_keep
        self.initial_state_grads = dstates if had_states else None
        return np.ascontiguousarray(dx), grads if self.use_bias else grads[:2]

    # -- config ------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "recurrent_activation": self.recurrent_activation.name, "use_bias": self.use_bias,
                "kernel_initializer": inits.serialize(self.kernel_initializer),
                "recurrent_initializer": inits.serialize(self.recurrent_initializer),
                "bias_initializer": inits.serialize(self.bias_initializer),
                "kernel_regularizer": regs.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regs.serialize(self.recurrent_regularizer),
                "bias_regularizer": regs.serialize(self.bias_regularizer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "seed": self.seed}

    def _weights_args(self):
        return self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value


class LSTM(_Recurrent):
    """Long Short-Term Memory layer (Keras arguments and defaults).

    Parameters: ``4 * units * (input_dim + units) + 4 * units`` (kernel,
    recurrent kernel, bias), gate order i, f, c, o. ``unit_forget_bias=True``
    starts the forget-gate bias at 1 so the cell remembers by default.
    """

    _gates, _n_states = 4, 2

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, H = self.bias_initializer, self.units

        class _ForgetOnes(inits.Initializer):
            def __call__(self, shape, dtype=np.float32):
                b = base(shape, dtype)
                b[H : 2 * H] = 1.0  # the forget gate's block (order i, f, c, o)
                return b

        return _ForgetOnes()

    def _run(self, x, states, mask, rec_keep, training):
        h0, c0 = (None, None) if states is None else states
        k, r, b = self._weights_args()
        hs, (h, c), cache = fast.lstm_forward(x, k, r, b, h0, c0, activation=self.activation,
                                           recurrent_activation=self.recurrent_activation, mask=mask,
                                           recurrent_mask=rec_keep, need_cache=training)
        return hs, [h, c], cache

    def _run_backward(self, dout, dfinal, cache):
        g = fast.lstm_backward(dout, dfinal[0], dfinal[1], cache)
        return g.dx, [g.dh0, g.dc0], [g.dkernel, g.drecurrent_kernel, g.dbias]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Gated Recurrent Unit, Keras's default ``reset_after=True`` variant (PyTorch's); bias (2, 3*units)."""

    _gates, _n_states = 3, 1

    def __init__(self, units: int, reset_after: bool = True, **kwargs):
        if reset_after is not True:
            raise ValueError("reset_after: only reset_after=True (the Keras 2+/PyTorch GRU) is implemented, got False")
        super().__init__(units, **kwargs)
        self.reset_after = True

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _run(self, x, states, mask, rec_keep, training):
        k, r, b = self._weights_args()
        hs, h, cache = fast.gru_forward(x, k, r, b, None if states is None else states[0], activation=self.activation,
                                     recurrent_activation=self.recurrent_activation, mask=mask,
                                     recurrent_mask=rec_keep, need_cache=training)
        return hs, [h], cache

    def _run_backward(self, dout, dfinal, cache):
        g = fast.gru_backward(dout, dfinal[0], cache)
        return g.dx, [g.dh0], [g.dkernel, g.drecurrent_kernel, g.dbias]

    def get_config(self):
        return {**super().get_config(), "reset_after": True}


class SimpleRNN(_Recurrent):
    """The plain (Elman) RNN: ``h_t = activation(x_t W + h_{t-1} U + b)``."""

    _gates, _n_states = 1, 1

    def __init__(self, units: int, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def _run(self, x, states, mask, rec_keep, training):
        k, r, b = self._weights_args()
        hs, h, cache = F.rnn_forward(x, k, r, b, None if states is None else states[0], activation=self.activation,
                                     mask=mask, recurrent_mask=rec_keep)
        return hs, [h], cache

    def _run_backward(self, dout, dfinal, cache):
        g = F.rnn_backward(dout, dfinal[0], cache)
        return g.dx, [g.dh0], [g.dkernel, g.drecurrent_kernel, g.dbias]

    def get_config(self):
        config = super().get_config()
        config.pop("recurrent_activation")
        return config
