"""Symbolic tensors and nodes: how ``layer(Input(...))`` describes a graph instead of computing.

Calling a layer on a :class:`KerasTensor` (what ``Input`` returns) builds the layer for that shape and
returns new KerasTensors of the output shapes; the call is kept as a :class:`Node` (layer, arguments,
outputs). ``Model(inputs, outputs)`` walks the nodes back from its outputs to find the graph; running
the model calls the same layers on arrays, node by node.
"""
from __future__ import annotations

import numpy as np


class KerasTensor:
    """A placeholder for an array in a graph: its shape (``None`` = any), dtype and the call that makes it.

    ``_keras_history = (layer, node_index, tensor_index)``: output ``tensor_index`` of the layer's
    ``node_index``-th call. Arithmetic on it is refused: a graph is built from layer calls only.
    """

    def __init__(self, shape, dtype="float32", name: str | None = None, history=None):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype).name
        self.name = name
        self._keras_history = history

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is a symbolic placeholder of a graph, not an array: call the model on data "
                        "to get values (model(x) or model.predict(x))")

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{self!r}: operations on a symbolic tensor are not recorded in lstmlab; use a layer "
                        "(layers.Add, Multiply, Concatenate, Reshape, ...) to combine tensors in a graph")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse
    __matmul__ = __rmatmul__ = __pow__ = __neg__ = __getitem__ = _refuse


def flatten(x) -> list:
    """The leaves of a nest of lists, tuples and dicts, in order."""
    if isinstance(x, (list, tuple)):
        return [a for item in x for a in flatten(item)]
    if isinstance(x, dict):
        return [a for key in x for a in flatten(x[key])]
    return [x]


def map_structure(fn, x):
    if isinstance(x, (list, tuple)):
        return type(x)(map_structure(fn, item) for item in x)
    if isinstance(x, dict):
        return {k: map_structure(fn, v) for k, v in x.items()}
    return fn(x)


def any_symbolic(x, kwargs) -> bool:
    return any(isinstance(a, KerasTensor) for a in flatten(x) + flatten(list(kwargs.values())))


class Node:
    """One call of a layer in a graph: its arguments (with KerasTensors in them) and its outputs."""

    def __init__(self, layer, args, kwargs: dict, outputs):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs

    @property
    def input_tensors(self) -> list:
        return [a for a in flatten(self.args) + flatten(list(self.kwargs.values())) if isinstance(a, KerasTensor)]

    @property
    def parents(self) -> list:
        return [t._keras_history[0]._inbound_nodes[t._keras_history[1]] for t in self.input_tensors]


def _shape(x):
    return x.shape if isinstance(x, KerasTensor) else (None,) + tuple(np.shape(x))[1:]


def symbolic_call(layer, x, mask, kwargs):
    """``layer(x, **kwargs)`` on KerasTensors: build the layer, record a node, return output KerasTensors."""
    if mask is not None:
        raise ValueError(f"layer {layer.name!r}: mask= cannot be given to a call on symbolic tensors; in a graph "
                         "masks travel with the tensors (from Embedding(mask_zero=True) or Masking)")
    for a in flatten(x) + flatten(list(kwargs.values())):
        if not isinstance(a, (KerasTensor, bool, int, float, str, type(None))):
            raise ValueError(f"layer {layer.name!r}: a call on symbolic tensors mixes in a {type(a).__name__}; "
                             "every tensor argument in a graph must come from Input() or a layer")
    in_shape = map_structure(_shape, x)
    if not layer.built:
        layer.build(in_shape)
        layer.built = True
    out_shape = layer.compute_output_shape(in_shape)
    nodes = layer.__dict__.setdefault("_inbound_nodes", [])
    index = len(nodes)
    dtype = layer.output_dtype(x) if hasattr(layer, "output_dtype") else layer.dtype
    if isinstance(out_shape, list) and out_shape and isinstance(out_shape[0], (tuple, list)):
        outputs = [KerasTensor(s, dtype, f"{layer.name}_{index}_{k}", (layer, index, k))
                   for k, s in enumerate(out_shape)]
    else:
        outputs = KerasTensor(out_shape, dtype, f"{layer.name}_{index}" if index else layer.name, (layer, index, 0))
    nodes.append(Node(layer, x, dict(kwargs), outputs))
    return outputs
