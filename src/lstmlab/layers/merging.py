"""Merge layers (Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum) and the multi-input contract.

Multi-input contract (:class:`_MultiInput`, also used by the attention layers)
-------------------------------------------------------------------------------
* ``y = layer([a, b], training=..., mask=[ma, mb] or None)``: ``x`` is a list of arrays, ``mask`` a list
  aligned with it (entries may be None) or None.
* ``build`` and ``compute_output_shape`` receive a list of shapes (tuples, None for an unknown size).
* ``_backward(dy)`` returns ``(dx_list, grads)``, ``dx_list`` aligned with the inputs; ``backward(dy)``
  returns ``dx_list``.
* ``compute_mask(inputs, mask)`` returns the output's mask.

Masks, as Keras 3 (``keras/src/layers/merging/``): a merge's output mask is the logical OR of the input
masks (None when any input has none); Concatenate broadcasts each mask over its input (all True for an
input without one), concatenates them along ``axis`` and ORs over the last axis, so on the time axis the
masks are concatenated and on the feature axis they are ORed. Masks change the values only where Keras's
do: Multiply treats masked positions as 1 and zeroes the output where no input is valid; Maximum and
Minimum take the valid inputs only (the first input's value where none is valid).
"""
from __future__ import annotations

import numpy as np

from ..functional._validate import as_float_array
from .base import LAYERS, Layer


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape``: the gradient of ``np.broadcast_to(a, g.shape)`` with respect to ``a``."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g  # leading axes added
    axes = tuple(d for d, s in enumerate(shape) if s == 1 and g.shape[d] != 1)
    return (g.sum(axis=axes, keepdims=True) if axes else g).reshape(shape)


