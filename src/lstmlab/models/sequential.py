"""``Sequential``: a stack of layers, each feeding the next; a :class:`~lstmlab.models.Model` like any other."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..functional._validate import internal_activations
from ..layers import LAYERS, Dense, Layer
from ..layers.input_layer import InputLayer
from ..layers.symbolic import KerasTensor
from ..training import losses as L
from ._arguments import as_samples
from .model import Model
from .saving import MODELS


@LAYERS.register
@MODELS.register
class Sequential(Model):
    """A linear stack of layers.

    >>> model = Sequential([layers.Embedding(100, 8, input_length=10), layers.LSTM(16), layers.Dense(1)])
    >>> model.compile("adam", "mse")
    """

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name if name is not None else backend.unique_name("sequential"), trainable=trainable)
        self.layers = []
        self._declared_input_shape = None
        self._input_name = None
        for layer in layers or []:
            self.add(layer)

    # -- structure ---------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; ``Input(shape)`` (or an ``InputLayer``) first fixes the input shape, as in Keras 3."""
        if isinstance(layer, KerasTensor) and isinstance(layer._keras_history[0], InputLayer):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError("layer: an Input() can only be the first entry of a Sequential model")
            self._declared_input_shape = tuple(layer.batch_shape)
            self._input_name = layer.name  # a Keras file of this model names its input so
            return
        if not isinstance(layer, Layer):
            raise ValueError(f"layer: expected an lstmlab layer, got {type(layer).__name__}")
        if any(l.name == layer.name for l in self.layers):
            raise ValueError(f"layer: the model already has a layer named {layer.name!r}; layer names must be unique")
        if getattr(layer, "return_state", False):
            raise ValueError(f"layer: {layer.name!r} has return_state=True; a Sequential model passes one tensor "
                             "between layers (call the layer directly to get its states)")
        self.layers.append(layer)
        if len(self.layers) == 1 and (layer.batch_input_shape is not None or self._declared_input_shape is not None):
            self.build(layer.batch_input_shape if layer.batch_input_shape is not None else self._declared_input_shape)
        elif self.built:
            self.build(self._declared_input_shape)

    def build(self, input_shape) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch first, ``None`` = any)."""
        shape = tuple(input_shape)
        self._declared_input_shape = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
                layer.built = True
            shape = layer.compute_output_shape(shape)
            if isinstance(shape, list):
                raise ValueError(f"layer: {layer.name!r} returns several tensors; Sequential needs one per layer")
        self.built = True

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def reset_states(self) -> None:
        for layer in self.layers:
            layer.reset_states()

    # -- running -----------------------------------------------------------
    def _check_x(self, x):
        x = as_samples("x", x)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"x: expected finite values, got {bad} NaN or Inf value(s) in an array of shape {x.shape}")
        want = self._declared_input_shape
        if want is not None and x.ndim == len(want) - 1 and want[-1] == 1 and type(self.layers[0]).__name__ != "Embedding":
            x = x[..., None]  # (N, T) fed to a model of (None, T, 1) inputs gets the trailing axis, as in Keras 3
        if want is not None:
            ok = x.ndim == len(want) and all(w is None or w == s for w, s in zip(want[1:], x.shape[1:]))
            if not ok:
                shown = "(" + ", ".join("batch" if k == 0 else ("None" if w is None else str(w))
                                        for k, w in enumerate(want)) + ")"
                raise ValueError(f"x: model {self.name!r} expects input of shape {shown}, got {x.shape}")
        return x

    def _forward(self, x, training: bool, skip_last: bool = False):
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers")
        x = self._check_x(x)
        if not self.built:
            self.build(self._shape_from_data(x))
        mask = None
        with internal_activations():  # x was checked above; what flows between layers is not user input
            for layer in self.layers[:-1] if skip_last else self.layers:
                x = layer(x, training=training, mask=mask)
                mask = layer.output_mask
        return x, mask

    def _fused_output(self) -> bool:
        """True when the loss is a sparse cross-entropy from the logits of a linear last Dense and nothing
        else needs the logits (no metrics): the output layer and the loss then run fused
        (``Dense.softmax_cross_entropy``), equal to the separate computation, without its N x V arrays."""
        last = self.layers[-1] if self.layers else None
        return (isinstance(self.loss, L.SparseCategoricalCrossentropy) and self.loss.from_logits
                and not any(self._metric_specs) and type(last) is Dense and last.activation.name == "linear")

    def _fused_loss(self, x, y, training: bool):
        """Forward to the last layer's input, then the fused output layer and loss: ``(loss, dh, mask)``."""
        h, mask = self._forward(x, training=training, skip_last=True)
        last = self.layers[-1]
        out_shape = h.shape[:-1] + (last.units,)
        y = self.loss.prepare_targets(y, np.broadcast_to(np.zeros((), h.dtype), out_shape))
        with internal_activations():
            loss, dh = last.softmax_cross_entropy(h, y, mask, training=training)
        last.output_mask = mask
        return loss, dh, mask

    def _shape_from_data(self, x) -> tuple:
        """The input shape a model infers from its first batch: batch and time stay free."""
        shape = [None] + list(x.shape[1:])
        sequence_first = x.ndim >= 3 or (x.ndim == 2 and type(self.layers[0]).__name__ == "Embedding")
        if sequence_first:
            shape[1] = None
        return tuple(shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if not self.built:
            self.build(shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def _input_shape_of(self, x):
        return self._shape_from_data(np.asarray(x))

    def forward(self, x, training=False, mask=None):
        out, self._out_mask_seq = self._forward(x, training)
        self._cache = "layers" if training else None  # the caches are the layers' own
        return out

    def compute_mask(self, inputs, mask):
        return self.__dict__.get("_out_mask_seq")

    def _sublayers(self) -> list:
        return list(self.layers)  # their caches are this model's per-call state

    def _backward(self, dy):
        dx = self.backward(dy)
        return dx, self.grads

    def _outputs(self, x, training: bool):
        y, mask = self._forward(x, training)
        return [y], [mask]

    def _output_names(self) -> list[str]:
        return [self.layers[-1].name] if self.layers else ["output"]

    def _trainable_pairs(self) -> list:
        return [(w, g) for layer in self.layers for w, g in zip(layer.weights, layer.grads) if w.trainable]

    def _loss_and_gradients(self, x, y, sw, training: bool):
        """The fused output layer and loss when they apply (see ``_fused_output``), else the generic path."""
        if sw is not None or not self._fused_output():
            return super()._loss_and_gradients(x, y, sw, training)
        loss, dh, mask = self._fused_loss(x, y, training=training)
        if training:
            self.backward(dh, skip_last=True)
        return loss, [loss], None, [mask]

    def backward(self, dy, skip_last: bool = False):
        """Backpropagate ``dy`` through all layers after a ``training=True`` call; fills each ``layer.grads``.

        ``skip_last``: ``dy`` is the gradient of the last layer's input (the fused output layer filled that
        layer's grads itself). Also fills ``self.grads``, aligned with ``self.weights``.
        """
        with internal_activations():
            for layer in reversed(self.layers[:-1] if skip_last else self.layers):
                dy = layer.backward(dy)
        self.grads = [g for layer in self.layers for g in layer.grads]
        return dy

    # -- config and files --------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "layers": [LAYERS.serialize(l) for l in self.layers],
                "build_input_shape": None if self._declared_input_shape is None else list(self._declared_input_shape)}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        model = cls([LAYERS.deserialize(spec) for spec in config["layers"]], name=config.get("name"),
                    trainable=config.get("trainable", True))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
        return model
