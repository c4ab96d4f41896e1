"""``RNN(cell)``: the layer that owns the time loop, and the cell contract every recurrent kind keeps.

A **cell** is one step of a recurrence (Keras 3 and chainer do it this way).
It declares its state sizes and its weights and gives the step's math both
ways::

    out_t, new_states, cache = cell.step(x_t, states, recurrent_mask=None)
    dx_t, dprev_states, dweights = cell.step_backward(dout_t, dnew_states, cache)

``dweights`` is aligned with ``cell.weights`` (the loop sums it over time).
A cell may also run a whole sequence at once (``cell.sequence`` and
``cell.sequence_backward``, e.g. the C time loop of the LSTM); when it cannot
handle a call it returns ``None`` and the generic loop runs its steps.

The **RNN layer** owns everything around the steps, for any cell:
``return_sequences``, ``return_state``, ``go_backwards``, ``stateful`` with
``reset_states()``, ``initial_state``, masks (padded steps carry the state
and get no gradient), input dropout and recurrent dropout with one mask per
sequence (``cell.dropout`` / ``cell.recurrent_dropout``), and the public
one-step call ``layer.step(x_t, states)`` a sampler uses. ``LSTM``, ``GRU``
and ``SimpleRNN`` are this layer with their cell.

Weights belong to the cell and are saved under the layer's name
(``lstm/kernel``; in a ``StackedRNNCells``, ``rnn/cell_0/kernel``).
"""
from __future__ import annotations

import functools

import numpy as np

from ..functional import recurrence
from ..functional._validate import as_float_array
from ._config import check_arguments
from .base import LAYERS, Layer, check_base_arguments
from .core import check_features


class RNNCell(Layer):
    """Base class of cells: subclasses set ``state_size`` / ``output_size`` in ``__init__`` and implement
    ``build``, ``step`` and ``step_backward`` (and may implement ``sequence`` / ``sequence_backward``).

    Calling a cell as Keras does, ``output, new_states = cell(x_t, states)``, runs one step in inference.
    """

    state_size: tuple = ()
    output_size: int = 0
    output_is_first_state = False  # True when a step's output is its new states[0] (h), as in every built-in cell
    dropout = 0.0
    recurrent_dropout = 0.0

    def step(self, x_t, states, recurrent_mask=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def step_backward(self, dout, dstates, cache):  # pragma: no cover - abstract
        raise NotImplementedError

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        """A whole-sequence implementation ``(outputs, final_states, cache)``, or None: the generic loop runs."""
        return None

    def sequence_backward(self, douts, dfinal, cache):  # pragma: no cover - only with ``sequence``
        raise NotImplementedError

    def get_initial_state(self, batch_size: int, dtype=None) -> list:
        return [np.zeros((batch_size, n), dtype or self.dtype) for n in self.state_size]

    def recurrent_mask_shapes(self, batch: int):
        """The shape of this cell's recurrent-dropout mask: (batch, width of h_{t-1}), or None without one."""
        return (batch, self.state_size[0]) if self.recurrent_dropout > 0 else None

    def __call__(self, inputs, states=None, training: bool = False):
        x = as_float_array("inputs", inputs, 2, what="(batch, features)").astype(self.dtype, copy=False)
        if not self.built:
            self.build((None, x.shape[-1]))
            self.built = True
        states = self.get_initial_state(len(x)) if states is None else _as_list(states)
        out, new_states, _ = self.step(x, [np.asarray(s, self.dtype) for s in states])
        return out, list(new_states)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_size,)


def _as_list(states) -> list:
    return list(states) if isinstance(states, (list, tuple)) else [states]


