"""Bidirectional and TimeDistributed: layers that run another layer."""
from __future__ import annotations

import numpy as np

from .base import LAYERS, Layer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class _Wrapper(Layer):
    """A layer whose weights and gradients are those of its inner layers."""

    def _inner(self) -> list[Layer]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def weights(self):
        return [w for layer in self._inner() for w in layer.weights]

    def _backward_filling_grads(self, dy):
        dx = self._backward(dy)
        self.grads = [g for layer in self._inner() for g in layer.grads]  # penalties already added inside
        return dx

    def _share_rng(self):
        for layer in self._inner():
            layer.rng = self.rng

    def reset_states(self, states=None):
        for layer in self._inner():
            layer.reset_states()

    @classmethod
    def from_config(cls, config):
        return cls._from_config_with(config, "layer")


@LAYERS.register
class Bidirectional(_Wrapper):
    """Runs a recurrent layer forward and a copy of it backward in time, and merges the two.

    ``merge_mode``: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or
    ``None`` (a list ``[forward, backward]``). With ``return_sequences`` the
    backward layer's outputs are put back in forward time order before
    merging, so step t of both halves describes input step t.
    """

    def __init__(self, layer: Layer, merge_mode="concat", backward_layer: Layer | None = None, **kwargs):
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode: expected one of concat, sum, mul, ave, None, got {merge_mode!r}")
        if isinstance(layer, Bidirectional):
            # Keras 3 refuses it too (its message: "Unrecognized keyword arguments passed to Bidirectional:
            # {'go_backwards': True}"): a backward copy of a layer that already reads both directions is the layer.
            raise ValueError("layer: Bidirectional expects a recurrent layer (LSTM, GRU, SimpleRNN), got a "
                             "Bidirectional layer, which already runs both directions; to stack them, put two "
                             "Bidirectional layers one after the other (the first with return_sequences=True)")
        for name, rnn in (("layer", layer), ("backward_layer", backward_layer)):
            if rnn is not None and not (hasattr(rnn, "return_sequences") and hasattr(rnn, "go_backwards")):
                raise ValueError(f"{name}: Bidirectional expects a recurrent layer (LSTM, GRU, SimpleRNN), "
                                 f"got {type(rnn).__name__}")
        if layer.batch_input_shape is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["batch_input_shape"] = layer.batch_input_shape
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        self.forward_layer = type(layer).from_config({**config, "name": f"forward_{layer.name}"})
        if backward_layer is None:
            self.backward_layer = type(layer).from_config(
                {**config, "name": f"backward_{layer.name}", "go_backwards": not layer.go_backwards})
        else:
            self.backward_layer = backward_layer
        for half in (self.forward_layer, self.backward_layer):  # as Keras's Bidirectional: padded steps output 0,
            if hasattr(half, "zero_output_for_mask"):           # so the two halves merge cleanly
                half.zero_output_for_mask = half.return_sequences
            if hasattr(half, "_contiguous_dx"):  # the two dx are added here: no copy of a reversed one first
                half._contiguous_dx = False
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = self.forward_layer.stateful

    def _inner(self):
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.forward_layer.built = True
        self.backward_layer.build(input_shape)
        self.backward_layer.built = True
        self.built = True

    def compute_output_shape(self, input_shape):
        f = self.forward_layer.compute_output_shape(input_shape)
        b = self.backward_layer.compute_output_shape(input_shape)
        out_f, out_b = (f[0], b[0]) if self.return_state else (f, b)
        if self.merge_mode == "concat":
            out = tuple(out_f[:-1]) + (out_f[-1] + out_b[-1],)
        elif self.merge_mode is None:
            out = [out_f, out_b]
        else:
            out = out_f
        if self.return_state:
            return ([out] if self.merge_mode else out) + list(f[1:]) + list(b[1:])
        return out

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def forward(self, x, training=False, mask=None, initial_state=None):
        self._share_rng()
        n = self.forward_layer._n_states
        init_f = init_b = None
        if initial_state is not None:
            if len(initial_state) != 2 * n:
                raise ValueError(f"initial_state: layer {self.name!r} expects {2 * n} state arrays "
                                 f"(forward then backward), got {len(initial_state)}")
            init_f, init_b = list(initial_state[:n]), list(initial_state[n:])
        yf = self.forward_layer(x, training=training, mask=mask, initial_state=init_f)
        yb = self.backward_layer(x, training=training, mask=mask, initial_state=init_b)
        states = []
        if self.return_state:
            (yf, *sf), (yb, *sb) = yf, yb
            states = sf + sb
        if self.return_sequences:
            yb = yb[:, ::-1]  # back to forward time order
        self._cache = (yf, yb) if training else None
        if self.merge_mode == "concat":
            out = np.concatenate([yf, yb], axis=-1)
        elif self.merge_mode == "sum":
            out = yf + yb
        elif self.merge_mode == "mul":
            out = yf * yb
        elif self.merge_mode == "ave":
            out = (yf + yb) / 2
        else:
            out = [yf, yb]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def _backward(self, dy):
        yf, yb = self._cache
        n = self.forward_layer._n_states
        dstates = [None] * (2 * n)
        if self.return_state:
            k = 2 if self.merge_mode is None else 1
            dstates = list(dy[k:])
            dy = dy[:k] if self.merge_mode is None else dy[0]
        if self.merge_mode == "concat":
            H = yf.shape[-1]
            dyf, dyb = dy[..., :H], dy[..., H:]
        elif self.merge_mode == "sum":
            dyf = dyb = dy
        elif self.merge_mode == "mul":
            dyf, dyb = dy * yb, dy * yf
        elif self.merge_mode == "ave":
            dyf = dyb = dy / 2
        else:
            dyf, dyb = dy
        if self.return_sequences and dyb is not None:
            dyb = dyb[:, ::-1]
        if self.return_state:
            dyf, dyb = [dyf] + dstates[:n], [dyb] + dstates[n:]
        dxf, dxb = self.forward_layer.backward(dyf), self.backward_layer.backward(dyb)
        # the sum in place in the forward half's own dx (a fresh array) when it can take it: no third array
        own = isinstance(dxf, np.ndarray) and dxf.flags.owndata and dxf.flags.writeable and dxf.flags.c_contiguous
        return np.add(dxf, dxb, out=dxf if own and np.result_type(dxf, dxb) == dxf.dtype else None)

    def get_config(self):
        config = {**super().get_config(), "layer": LAYERS.serialize(self.forward_layer), "merge_mode": self.merge_mode}
        config["layer"]["config"]["name"] = self.forward_layer.name[len("forward_"):]
        return config


@LAYERS.register
class TimeDistributed(_Wrapper):
    """Applies a layer to every time step of ``(batch, time, ...)`` independently."""

    def __init__(self, layer: Layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"layer: TimeDistributed expects a layer, got {type(layer).__name__}")
        super().__init__(**kwargs)
        self.layer = layer

    def _inner(self):
        return [self.layer]

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"input_shape: TimeDistributed expects (batch, time, ...), got {input_shape}")
        self.layer.build((None,) + tuple(input_shape[2:]))
        self.layer.built = True
        self.built = True

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def forward(self, x, training=False, mask=None):
        self._share_rng()
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"x: TimeDistributed expects (batch, time, ...), got shape {x.shape}")
        B, T = x.shape[:2]
        y = self.layer(x.reshape((B * T,) + x.shape[2:]), training=training)  # every step as a row
        self._cache = (B, T, x.shape) if training else None
        return y.reshape((B, T) + y.shape[1:])

    def _backward(self, dy):
        B, T, xshape = self._cache
        dx = self.layer.backward(np.asarray(dy).reshape((B * T,) + dy.shape[2:]))
        return None if dx is None else dx.reshape(xshape)

    def get_config(self):
        return {**super().get_config(), "layer": LAYERS.serialize(self.layer)}
