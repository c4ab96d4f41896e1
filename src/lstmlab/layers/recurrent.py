"""``LSTM``, ``GRU`` and ``SimpleRNN``: the ``RNN`` layer with its cell, as in Keras.

``LSTM(64, return_sequences=True)`` is ``RNN(LSTMCell(64), return_sequences=True)``
with Keras's flat configuration: the cell's arguments (units, activations,
initializers, dropout, ...) and the layer's (return_sequences, stateful, ...)
side by side. Its weights are the cell's, saved under the layer's name
(``lstm/kernel``), so files are the same as when these were separate classes.
The cell's attributes read through the layer (``layer.units``,
``layer.kernel``), as Keras's properties do.
"""
from __future__ import annotations

from .. import backend
from ._config import check_arguments
from .base import LAYERS, check_base_arguments
from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .rnn import RNN

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")
_LAYER_ARGS = ("name", "dtype", "trainable", "input_shape", "batch_input_shape", "batch_size", "input_dim")


class _CellLayer(RNN):
    """An RNN layer built from its cell's arguments; subclasses set ``cell_class``."""

    cell_class = None
    takes_implementation = False  # LSTM and GRU accept Keras's `implementation`

    def __init__(self, units: int, **kwargs):
        rnn_args = {k: kwargs.pop(k) for k in _RNN_ARGS if k in kwargs}
        layer_args = {k: kwargs.pop(k) for k in _LAYER_ARGS if k in kwargs}
        implementation = kwargs.pop("implementation", 2) if self.takes_implementation else None
        cell = self.cell_class(units, dtype=layer_args.get("dtype"), **kwargs)
        super().__init__(cell, **rnn_args, **layer_args)
        cell.name = f"{self.name}_cell"
        if self.takes_implementation:
            # Keras's choice between fused (2) and per-gate (1) products; one fused matrix here either way, so it
            # changes nothing. Kept as Keras keeps it: an attribute, set to 1 by recurrent dropout, not in the config.
            if isinstance(implementation, bool) or implementation not in (1, 2):
                raise ValueError(f"implementation: expected 1 or 2, got {implementation!r}")
            self.implementation = 1 if getattr(cell, "recurrent_dropout", 0) else implementation

    def __getattr__(self, name):
        # Only called when normal lookup fails: the cell's attributes (units, activation, kernel, ...).
        cell = self.__dict__.get("cell")
        if cell is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(cell, name)

    def get_config(self):
        config = super().get_config()
        cell = config.pop("cell")["config"]
        for key in ("name", "dtype", "trainable"):
            cell.pop(key, None)
        return {**config, **cell}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict):
            raise ValueError(f"expected a JSON object of arguments for {cls.__name__}, got {type(config).__name__}")
        layer_part = {k: v for k, v in config.items() if k in _RNN_ARGS or k in _LAYER_ARGS}
        own = ("implementation",) if cls.takes_implementation else ()  # in Keras 2 files' configs
        check_arguments(cls.cell_class, {k: v for k, v in config.items() if k not in layer_part and k not in own})
        check_base_arguments(layer_part)
        config = dict(config)
        if config.get("batch_input_shape") is not None:
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)


@LAYERS.register
class LSTM(_CellLayer):
    """Long Short-Term Memory layer (Keras arguments and defaults): ``RNN(LSTMCell(units, ...))``.

    Parameters: ``4 * units * (input_dim + units) + 4 * units`` (kernel, recurrent kernel, bias), gate order
    i, f, c, o; ``unit_forget_bias=True`` starts the forget-gate bias at 1 so the cell remembers by default.
    ``proj_size=P`` makes it the projection LSTM of PyTorch's ``nn.LSTM(proj_size=P)``: outputs and h have P
    columns, plus a ``projection_kernel (units, P)`` (see :class:`~lstmlab.layers.LSTMCell`).
    ``dtype="bfloat16"`` is an inference path (weights stay float32, the products run on bf16 operands with
    float32 sums; see :class:`~lstmlab.layers.cell_bf16.Bfloat16Inference`): train in float32, then build the
    model with ``dtype="bfloat16"`` and load the weights.
    """

    cell_class = LSTMCell
    takes_implementation = True

    def __init__(self, units: int, **kwargs):
        bf16 = backend.is_bfloat16(kwargs.get("dtype"))
        if bf16:  # float32 master weights; the cell runs the bf16 products
            kwargs["dtype"] = "float32"
        super().__init__(units, **kwargs)
        if bf16:
            self.cell.use_bfloat16(self.name)

    def get_config(self):
        config = super().get_config()
        if self.cell.bfloat16:
            config["dtype"] = backend.BFLOAT16
        return config

    @classmethod
    def from_config(cls, config):
        if not (isinstance(config, dict) and backend.is_bfloat16(config.get("dtype"))):
            return super().from_config(config)
        layer = super().from_config({**config, "dtype": "float32"})  # checked as float32, then switched
        layer.cell.use_bfloat16(layer.name)
        return layer


@LAYERS.register
class GRU(_CellLayer):
    """Gated Recurrent Unit: ``RNN(GRUCell(units))``. ``reset_after=True`` (default; Keras 2+, PyTorch) has bias
    (2, 3*units); ``reset_after=False`` is Keras's original variant, reset gate before the recurrent product,
    bias (3*units,)."""

    cell_class = GRUCell
    takes_implementation = True


@LAYERS.register
class SimpleRNN(_CellLayer):
    """The plain (Elman) RNN, ``h_t = activation(x_t W + h_{t-1} U + b)``: ``RNN(SimpleRNNCell(units))``."""

    cell_class = SimpleRNNCell