@LAYERS.register
class StackedRNNCells(RNNCell):
    """Several cells run as one: each step feeds the output of cell k to cell k + 1 (Keras's StackedRNNCells).

    Its states are the cells' states in order; its output is the last cell's.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells or not all(isinstance(c, RNNCell) for c in cells):
            raise ValueError(f"cells: expected a non-empty list of RNN cells, got {[type(c).__name__ for c in cells]}")
        self.cells = cells
        self.state_size = tuple(n for c in cells for n in c.state_size)
        self.output_size = cells[-1].output_size

    def build(self, input_shape):
        D = input_shape[-1]
        owner, prefix = self._weight_owner()
        for k, cell in enumerate(self.cells):
            if not cell.built:
                cell._owner = (owner, f"{prefix}cell_{k}/")
                cell.build((None, D))
                cell.built = True
            D = cell.output_size
        self.built = True

    @property
    def weights(self):
        return [w for cell in self.cells for w in cell.weights]

    def _split(self, states) -> list[list]:
        out, k = [], 0
        for cell in self.cells:
            n = len(cell.state_size)
            out.append(list(states[k : k + n]))
            k += n
        return out

    def recurrent_mask_shapes(self, batch: int) -> list:
        return [c.recurrent_mask_shapes(batch) for c in self.cells]

    def step(self, x_t, states, recurrent_mask=None):
        """``recurrent_mask``: one mask (or None) per cell, as the RNN layer draws them."""
        masks = recurrent_mask if recurrent_mask is not None else [None] * len(self.cells)
        new_states, caches = [], []
        for cell, s, m in zip(self.cells, self._split(states), masks):
            x_t, s_new, cache = cell.step(x_t, s, m)
            new_states += list(s_new)
            caches.append(cache)
        return x_t, new_states, caches

    def step_backward(self, dout, dstates, cache):
        dstates = self._split(dstates)
        dprev, dweights = [None] * len(self.cells), [None] * len(self.cells)
        for k in reversed(range(len(self.cells))):
            dout, dprev[k], dweights[k] = self.cells[k].step_backward(dout, dstates[k], cache[k])
        return dout, [d for ds in dprev for d in ds], [g for gs in dweights for g in gs]

    def get_config(self):
        return {**super().get_config(), "cells": [LAYERS.serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        config = check_arguments(cls, config)
        check_base_arguments(config)
        if not isinstance(config["cells"], list):
            raise ValueError(f"cells: expected a list of cell configs, got {type(config['cells']).__name__}")
        config["cells"] = [LAYERS.deserialize(c) for c in config["cells"]]
        return cls(**config)


@LAYERS.register
class RNN(Layer):
    """Runs a cell over the time axis of ``(batch, time, features)`` inputs (Keras's ``layers.RNN``).

    Parameters
    ----------
    cell : RNNCell or list of RNNCell
        A list becomes a :class:`StackedRNNCells`.
    return_sequences, return_state, go_backwards, stateful : bool
        As in Keras.
    unroll : bool
        Accepted for Keras compatibility; the loop is never unrolled and the result is the same.
    zero_output_for_mask : bool
        With ``return_sequences`` and a mask: masked steps output zeros (and pass no gradient) instead of
        repeating the last valid output, as Keras does (``Bidirectional`` sets it on its halves, as Keras's does).
    """

    def __init__(self, cell, return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not isinstance(cell, RNNCell):
            raise ValueError(f"cell: expected an RNN cell (e.g. layers.LSTMCell(64)) or a list of them, "
                             f"got {type(cell).__name__}")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states: list[np.ndarray] | None = None  # carried between calls when stateful
        self.initial_state_grads: list[np.ndarray] | None = None
        # False: with go_backwards, backward may return dx as a time-reversed view (Bidirectional adds it to the
        # forward half's dx, which makes the one copy that is needed)
        self._contiguous_dx = True

    @property
    def _n_states(self) -> int:
        return len(self.cell.state_size)

    # -- weights -----------------------------------------------------------
    def build(self, input_shape):
        D = input_shape[-1]
        if len(input_shape) != 3:
            raise ValueError(f"input_shape: layer {self.name!r} expects (batch, time, features), got {input_shape}")
        if D is None:
            raise ValueError(f"input_shape: layer {self.name!r} needs a known feature size, got {input_shape}")
        if not self.cell.built:
            self.cell._owner = (self, "")  # saved and trained as this layer's weights: lstm/kernel
            self.cell.build((None, D))
            self.cell.built = True
        if self.stateful and input_shape[0] is not None:
            self._fixed_batch = input_shape[0]
        self.built = True

    @property
    def weights(self):
        return self.cell.weights if self.cell.built else []

    def compute_output_shape(self, input_shape):
        B, T, H = input_shape[0], input_shape[1], self.cell.output_size
        out = (B, T, H) if self.return_sequences else (B, H)
        if self.return_state:
            return [out] + [(B, n) for n in self.cell.state_size]
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
        states = [np.asarray(s, self.dtype) for s in _as_list(states)]
        sizes = self.cell.state_size
        if len(states) != len(sizes) or any(s.ndim != 2 or s.shape[1] != n for s, n in zip(states, sizes)):
            raise ValueError(f"states: layer {self.name!r} expects {len(sizes)} arrays of shapes "
                             f"{[('batch', n) for n in sizes]}, got {[s.shape for s in states]}")
        self.states = [s.copy() for s in states]

    def _initial_states(self, B, initial_state):
        if initial_state is not None:
            states = _as_list(initial_state)
            if len(states) != self._n_states:
                raise ValueError(f"initial_state: layer {self.name!r} expects {self._n_states} state array(s), "
                                 f"got {len(states)}")
            out = []
            for k, (s, n) in enumerate(zip(states, self.cell.state_size)):
                s = as_float_array(f"initial_state[{k}]", s, 2, what=f"(batch, {n})")
                if s.shape != (B, n):
                    raise ValueError(f"initial_state[{k}]: layer {self.name!r} expects shape ({B}, {n}), got {s.shape}")
                out.append(s.astype(self.dtype, copy=False))
            return out
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
    def __call__(self, x, training=None, mask=None, initial_state=None):
        return super().__call__(x, training=training, mask=mask, initial_state=initial_state)

    def _dropout_masks(self, B, D, training):
        """One input mask (B, 1, D) and the cell's recurrent masks, drawn once per sequence when training.

        The recurrent masks follow ``cell.recurrent_mask_shapes``: one (B, width of h) array, or for
        stacked cells one per cell; they are passed to the cell's steps, never kept on the cell.
        """
        if not training:
            return None, None
        rng = self._dropout_rng()
        in_keep = None
        if self.cell.dropout > 0:
            p = self.cell.dropout
            in_keep = (rng.random((B, 1, D)) >= p).astype(self.dtype) / (1.0 - p)  # (B, 1, D)

        def draw(shape, cell):
            if isinstance(shape, list):
                return [draw(s, c) for s, c in zip(shape, cell.cells)]
            if shape is None:
                return None
            p = cell.recurrent_dropout
            return (rng.random(shape) >= p).astype(self.dtype) / (1.0 - p)  # (B, H) the same at every step

        return in_keep, draw(self.cell.recurrent_mask_shapes(B), self.cell)

    def forward(self, x, training=False, mask=None, initial_state=None):
        x = as_float_array("x", x, 3, what="(batch, time, features)").astype(self.dtype, copy=False)
        check_features(self, x, self.cell.weights[0].shape[0] if self.cell.weights else x.shape[-1])
        B, T, D = x.shape
        states = self._initial_states(B, initial_state)
        in_keep, rec_keep = self._dropout_masks(B, D, training)
        if in_keep is not None:
            x = x * in_keep  # the same input mask at every step of a sequence
        if mask is not None:
            mask = np.asarray(mask, bool)
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        given = states
        if states is None:
            states = self.cell.get_initial_state(B)
        result = self.cell.sequence(x, states, mask, rec_keep, need_cache=training)
        fused = result is not None
        if not fused:
            step = functools.partial(self.cell.step, recurrent_mask=rec_keep)
            result = recurrence.recurrence_forward(step, x, states, mask=mask, need_cache=training)
        hs, final, cache = result
        final = list(final)
        if self.stateful:
            self.states = [s.copy() for s in final]
        zero_keep = None
        if self.zero_output_for_mask and self.return_sequences and mask is not None:
            zero_keep = mask[..., None].astype(hs.dtype)  # (B, T, 1) in the order the steps ran
            # in place without a cache: the outputs are then this call's own array (with one, they may be it)
            hs = np.multiply(hs, zero_keep, out=hs if cache is None and hs.flags.writeable else None)
        self._cache = (cache, fused, in_keep, given is not None, T, zero_keep) if training else None
        # The last output: with a mask, that of the last valid step (padded steps carry it), as in Keras.
        out = hs if self.return_sequences else final[0] if self.cell.output_is_first_state else hs[:, -1]
        return [out] + final if self.return_state else out

    def _backward(self, dy):
        cache, fused, in_keep, had_states, T, zero_keep = self._cache
        if self.return_state:
            dout, dfinal = dy[0], list(dy[1:])
        else:
            dout, dfinal = dy, [None] * self._n_states
        douts = dout if zero_keep is None or dout is None else dout * zero_keep
        if dout is not None and not self.return_sequences:  # the output was the last step's
            douts = None
            if self.cell.output_is_first_state:
                dfinal[0] = dout if dfinal[0] is None else dfinal[0] + dout
            else:
                douts = np.zeros((dout.shape[0], T, dout.shape[1]), dout.dtype)  # (B, T, O)
                douts[:, -1] = dout
        if fused:
            dx, dstates, grads = self.cell.sequence_backward(douts, dfinal, cache)
        else:
            dx, dstates, grads = recurrence.recurrence_backward(self.cell.step_backward, douts, dfinal, cache)
        if self.go_backwards:
            dx = dx[:, ::-1]
        if in_keep is not None:
            dx = dx * in_keep
        self.initial_state_grads = list(dstates) if had_states else None
        return (np.ascontiguousarray(dx) if self._contiguous_dx else dx), list(grads)

    # -- one step at a time ------------------------------------------------
    def step(self, x_t, states=None):
        """One time step in inference mode: ``(output, new_states)`` for ``x_t`` of shape (batch, features).

        The public call a sampler makes to generate one token at a time: it carries the states itself (the
        layer's own ``states`` are not touched). ``states=None`` starts from zeros. Running a sequence one
        step at a time gives the same outputs as calling the layer on the whole sequence.
        """
        x_t = as_float_array("x_t", x_t, 2, what="(batch, features)").astype(self.dtype, copy=False)
        if not self.built:
            self.build((None, None, x_t.shape[-1]))
        states = self.cell.get_initial_state(len(x_t)) if states is None else [
            np.asarray(s, self.dtype) for s in _as_list(states)]
        out, new_states, _ = self.cell.step(x_t, states, None)
        return out, list(new_states)

    # -- config ------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "cell": LAYERS.serialize(self.cell), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask}

    @classmethod
    def from_config(cls, config):
        return cls._from_config_with(config, "cell")
