"""The built-in cells: ``LSTMCell``, ``GRUCell``, ``SimpleRNNCell`` (Keras's arguments and weight layouts).

Each is one step of its recurrence (see :mod:`lstmlab.layers.rnn` for the
contract). Their math is the whole-sequence forward and BPTT of
:mod:`lstmlab.functional` (``lstm``, ``gru``, ``rnn``); one step is that
math on a sequence of length 1, and a whole sequence goes through
:mod:`lstmlab._fast.lstm`, ``.gru``, ``.gru_reset_before`` or ``.rnn``, which
run the C time loop when they cover the call and the reference otherwise.

Some options run on one-step math instead (``GatedCell._step_math``), through
the RNN layer's generic loop, when their activations are not the C loops'
(tanh, sigmoid) or the kernels were not built: ``LSTMCell(proj_size=P)``
(:mod:`lstmlab.functional.projection_lstm`; C time loop
:mod:`lstmlab._fast.projection`), and ``GRUCell(reset_after=False)``
(:mod:`lstmlab.functional.gru_reset_before`). The layer-norm LSTM cell works the same way
(:mod:`lstmlab.layers.cell_variants`); the peephole cell has a C time loop of its own
(:mod:`lstmlab._fast.peephole`).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import functional as F
from .._fast import gru as fast_gru  # the C time loop when it covers the call, else the reference
from .._fast import gru_reset_before as fast_gru_rb
from .._fast import lstm as fast_lstm
from .._fast import projection as fast_projection
from .._fast import rnn as fast_rnn
from ..functional import gru_reset_before, projection_lstm
from . import initializers as inits
from . import regularizers as regs
from .base import LAYERS
from .cell_bf16 import Bfloat16Inference
from .core import check_positive_int, check_rate
from .rnn import RNNCell


class _ForgetBiasOnes(inits.Initializer):
    """``base`` with the forget gate's block set to 1 (Keras's ``unit_forget_bias``; gate order i, f, c, o)."""

    def __init__(self, base, units: int):
        super().__init__()
        self.base, self.units = base, units

    def __call__(self, shape, dtype=np.float32):
        b = self.base(shape, dtype)
        b[self.units : 2 * self.units] = 1.0
        return b


class GatedCell(RNNCell):
    """What the built-in cells share: Keras's constructor arguments, and a kernel, a recurrent kernel and a
    bias of ``gates * units`` columns.

    Subclasses set ``gates``, ``state_size`` and either implement ``_run(x, states, mask, recurrent_mask,
    need_cache) -> (outputs, final_states, cache)`` and ``_run_backward(douts, dfinal, cache) -> (dx, dstates,
    dweights)`` over whole sequences (one step is a sequence of length 1), or return a functional module's
    one-step math from ``_step_math()``: then ``step`` / ``step_backward`` are that math with the weights bound
    by ``functools.partial``, and ``sequence`` returns None so the RNN layer's generic loop runs it. Weights
    beyond kernel, recurrent kernel and bias come from ``_extra_weights`` and are created after them, in the
    order of the module's ``weight_shapes`` (which is the order of its weight gradients).
    """

    gates = 1
    output_is_first_state = True

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, seed: int | None = None, **kwargs):
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
        self.seed = seed
        self.state_size = (self.units,)
        self.output_size = self.units

    # -- weights -----------------------------------------------------------
    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _recurrent_rows(self) -> int:
        return self.units

    def build(self, input_shape):
        D, G = input_shape[-1], self.gates * self.units
        if D is None:
            raise ValueError(f"input_shape: cell {self.name!r} needs a known feature size, got {input_shape}")
        self.kernel = self.add_weight("kernel", (D, G), self.kernel_initializer, self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self._recurrent_rows(), G),
                                                self.recurrent_initializer, self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(), self.bias_regularizer)
                     if self.use_bias else None)
        self._extras = {name: self.add_weight(name, shape, init, reg)
                        for name, shape, init, reg in self._extra_weights(D)}  # name -> Weight
        for name, w in self._extras.items():
            setattr(self, name, w)  # cell.peephole, layer.projection_kernel, as kernel and bias are
        self.built = True

    def _extra_weights(self, input_dim: int) -> list:
        """``[(name, shape, initializer, regularizer)]`` of the weights after the bias (none here)."""
        return []

    def _step_math(self):
        """``(step, step_backward, options)`` of the functional one-step math this cell runs, or None when it
        runs whole sequences through ``_run`` (the C time loop)."""
        return None

    def _bound_weights(self) -> dict:
        """The weights by the functional step's argument names (``bias=None`` without ``use_bias``)."""
        k, r, b = self._weights_args()
        return {"kernel": k, "recurrent_kernel": r, "bias": b, **{n: w.value for n, w in self._extras.items()}}

    def _weights_args(self):
        return self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value

    def _weight_grads(self, g) -> list:
        return [g.dkernel, g.drecurrent_kernel] + ([g.dbias] if self.use_bias else [])

    # -- the cell contract -------------------------------------------------
    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        if self._step_math() is not None:
            return None  # the generic loop runs the one-step math
        return self._run(x, states, mask, recurrent_mask, need_cache)

    def sequence_backward(self, douts, dfinal, cache):
        return self._run_backward(douts, dfinal, cache)

    def step(self, x_t, states, recurrent_mask=None):
        math = self._step_math()
        if math is not None:
            step_fn, _, options = math
            step = functools.partial(step_fn, **self._bound_weights(), activation=self.activation,
                                     recurrent_activation=self.recurrent_activation, **options)
            out, new_states, cache = step(x_t, tuple(states), recurrent_mask=recurrent_mask)
            return out, list(new_states), cache
        hs, final, cache = self._run(x_t[:, None], states, None, recurrent_mask, True)  # (B, 1, H)
        return hs[:, 0], final, cache

    def step_backward(self, dout, dstates, cache):
        math = self._step_math()
        if math is not None:
            dx, dprev, dweights = math[1](dout, tuple(dstates), cache)
            return dx, list(dprev), list(dweights)
        dx, dprev, dweights = self._run_backward(None if dout is None else dout[:, None], dstates, cache)
        return dx[:, 0], dprev, dweights

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
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}


