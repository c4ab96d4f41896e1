"""Attention (Luong: dot or concat scores) and AdditiveAttention (Bahdanau) as Keras 3 has them.

Called on ``[query, value]`` or ``[query, value, key]`` (key defaults to value), shapes
``(batch, Tq, dim)``, ``(batch, Tv, dim_v)``, ``(batch, Tv, dim)``, with
``mask=[query_mask (batch, Tq), value_mask (batch, Tv)]`` (either may be None; a third entry is
ignored, as Keras does). Keyword arguments of the call: ``return_attention_scores`` (the output is then
``[output, scores]``, scores ``(batch, Tq, Tv)`` after dropout) and ``use_causal_mask`` (query i sees
keys j <= i). The output mask is the query mask. The math is :mod:`lstmlab.functional.attention`.

Weights (Keras's names and shapes): Attention ``scale ()`` when ``use_scale`` and
``concat_score_weight ()`` when ``score_mode="concat"``, both initialised to 1; AdditiveAttention
``scale (dim,)`` (Glorot uniform) when ``use_scale``.
"""
from __future__ import annotations

import numpy as np

from ..functional import attention as A
from .core import check_rate
from .merging import _MultiInput
from .normalization import check_bool
from .base import LAYERS


class _BaseAttention(_MultiInput):
    """Input checks, masks, softmax, dropout and the backward; subclasses give the scores (1)."""

    min_inputs, max_inputs = 2, 3

    def __init__(self, use_scale: bool = False, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.use_scale = check_bool("use_scale", use_scale)
        self.dropout = check_rate("dropout", dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed: expected an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._returns_scores = False

    def _scalar_weight(self, name: str):
        w = self.add_weight(name, (), "ones")
        w.value = w.value.reshape(())  # add_weight stores a 0-d value as (1,); Keras's weight is a scalar
        return w

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in self._input_list(input_shape)]
        return shapes[0][:-1] + (shapes[1][-1],)

    def _split(self, x):
        """``(query, value, key)`` after checking their shapes."""
        xs = self._checked_inputs(x)
        q, v = xs[0], xs[1]
        k = xs[2] if len(xs) > 2 else v
        names = ["query", "value", "key"]
        for name, a in zip(names, xs):
            if a.ndim != 3:
                raise ValueError(f"x: layer {self.name!r} expects 3-D {name} (batch, time, dim), got shape {a.shape}")
        if not q.shape[0] == v.shape[0] == k.shape[0]:
            raise ValueError(f"x: layer {self.name!r} needs one batch size, got query {q.shape}, value {v.shape}, "
                             f"key {k.shape}")
        if k.shape[1] != v.shape[1]:
            raise ValueError(f"x: key and value need the same number of steps, got key {k.shape}, value {v.shape}")
        if k.shape[2] != q.shape[2]:
            raise ValueError(f"x: query and key need the same last size, got query {q.shape}, key {k.shape}")
        return q, v, k

    def forward(self, x, training=False, mask=None, return_attention_scores: bool = False,
                use_causal_mask: bool = False):
        q, v, k = self._split(x)
        masks = self._mask_list(mask, len(x), lengths=(2, 3)) or [None, None]
        q_mask, v_mask = masks[0], masks[1]
        B, Tq, Tv = q.shape[0], q.shape[1], v.shape[1]
        for name, m, want in (("mask[0]", q_mask, (B, Tq)), ("mask[1]", v_mask, (B, Tv))):
            if m is not None and m.shape != want:
                raise ValueError(f"{name}: expected shape {want}, got {m.shape}")
        s, score_cache = self._scores_forward(q, k)  # (1): (B, Tq, Tv)
        keep = None
        if training and self.dropout > 0.0:
            keep = (self._dropout_rng().random(s.shape) >= self.dropout).astype(self.dtype) / (1.0 - self.dropout)
        o, a, apply_cache = A.apply_scores_forward(
            s, v, A.score_mask(v_mask, Tq, Tv, bool(use_causal_mask)), keep, q_mask)  # (2)-(6)
        self._returns_scores = bool(return_attention_scores)
        self._cache = (score_cache, apply_cache, len(x), self._returns_scores) if training else None
        return [o, a.astype(self.dtype, copy=False)] if self._returns_scores else o

    def _backward(self, dy):
        score_cache, apply_cache, n_inputs, returns_scores = self._cache
        do, da = (dy[0], dy[1]) if returns_scores else (dy, None)
        v = apply_cache[2]
        if do is None:  # only the scores fed the loss
            do = np.zeros(apply_cache[1].shape[:2] + v.shape[2:], self.dtype)
        ds, dv = A.apply_scores_backward(np.asarray(do, self.dtype), apply_cache,
                                         None if da is None else np.asarray(da, self.dtype))
        dq, dk, grads = self._scores_backward(ds, score_cache)
        dx = [dq, dv, dk] if n_inputs == 3 else [dq, dv + dk]  # without a key, the value is the key too
        return dx, grads

    def compute_mask(self, inputs, mask):
        masks = self._mask_list(mask, len(self._input_list(inputs)), lengths=(2, 3))
        out = None if masks is None or masks[0] is None else masks[0]
        return [out, None] if self._returns_scores else out

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "dropout": self.dropout, "seed": self.seed}


@LAYERS.register
class Attention(_BaseAttention):
    """Luong attention: scores ``q @ k^T`` (``score_mode="dot"``) or ``sum(tanh(q + k))`` (``"concat"``)."""

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"score_mode: expected 'dot' or 'concat', got {score_mode!r}")
        self.score_mode = score_mode

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.scale = self._scalar_weight("scale") if self.use_scale else None
        self.concat_score_weight = self._scalar_weight("concat_score_weight") if self.score_mode == "concat" else None
        self.built = True

    def _scores_forward(self, q, k):
        scale = None if self.scale is None else self.scale.value
        if self.score_mode == "dot":
            return A.dot_scores_forward(q, k, scale)  # (1a)
        return A.tanh_scores_forward(q, k, inner=scale, outer=self.concat_score_weight.value)  # (1b)

    def _scores_backward(self, ds, cache):
        if self.score_mode == "dot":
            dq, dk, dscale = A.dot_scores_backward(ds, cache)
            return dq, dk, [dscale] if self.use_scale else []
        dq, dk, dscale, dweight = A.tanh_scores_backward(ds, cache)
        return dq, dk, ([dscale] if self.use_scale else []) + [dweight]

    def get_config(self):
        return {**super().get_config(), "score_mode": self.score_mode}


@LAYERS.register
class AdditiveAttention(_BaseAttention):
    """Bahdanau attention: scores ``sum_d scale_d * tanh(q_i + k_j)_d`` (1c)."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build(self, input_shape):
        shapes = [tuple(s) for s in self._input_list(input_shape)]
        dim = shapes[0][-1]
        if dim is None:
            raise ValueError(f"x: layer {self.name!r} needs a known query size (last axis), got shapes {shapes}")
        self.scale = self.add_weight("scale", (dim,), "glorot_uniform") if self.use_scale else None
        self.built = True

    def _scores_forward(self, q, k):
        if self.scale is not None and q.shape[-1] != self.scale.shape[0]:
            raise ValueError(f"x: layer {self.name!r} was built for query size {self.scale.shape[0]}, "
                             f"got query shape {q.shape}")
        return A.tanh_scores_forward(q, k, inner=None, outer=None if self.scale is None else self.scale.value)

    def _scores_backward(self, ds, cache):
        dq, dk, _, dscale = A.tanh_scores_backward(ds, cache)
        return dq, dk, [dscale] if self.use_scale else []
