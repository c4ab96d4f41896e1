"""A small ONNX graph builder: unique value names, weights as initializers, one call per node.

The exporter (:mod:`lstmlab.interop.onnx_export`) describes a model as calls like
``g.op("MatMul", x, g.const("dense/kernel", kernel))``; this module keeps the bookkeeping out of its way.
``onnx`` is imported by the caller and handed in, so importing this module never needs it.

Conventions of the graphs it builds: batch-first tensors as in lstmlab, float32 values, int64 shapes and
indices, and opset :data:`OPSET` (every operator used here has kept its signature from opset 13 to 17).
"""
from __future__ import annotations

import numpy as np

OPSET = 17
IR_VERSION = 8  # the IR of ONNX 1.10-1.12 (opset 15-17): what older runtimes still open

# lstmlab's activations as ONNX operators (Dense, Activation) and as the ``activations`` attribute of the
# recurrent operators, with the (alpha, beta) those take. hard_sigmoid is Keras 3's: clip(x / 6 + 1/2, 0, 1).
_LAYER_OPS = {"sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "relu": ("Relu", {}), "softsign": ("Softsign", {}),
              "hard_sigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}), "softmax": ("Softmax", {"axis": -1})}
RECURRENT_ACTIVATIONS = {"sigmoid": ("Sigmoid", None), "tanh": ("Tanh", None), "relu": ("Relu", None),
                         "softsign": ("Softsign", None), "hard_sigmoid": ("HardSigmoid", (1 / 6, 0.5)),
                         "linear": ("Affine", (1.0, 0.0))}


class GraphBuilder:
    """Nodes, initializers, inputs and outputs of one ONNX graph under construction.

    Parameters
    ----------
    onnx : module
        The imported ``onnx`` package.
    name : str
        The graph's name (the model's).
    """

    def __init__(self, onnx, name: str):
        self.onnx, self.name = onnx, name
        self.helper, self.TP = onnx.helper, onnx.TensorProto
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}

    # -- names -----------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name not used yet: ``hint``, else ``hint_1``, ``hint_2``, ..."""
        name, k = hint, 0
        while name in self._used:
            k += 1
            name = f"{hint}_{k}"
        self._used.add(name)
        return name

    # -- values ----------------------------------------------------------------
    def const(self, hint: str, value, dtype=np.float32) -> str:
        """An initializer holding ``value`` (float32 unless ``dtype``); small int constants are shared."""
        array = np.array(value, dtype)  # a 0-d value stays a scalar
        key = None
        if array.size <= 8 and array.dtype.kind in "iub":
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, *values) -> str:
        """A 1-D int64 constant (axes, shapes, slice bounds)."""
        return self.const("ints", list(values), np.int64)

    def input(self, name: str, elem_type, shape) -> str:
        """A graph input; ``shape`` holds ints and dimension names such as ``"batch"``."""
        self._used.add(name)
        self.inputs.append(self.helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, name: str, value: str, elem_type, shape) -> None:
        """Make ``value`` a graph output called ``name`` (through an Identity: outputs get their own names)."""
        self.nodes.append(self.helper.make_node("Identity", [value], [name], name=self.fresh(f"{name}/identity")))
        self._used.add(name)
        self.outputs.append(self.helper.make_tensor_value_info(name, elem_type, list(shape)))

    # -- nodes -----------------------------------------------------------------
    def op(self, op_type: str, *inputs, n_out: int = 1, hint: str | None = None, **attrs):
        """Add one node; returns its output name (or a list of ``n_out`` names). An input ``""`` is omitted."""
        hint = hint or op_type.lower()
        outs = [self.fresh(hint if n_out == 1 else f"{hint}_{k}") for k in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"{hint}/node"),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def activation(self, x: str, name: str, where: str) -> str:
        """``name`` (an lstmlab activation) applied to ``x``; ``where`` names the layer in an error."""
        if name == "linear":
            return x
        if name not in _LAYER_OPS:
            raise ValueError(f"layer {where!r}: activation {name!r} has no ONNX export; exportable: "
                             f"linear, {', '.join(_LAYER_OPS)}")
        op_type, attrs = _LAYER_OPS[name]
        return self.op(op_type, x, hint=f"{where}/{name}", **attrs)

    # -- shape helpers used by several exporters --------------------------------
    def unsqueeze(self, x: str, *axes: int) -> str:
        return self.op("Unsqueeze", x, self.ints(*axes))

    def squeeze(self, x: str, *axes: int) -> str:
        return self.op("Squeeze", x, self.ints(*axes))

    def reverse_time(self, x: str) -> str:
        """``x[:, ::-1]`` for any length: a Slice with step -1 along axis 1."""
        lowest = np.iinfo(np.int64).min
        return self.op("Slice", x, self.ints(-1), self.ints(lowest), self.ints(1), self.ints(-1), hint="reversed")

    # -- the file --------------------------------------------------------------
    def model(self, doc: str):
        """The finished, checked ``ModelProto``."""
        graph = self.helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                       producer_name="lstmlab", doc_string=doc)
        model.ir_version = IR_VERSION
        self.onnx.checker.check_model(model)
        return model


class Value:
    """One tensor of the exported graph: its ONNX name, its shape (ints and dimension names), its numpy
    dtype name and, for sequences with a Keras mask, the name of that mask (bool, (batch, time))."""

    def __init__(self, name: str, shape: tuple, mask: str | None = None, dtype: str = "float32"):
        self.name, self.shape, self.mask, self.dtype = name, tuple(shape), mask, dtype

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.shape}, mask={self.mask!r})"