class LSTMFamilyCell(GatedCell):
    """What every LSTM cell shares: four gate blocks i, f, c, o, states ``[h, c]``, and Keras's
    ``unit_forget_bias`` (the forget-gate bias starts at 1, so the cell remembers by default)."""

    gates = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = (self.units, self.units)

    def _bias_init(self):
        return _ForgetBiasOnes(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


def check_proj_size(proj_size, units: int):
    """``None`` (no projection) or an integer 1 <= proj_size < units, as PyTorch's ``nn.LSTM`` requires."""
    if proj_size is None:
        return None
    if (isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer))
            or not 1 <= proj_size < units):
        raise ValueError(f"proj_size: expected None or an integer in [1, units={units}) (the projection is "
                         f"smaller than the cell, as in PyTorch's nn.LSTM), got {proj_size!r}")
    return int(proj_size)


@LAYERS.register
class LSTMCell(Bfloat16Inference, LSTMFamilyCell):
    """One LSTM step (equations in :mod:`lstmlab.functional.lstm`); states ``[h, c]``.

    Parameters: ``4 * units * (input_dim + units) + 4 * units``, gate order i, f, c, o.
    ``unit_forget_bias=True`` starts the forget-gate bias at 1, so the cell remembers by default.
    ``dtype="bfloat16"``: float32 weights, bf16 products in inference (:class:`.cell_bf16.Bfloat16Inference`).

    ``proj_size=P`` (``1 <= P < units``) makes it the projection LSTM (LSTMP, Sak et al. 2014; PyTorch's
    ``nn.LSTM(proj_size=P)``, equations in :mod:`lstmlab.functional.projection_lstm`): the output and the
    state h have P columns, the recurrent kernel is ``(P, 4*units)`` and a ``projection_kernel
    (units, P)`` follows the bias (initialized by ``projection_initializer``, penalized by
    ``projection_regularizer``). Whole sequences run the C time loop of :mod:`lstmlab._fast.projection` when
    it covers the call, else the generic loop.
    """

    def __init__(self, units: int, proj_size: int | None = None, projection_initializer="glorot_uniform",
                 projection_regularizer=None, **kwargs):
        super().__init__(units, **kwargs)
        self.proj_size = check_proj_size(proj_size, self.units)
        self.projection_initializer = inits.get(projection_initializer, argument="projection_initializer")
        self.projection_regularizer = regs.get(projection_regularizer, argument="projection_regularizer")
        P = self.proj_size or self.units
        self.state_size = (P, self.units)  # h (B, P), c (B, H)
        self.output_size = P

    def _recurrent_rows(self) -> int:
        return self.proj_size or self.units

    def _extra_weights(self, input_dim):
        if self.proj_size is None:
            return []
        return [("projection_kernel", (self.units, self.proj_size), self.projection_initializer,
                 self.projection_regularizer)]

    def _step_math(self):
        if self.proj_size is None:
            return None
        return projection_lstm.projection_lstm_step, projection_lstm.projection_lstm_step_backward, {}

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        """With ``proj_size``: whole sequences through the C time loop (:mod:`lstmlab._fast.projection`) when it
        covers the call (kernels built, float32 or float64, tanh and sigmoid), else None: the generic loop runs
        the step."""
        if self.proj_size is None or not fast_projection.covers(self.activation, self.recurrent_activation,
                                                                 x.dtype):
            return super().sequence(x, states, mask, recurrent_mask, need_cache)
        k, r, b = self._weights_args()
        hs, (h, c), cache = fast_projection.projection_forward(
            x, k, r, b, self.projection_kernel.value, states[0], states[1], mask=mask,
            recurrent_mask=recurrent_mask, need_cache=need_cache)
        return hs, [h, c], cache

    def sequence_backward(self, douts, dfinal, cache):
        if self.proj_size is None:
            return super().sequence_backward(douts, dfinal, cache)
        dx, (dh0, dc0), dweights = fast_projection.projection_backward(douts, dfinal[0], dfinal[1], cache)
        return dx, [dh0, dc0], dweights

    def _run(self, x, states, mask, recurrent_mask, need_cache):
        k, r, b = self._weights_args()
        hs, (h, c), cache = fast_lstm.lstm_forward(x, k, r, b, states[0], states[1], activation=self.activation,
                                                   recurrent_activation=self.recurrent_activation, mask=mask,
                                                   recurrent_mask=recurrent_mask, need_cache=need_cache)
        return hs, [h, c], cache

    def _run_backward(self, douts, dfinal, cache):
        g = fast_lstm.lstm_backward(douts, dfinal[0], dfinal[1], cache)
        return g.dx, [g.dh0, g.dc0], self._weight_grads(g)

    def get_config(self):
        config = super().get_config()
        if self.proj_size is not None:  # left out otherwise: the config of a plain LSTM stays Keras's
            config.update(proj_size=self.proj_size,
                          projection_initializer=inits.serialize(self.projection_initializer),
                          projection_regularizer=regs.serialize(self.projection_regularizer))
        return config