class _MultiInput(Layer):
    """A layer called on a list of inputs (see the module docstring); subclasses set the allowed counts."""

    min_inputs, max_inputs = 1, None

    def _input_shape_of(self, x) -> list:
        return [(None,) + tuple(np.shape(a)[1:]) for a in self._input_list(x)]

    def _input_list(self, x) -> list:
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"x: layer {self.name!r} expects a list of inputs, got {type(x).__name__}")
        n = len(x)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = (f"exactly {self.min_inputs}" if self.min_inputs == self.max_inputs else
                    f"{self.min_inputs} to {self.max_inputs}" if self.max_inputs else f"at least {self.min_inputs}")
            raise ValueError(f"x: layer {self.name!r} expects {want} inputs, got {n}")
        return list(x)

    def _checked_inputs(self, x) -> list:
        """The inputs as arrays of the layer's dtype, each checked like a single layer's ``x``."""
        return [as_float_array(f"x[{k}]", a).astype(self.dtype, copy=False)
                for k, a in enumerate(self._input_list(x))]

    def _mask_list(self, mask, n: int, lengths=None) -> list | None:
        """``mask`` as a list of None or bool arrays; ``lengths`` the accepted list lengths (default: n)."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"mask: layer {self.name!r} expects a list of masks aligned with its inputs, "
                             f"got {type(mask).__name__}")
        lengths = (n,) if lengths is None else lengths
        if len(mask) not in lengths:
            raise ValueError(f"mask: layer {self.name!r} expects a list of {' or '.join(map(str, lengths))} masks, "
                             f"got {len(mask)}")
        return [None if m is None else np.asarray(m).astype(bool) for m in mask]

    @staticmethod
    def _check_mask_shape(k: int, m, x: np.ndarray) -> None:
        if m is not None and m.shape != x.shape[:-1]:
            raise ValueError(f"mask[{k}]: expected shape {x.shape[:-1]} (x[{k}]'s shape without its last axis), "
                             f"got {m.shape}")


class _Merge(_MultiInput):
    """Element-wise merges with NumPy broadcasting (inputs of lower rank get axes at position 1, as Keras)."""

    def build(self, input_shape):
        self._output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape)

    def _output_shape(self, shapes) -> tuple:
        shapes = [tuple(s) for s in self._input_list(shapes)]
        batches = {s[0] for s in shapes if s} - {None}
        if len(batches) > 1:
            raise ValueError(f"x: layer {self.name!r} cannot merge inputs with different batch sizes, got shapes "
                             f"{shapes}")
        rank = max(len(s) for s in shapes)
        out = []
        for d in range(1, rank):
            sizes = {s[d - rank + len(s)] if d - rank + len(s) >= 1 else 1 for s in shapes}
            if None in sizes:
                out.append(None)
                continue
            sizes.discard(1)
            if len(sizes) > 1:
                raise ValueError(f"x: layer {self.name!r} needs inputs of one shape (or broadcastable), "
                                 f"got shapes {shapes}")
            out.append(sizes.pop() if sizes else 1)
        return (batches.pop() if batches else None,) + tuple(out)

    def forward(self, x, training=False, mask=None):
        xs = self._checked_inputs(x)
        masks = self._mask_list(mask, len(xs))
        self._output_shape([a.shape for a in xs])
        rank = max(a.ndim for a in xs)
        expanded = [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in xs]  # Keras: axes at 1
        if masks is not None:
            for k, (m, a) in enumerate(zip(masks, xs)):
                self._check_mask_shape(k, m, a)
        # inputs of different ranks lose their masks in Keras (the reshaped tensors carry none)
        use = masks if masks is not None and len({a.ndim for a in xs}) == 1 else [None] * len(xs)
        use = [None if m is None else np.broadcast_to(m[..., None], a.shape) for m, a in zip(use, expanded)]
        y, cache = self._combine(expanded, use)
        self._cache = ([a.shape for a in xs], [a.shape for a in expanded], cache) if training else None
        return y

    def _backward(self, dy):
        shapes, expanded_shapes, cache = self._cache
        dy = np.asarray(dy, self.dtype)
        grads = self._combine_backward(dy, cache, len(shapes))
        return [unbroadcast(g, e).reshape(s) for g, e, s in zip(grads, expanded_shapes, shapes)], []

    def compute_mask(self, inputs, mask):
        masks = self._mask_list(mask, len(self._input_list(inputs)))
        if masks is None or any(m is None for m in masks):
            return None
        return np.logical_or.reduce(np.broadcast_arrays(*masks))

    def _combine(self, xs, masks):  # pragma: no cover - abstract
        raise NotImplementedError

    def _combine_backward(self, dy, cache, n):  # pragma: no cover - abstract
        raise NotImplementedError


@LAYERS.register
class Add(_Merge):
    """``x[0] + x[1] + ...``; masks only combine into the output mask."""

    def _combine(self, xs, masks):
        return sum(xs[1:], xs[0]), None

    def _combine_backward(self, dy, cache, n):
        return [dy] * n


@LAYERS.register
class Subtract(_Merge):
    """``x[0] - x[1]``, exactly two inputs."""

    min_inputs = max_inputs = 2

    def _combine(self, xs, masks):
        return xs[0] - xs[1], None

    def _combine_backward(self, dy, cache, n):
        return [dy, -dy]


@LAYERS.register
class Average(_Merge):
    """``(x[0] + ... + x[n-1]) / n``."""

    def _combine(self, xs, masks):
        return sum(xs[1:], xs[0]) / len(xs), None

    def _combine_backward(self, dy, cache, n):
        return [dy / n] * n


@LAYERS.register
class Multiply(_Merge):
    """``x[0] * x[1] * ...``; a masked position counts as 1, and where all inputs have masks the output is 0
    wherever none is valid (Keras 3)."""

    def _combine(self, xs, masks):
        factors = [a if m is None else np.where(m, a, 1.0).astype(a.dtype) for a, m in zip(xs, masks)]
        y = factors[0]
        for f in factors[1:]:
            y = y * f
        valid = None
        if all(m is not None for m in masks):
            valid = np.logical_or.reduce(np.broadcast_arrays(*masks))
            y = np.where(valid, y, 0.0).astype(y.dtype)
        return y, (factors, masks, valid)

    def _combine_backward(self, dy, cache, n):
        factors, masks, valid = cache
        if valid is not None:
            dy = np.where(valid, dy, 0.0)
        grads = []
        for i in range(n):
            g = dy
            for j, f in enumerate(factors):
                if j != i:  # the product of the other factors, without dividing (factors may be 0)
                    g = g * f
            grads.append(g if masks[i] is None else np.where(masks[i], g, 0.0))
        return grads


class _Extremum(_Merge):
    """Maximum / Minimum by Keras's ``_apply_merge_op_and_or_mask``: the output at each position is one
    input's value, so the gradient goes to that input; ``src`` records which."""

    def _pick(self, a, b):  # pragma: no cover - abstract: True where b wins
        raise NotImplementedError

    def _combine(self, xs, masks):
        out, src, out_mask = xs[0], np.zeros(xs[0].shape, np.int64), masks[0]
        for i in range(1, len(xs)):
            x, m, x_src = xs[i], masks[i], np.full(xs[i].shape, i)
            if m is not None:  # a masked x takes the running output's value
                x, x_src = np.where(m, x, out), np.where(m, x_src, src)
            if out_mask is not None:  # a masked running output takes x's value
                out, src = np.where(out_mask, out, x), np.where(out_mask, src, x_src)
            out_mask = np.logical_or(out_mask, m) if m is not None and out_mask is not None else None
            wins = self._pick(out, x)
            out, src = np.where(wins, x, out), np.where(wins, x_src, src)
        return out.astype(xs[0].dtype, copy=False), src

    def _combine_backward(self, dy, src, n):
        dy = np.broadcast_to(dy, src.shape)
        return [np.where(src == i, dy, 0.0) for i in range(n)]


