"""Conv1D: a 1-D convolution over time, channels last (the math is :mod:`lstmlab.functional.conv`).

Weights in Keras's layout: ``kernel (kernel_size, in_channels / groups, filters)``, ``bias (filters,)``.
Like Keras 3, the layer does not support masking: a mask that comes in is not passed on (a convolution
mixes neighbouring steps, so a step's validity no longer means anything after it).
"""
from __future__ import annotations

from .. import functional as F
from ..functional._validate import as_float_array
from ..functional.conv import PADDINGS, conv1d_backward, conv1d_forward, conv_padding
from . import initializers as inits
from . import regularizers as regs
from .base import LAYERS, Layer
from .core import check_positive_int


def one_int(name: str, value) -> int:
    """A positive int given as ``n`` or Keras's one-element tuple ``(n,)`` (what its configs hold)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name}: expected a positive integer or a list of one, got {value!r}")
        value = value[0]
    return check_positive_int(name, value)


def check_data_format(data_format) -> str:
    """Only ``channels_last`` (Keras's default, ``None``): inputs are ``(batch, steps, channels)`` here."""
    if data_format is None or data_format == "channels_last":
        return "channels_last"
    if data_format == "channels_first":
        raise ValueError("data_format: 'channels_first' is not supported; lstmlab's layers take channels last, "
                         "(batch, steps, channels) (transpose the input, or use the default 'channels_last')")
    raise ValueError(f"data_format: expected 'channels_last' (or None), got {data_format!r}")


def check_padding(padding, allowed=PADDINGS) -> str:
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"padding: expected one of {', '.join(map(repr, allowed))}, got {padding!r}")
    return padding.lower()


def check_input_rank(layer: Layer, shape: tuple, ndim: int, what: str) -> None:
    if len(shape) != ndim:
        raise ValueError(f"x: layer {layer.name!r} expects a {ndim}-D input {what}, got shape {tuple(shape)}")


@LAYERS.register
class Conv1D(Layer):
    """``activation(conv1d(x, kernel) + bias)`` over the steps of ``(batch, steps, channels)``.

    Parameters (Keras's names and defaults)
    ----------
    filters : int
        Output channels ``F``.
    kernel_size : int or (int,)
        Taps ``K`` of each window.
    strides : int or (int,)
    padding : {"valid", "same", "causal"}
        ``causal`` pads ``dilation_rate * (K - 1)`` zeros on the left: output step t sees only steps <= t.
    data_format : "channels_last" or None
        ``channels_first`` is refused.
    dilation_rate : int or (int,)
        Gap between taps; Keras refuses ``strides > 1`` together with ``dilation_rate > 1``, and so does this.
    groups : int
        Input channels and filters split into this many independent blocks.
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer
        As for :class:`~lstmlab.layers.Dense`.
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = (one_int("kernel_size", kernel_size),)
        self.strides = (one_int("strides", strides),)
        self.padding = check_padding(padding)
        self.data_format = check_data_format(data_format)
        self.dilation_rate = (one_int("dilation_rate", dilation_rate),)
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"strides: strides > 1 cannot go with dilation_rate > 1 (as in Keras), got "
                             f"strides={self.strides[0]} and dilation_rate={self.dilation_rate[0]}")
        self.groups = check_positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"groups: expected a divisor of filters={self.filters}, got {self.groups}")
        self.activation = F.get_activation(activation)
        if not isinstance(use_bias, bool):
            raise ValueError(f"use_bias: expected true or false, got {use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = inits.get(kernel_initializer, argument="kernel_initializer")
        self.bias_initializer = inits.get(bias_initializer, argument="bias_initializer")
        self.kernel_regularizer = regs.get(kernel_regularizer, argument="kernel_regularizer")
        self.bias_regularizer = regs.get(bias_regularizer, argument="bias_regularizer")

    def build(self, input_shape):
        check_input_rank(self, input_shape, 3, "(batch, steps, channels)")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"x: layer {self.name!r} needs a known number of channels (last axis), got shape "
                             f"{tuple(input_shape)}")
        if channels % self.groups:
            raise ValueError(f"groups: layer {self.name!r} with groups={self.groups} needs input channels divisible "
                             f"by it, got {channels} channels (input shape {tuple(input_shape)})")
        shape = (self.kernel_size[0], channels // self.groups, self.filters)  # (K, C/G, F)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer, self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    self.bias_regularizer) if self.use_bias else None
        self.built = True

    def _out_steps(self, steps):
        """``L_out`` for ``steps`` input steps (``None`` stays ``None``); refuses a window longer than a valid input."""
        if steps is None:
            return None
        out, _, _ = conv_padding(steps, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        if out < 1:
            span = self.dilation_rate[0] * (self.kernel_size[0] - 1) + 1
            raise ValueError(f"x: layer {self.name!r} (kernel_size={self.kernel_size[0]}, "
                             f"dilation_rate={self.dilation_rate[0]}, padding='valid') needs at least {span} steps, "
                             f"got {steps}")
        return out

    def compute_output_shape(self, input_shape):
        check_input_rank(self, input_shape, 3, "(batch, steps, channels)")
        return (input_shape[0], self._out_steps(input_shape[1]), self.filters)

    def compute_mask(self, inputs, mask):
        return None

    def forward(self, x, training=False, mask=None):
        x = as_float_array("x", x)
        check_input_rank(self, x.shape, 3, "(batch, steps, channels)")
        channels = self.kernel.shape[1] * self.groups
        if x.shape[-1] != channels:
            raise ValueError(f"x: layer {self.name!r} was built for {channels} input channels (last axis), got "
                             f"shape {x.shape}")
        self._out_steps(x.shape[1])
        y, cache = conv1d_forward(x.astype(self.dtype, copy=False), self.kernel.value,
                                  None if self.bias is None else self.bias.value, strides=self.strides[0],
                                  padding=self.padding, dilation_rate=self.dilation_rate[0], groups=self.groups,
                                  activation=self.activation)  # (B, L_out, F)
        self._cache = cache if training else None
        return y

    def _backward(self, dy):
        g = conv1d_backward(dy, self._cache)
        return g.dx, [g.dkernel] + ([g.dbias] if self.use_bias else [])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups, "activation": self.activation.name,
                "use_bias": self.use_bias, "kernel_initializer": inits.serialize(self.kernel_initializer),
                "bias_initializer": inits.serialize(self.bias_initializer),
                "kernel_regularizer": regs.serialize(self.kernel_regularizer),
                "bias_regularizer": regs.serialize(self.bias_regularizer)}