@LAYERS.register
class GRUCell(GatedCell):
    """One GRU step, gates z, r, h.

    ``reset_after=True`` (default; Keras 2+, PyTorch, cuDNN): the reset gate multiplies the recurrent term;
    bias (2, 3*units), an input row and a recurrent row (:mod:`lstmlab.functional.gru`, C time loop).
    ``reset_after=False`` (Keras's original variant, Cho et al. 2014): the reset gate multiplies h_{t-1}
    before the candidate's recurrent product; bias (3*units,)
    (:mod:`lstmlab.functional.gru_reset_before`; C time loop, :mod:`lstmlab._fast.gru_reset_before`, with
    tanh and sigmoid, else the generic loop).
    """

    gates = 3

    def __init__(self, units: int, reset_after: bool = True, **kwargs):
        if not isinstance(reset_after, (bool, np.bool_)):
            raise ValueError(f"reset_after: expected True or False, got {reset_after!r}")
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _step_math(self):
        if self.reset_after or fast_gru_rb.covers(self.activation, self.recurrent_activation):
            return None  # whole sequences through the C time loop
        return gru_reset_before.gru_reset_before_step, gru_reset_before.gru_reset_before_step_backward, {}

    def _run(self, x, states, mask, recurrent_mask, need_cache):
        k, r, b = self._weights_args()
        forward = fast_gru.gru_forward if self.reset_after else fast_gru_rb.gru_reset_before_forward
        hs, h, cache = forward(x, k, r, b, states[0], activation=self.activation,
                               recurrent_activation=self.recurrent_activation, mask=mask,
                               recurrent_mask=recurrent_mask, need_cache=need_cache)
        return hs, [h], cache

    def _run_backward(self, douts, dfinal, cache):
        backward = fast_gru.gru_backward if self.reset_after else fast_gru_rb.gru_reset_before_backward
        g = backward(douts, dfinal[0], cache)
        return g.dx, [g.dh0], self._weight_grads(g)

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@LAYERS.register
class SimpleRNNCell(GatedCell):
    """One step of the plain (Elman) RNN: ``h_t = activation(x_t W + h_{t-1} U + b)``; whole sequences through
    :mod:`lstmlab._fast.rnn` (the C time loop for tanh and relu)."""

    def __init__(self, units: int, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def _run(self, x, states, mask, recurrent_mask, need_cache):
        k, r, b = self._weights_args()
        hs, h, cache = fast_rnn.rnn_forward(x, k, r, b, states[0], activation=self.activation, mask=mask,
                                            recurrent_mask=recurrent_mask, need_cache=need_cache)
        return hs, [h], cache

    def _run_backward(self, douts, dfinal, cache):
        g = fast_rnn.rnn_backward(douts, dfinal[0], cache)
        return g.dx, [g.dh0], self._weight_grads(g)

    def get_config(self):
        config = super().get_config()
        config.pop("recurrent_activation")
        return config