@LAYERS.register
class Maximum(_Extremum):
    """Element-wise maximum of the inputs (of the valid ones where masks are given)."""

    def _pick(self, a, b):
        return b > a


@LAYERS.register
class Minimum(_Extremum):
    """Element-wise minimum of the inputs (of the valid ones where masks are given)."""

    def _pick(self, a, b):
        return b < a


@LAYERS.register
class Concatenate(_MultiInput):
    """Joins the inputs along ``axis``; all other sizes must agree."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis: expected an integer, got {axis!r}")
        self.axis = int(axis)

    def _checked_shapes(self, shapes) -> tuple:
        """``(shapes, non-negative axis)`` after checking that they can be joined."""
        shapes = [tuple(s) for s in self._input_list(shapes)]
        ranks = {len(s) for s in shapes}
        rank = ranks.pop()
        if ranks or not -rank <= self.axis < rank or (self.axis % rank) == 0:
            raise ValueError(f"axis: layer {self.name!r} needs inputs of one rank and a non-batch axis, got axis "
                             f"{self.axis} and shapes {shapes}")
        axis = self.axis % rank
        for d in range(1, rank):
            sizes = {s[d] for s in shapes} - {None}
            if d != axis and len(sizes) > 1:
                raise ValueError(f"x: layer {self.name!r} needs inputs of one shape except on axis {self.axis}, "
                                 f"got shapes {shapes}")
        return shapes, axis

    def build(self, input_shape):
        self._checked_shapes(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes, axis = self._checked_shapes(input_shape)
        sizes = [s[axis] for s in shapes]
        return shapes[0][:axis] + (None if None in sizes else sum(sizes),) + shapes[0][axis + 1:]

    def forward(self, x, training=False, mask=None):
        xs = self._checked_inputs(x)
        _, axis = self._checked_shapes([a.shape for a in xs])
        for k, (m, a) in enumerate(zip(self._mask_list(mask, len(xs)) or [None] * len(xs), xs)):
            if m is not None and m.ndim != a.ndim:  # a mask of the input's own rank is taken as it is
                self._check_mask_shape(k, m, a)
        self._cache = ([a.shape[axis] for a in xs], axis) if training else None
        return np.concatenate(xs, axis=axis)

    def _backward(self, dy):
        sizes, axis = self._cache
        return np.split(np.asarray(dy, self.dtype), np.cumsum(sizes)[:-1], axis=axis), []

    def compute_mask(self, inputs, mask):
        xs = [np.asarray(a) for a in self._input_list(inputs)]
        masks = self._mask_list(mask, len(xs))
        if masks is None or all(m is None for m in masks):
            return None
        full = []
        for k, (m, a) in enumerate(zip(masks, xs)):
            if m is None:
                full.append(np.ones(a.shape, bool))
            elif m.ndim < a.ndim:
                full.append(np.broadcast_to(np.expand_dims(m, -1), a.shape))  # over the last axis
            else:
                full.append(m)
        return np.concatenate(full, axis=self.axis).any(axis=-1)  # x.shape[:-1] with axis joined

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
