"""``LSTMCell(units, dtype="bfloat16")``: the cell's bfloat16 inference path (a mixin of :class:`LSTMCell`).

Kept apart from :mod:`.cells` so the float32 cell reads as before: LSTMCell lists
:class:`Bfloat16Inference` ahead of its other bases, and every method here
hands a float32 cell straight to the next class in the method order.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .._fast import lstm_bf16 as fast_lstm_bf16


class Bfloat16Inference:
    """``dtype="bfloat16"`` for the LSTM cell: an inference path with float32 master weights.

    The weights stay float32 (NumPy has no bf16: ``get_weights``, files and training all see float32); the
    config records ``"dtype": "bfloat16"``. Inference calls (``training=False``: ``predict``, the one-step
    ``layer.step`` of a sampler) round the operands of both products to bf16 and sum in float32
    (:mod:`lstmlab.functional.bf16`; in C on a CPU with AVX512_BF16, :mod:`lstmlab._fast.lstm_bf16`).
    A training call is refused: train in float32, then load the weights into a model built with
    ``dtype="bfloat16"``. Only tanh / sigmoid and no projection. Mixed into :class:`LSTMCell`, ahead of it
    in the method order, so that a float32 cell runs exactly as without it.
    """

    def __init__(self, units, *args, dtype=None, **kwargs):
        bf16 = backend.is_bfloat16(dtype)
        super().__init__(units, *args, dtype="float32" if bf16 else dtype, **kwargs)
        self.compute_dtype = backend.BFLOAT16 if bf16 else self.dtype.name

    @property
    def bfloat16(self) -> bool:
        return getattr(self, "compute_dtype", None) == backend.BFLOAT16

    def use_bfloat16(self, layer_name: str | None = None) -> None:
        """Switch an unbuilt float32 cell to bf16 inference (the LSTM layer's ``dtype="bfloat16"``), or refuse
        the options the bf16 path does not have, naming the layer."""
        if self.dtype != np.float32:
            raise ValueError(f"dtype: layer {layer_name or self.name!r} cannot be both {self.dtype.name} and "
                             f"bfloat16")
        self.compute_dtype = backend.BFLOAT16
        self._check_bfloat16(layer_name)

    def _bf16_layer_name(self) -> str:
        return self._weight_owner()[0].name if "_owner" in self.__dict__ else self.name

    def _check_bfloat16(self, layer_name: str | None = None) -> None:
        where = f"layer {layer_name or self._bf16_layer_name()!r} with dtype='bfloat16'"
        for arg, have, want in (("activation", self.activation.name, "tanh"),
                                ("recurrent_activation", self.recurrent_activation.name, "sigmoid")):
            if have != want:
                raise ValueError(f"{arg}: {where} runs only {arg}={want!r} (the bf16 inference path), got "
                                 f"{have!r}; use dtype='float32' for other activations")
        if getattr(self, "proj_size", None) is not None:
            raise ValueError(f"proj_size: {where} has no projection (the bf16 inference path), got "
                             f"{self.proj_size!r}; use dtype='float32' with proj_size")

    def _refuse_training(self):
        raise ValueError(f"training: layer {self._bf16_layer_name()!r} has dtype='bfloat16', an inference path "
                         f"(training=False, predict, generate); train it in float32, then build the model with "
                         f"dtype='bfloat16' and load the weights")

    def build(self, input_shape):
        if self.bfloat16:
            self._check_bfloat16()
        super().build(input_shape)

    def sequence(self, x, states, mask=None, recurrent_mask=None, need_cache=True):
        if not self.bfloat16:
            return super().sequence(x, states, mask, recurrent_mask, need_cache)
        if need_cache or recurrent_mask is not None:  # the RNN layer keeps a cache only when training
            self._refuse_training()
        self._check_bfloat16()
        k, r, b = self._weights_args()
        hs, (h, c) = fast_lstm_bf16.lstm_bf16_forward(x, k, r, b, states[0], states[1], mask=mask)
        return hs, [h, c], None

    def step(self, x_t, states, recurrent_mask=None):
        if not self.bfloat16:
            return super().step(x_t, states, recurrent_mask)
        hs, final, _ = self.sequence(x_t[:, None], states, None, recurrent_mask, need_cache=False)  # (B, 1, H)
        return hs[:, 0], final, None

    def step_backward(self, dout, dstates, cache):
        if self.bfloat16:  # a training loop that stepped a bf16 cell (a StackedRNNCells)
            self._refuse_training()
        return super().step_backward(dout, dstates, cache)

    def get_config(self):
        config = super().get_config()
        if self.bfloat16:
            config["dtype"] = backend.BFLOAT16
        return config

    @classmethod
    def from_config(cls, config):
        if not (isinstance(config, dict) and backend.is_bfloat16(config.get("dtype"))):
            return super().from_config(config)
        cell = super().from_config({**config, "dtype": "float32"})  # checked as float32, then switched
        cell.use_bfloat16()
        return cell
