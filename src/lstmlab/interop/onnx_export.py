"""``model.export("m.onnx", format="onnx")``: an lstmlab model as one ONNX graph (Keras 3's ``Model.export``).

Recurrent layers become ONNX's own ``LSTM``, ``GRU`` and ``RNN`` operators (see
:mod:`lstmlab.interop.onnx_recurrent`); the other layers become plain operators:

===============================  ============================================================
lstmlab                          ONNX
===============================  ============================================================
Embedding                        ``Gather`` (ids of any integer type; ``mask_zero`` -> ids != 0)
Masking                          ``Equal`` / ``ReduceMax`` for the mask, ``Mul`` to zero padded steps
Dense, TimeDistributed(Dense)    ``MatMul`` (on 2-D or 3-D inputs) + ``Add`` + the activation
Activation                       the activation's operator
Dropout, SpatialDropout1D        nothing (inference is the identity)
Add, Subtract, Multiply,         ``Sum``, ``Sub``, ``Mul``, ``Sum`` / ``Div``, ``Max``, ``Min``,
Average, Maximum, Minimum,       ``Concat`` (without masks)
Concatenate
===============================  ============================================================

The batch and time axes are dynamic: one file runs any batch size and any sequence length. Values are
float32. Anything else is refused with a ValueError naming the layer, before a file is written: the
export is exact or it does not happen.

``states=True`` makes the initial states of every recurrent layer graph inputs
(``<layer>/initial_h``, ``<layer>/initial_c``; shape (batch, units)) and its final states graph outputs
(``<layer>/final_h``, ...), after the model's own outputs, so a caller streams a sequence step by step,
feeding each run's final states to the next run. A stateful layer has to be exported this way (an ONNX
graph keeps nothing between runs); without ``states`` every run starts from zeros.
"""
from __future__ import annotations

import os

import numpy as np

from .. import layers as L
from ..layers.activation_layers import Activation, SpatialDropout1D
from ..layers.input_layer import InputLayer
from ..layers.symbolic import KerasTensor, flatten
from .onnx_graph import GraphBuilder, Value
from .onnx_recurrent import can_share_node, operator_spec, run_operator

_OPTIONS = ("states", "verbose")
_RNN_TYPES = (L.RNN, L.LSTM, L.GRU, L.SimpleRNN)
_MERGES = {L.Add: "Sum", L.Subtract: "Sub", L.Multiply: "Mul", L.Maximum: "Max", L.Minimum: "Min"}
_ONNX_DTYPES = {"float32": 1, "float64": 1, "float16": 1, "int64": 7, "int32": 6}  # TensorProto codes; floats as float32


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ValueError("format: exporting to ONNX needs the onnx package; install it with "
                         "pip install 'lstmlab[onnx]'") from None
    return onnx


def export_onnx(model, filepath, **options) -> dict:
    """Write ``model`` to ``filepath`` as an ONNX model, atomically (a reader sees the old file or the new one).

    Parameters
    ----------
    model : Sequential or functional Model
    filepath : str or path
    states : bool, default False
        Initial states as inputs and final states as outputs of every recurrent layer (see the module docstring).
    verbose : bool, optional
        Accepted for Keras; nothing is printed.

    Returns
    -------
    dict
        The graph's interface: ``inputs`` and ``outputs`` (names), and ``states``, a list of
        ``{"input", "output", "size"}`` for each recurrent state when ``states=True``.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"options: unknown ONNX export option(s) {', '.join(unknown)}; expected {', '.join(_OPTIONS)}")
    states = options.get("states", False)
    if not isinstance(states, bool):
        raise ValueError(f"states: expected True or False, got {states!r}")
    path = os.fspath(filepath)
    if not path or os.path.isdir(path):
        raise ValueError(f"filepath: expected a file path, got {path!r}")
    onnx = _import_onnx()
    g = GraphBuilder(onnx, model.name)
    g.stream = [] if states else None
    names = _output_names(model)
    g._used.update(names)  # the outputs' names are the model's: no inner value may take them
    outputs = _walk(g, model)
    for name, value in zip(names, outputs):
        g.output(name, value.name, _ONNX_DTYPES[value.dtype], _dims(value.shape))
    for entry in g.stream or []:
        g.output(entry["output"], entry["value"], g.TP.FLOAT, ["batch", entry["size"]])
    proto = g.model(f"lstmlab model {model.name!r}")
    if proto.ByteSize() >= 2**31:
        raise ValueError(f"model {model.name!r}: {proto.ByteSize():,} bytes is over ONNX's 2 GB limit for one file")
    from ..io.safetensors import atomic_write

    atomic_write(path, proto.SerializeToString())
    return {"inputs": [i.name for i in g.inputs], "outputs": names,
            "states": [{k: e[k] for k in ("input", "output", "size")} for e in g.stream or []]}


def _dims(shape) -> list:
    return [d if isinstance(d, (int, str)) else "dim" for d in shape]


def _output_names(model) -> list:
    """Keras's output names (the output layers'), made unique: ``lstm``, ``lstm_1`` for return_state outputs."""
    graph = getattr(model, "_graph", None)
    layers = [t._keras_history[0].name for t in graph.outputs] if graph is not None else model.output_names[:1]
    names, seen = [], set()
    for name in layers:
        unique, k = name, 0
        while unique in seen:
            k += 1
            unique = f"{name}_{k}"
        seen.add(unique)
        names.append(unique)
    return names


# -- walking a model -------------------------------------------------------------------------------------
def _walk(g: GraphBuilder, model) -> list:
    """The model's output Values, its layers exported in call order."""
    from ..models import Model, Sequential

    if not isinstance(model, Model):
        raise ValueError(f"model: expected an lstmlab Sequential or functional Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model {model.name!r}: build or call the model before exporting it (its input shape is "
                         "not known yet)")
    if isinstance(model, Sequential):
        shape = model._declared_input_shape
        first = model.layers[0] if model.layers else None
        if shape is None or first is None:
            raise ValueError(f"model {model.name!r}: build or call the model before exporting it")
        dtype = "int64" if type(first) is L.Embedding else "float32"
        x = _graph_input(g, "input", shape, dtype)
        for layer in model.layers:
            x = convert(g, layer, x, {})
            if isinstance(x, list):
                raise ValueError(f"layer {layer.name!r}: returns several tensors inside a Sequential model")
        return [x]
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError(f"model {model.name!r}: a subclassed model's call() is Python code, which ONNX cannot hold; "
                         "build it as a functional Model or a Sequential to export it")
    values = {}
    for t in graph.inputs:
        values[id(t)] = _graph_input(g, t._keras_history[0].name, t.shape, t.dtype)
    for node in graph.nodes:
        def value(a):
            if isinstance(a, KerasTensor):
                return values[id(a)]
            if isinstance(a, (list, tuple)):
                return [value(b) for b in a]
            return a
        args = value(node.args)
        kwargs = {k: value(v) for k, v in node.kwargs.items()}
        out = convert(g, node.layer, args, kwargs)
        for t, v in zip(flatten(node.outputs), flatten(out)):
            values[id(t)] = v
    return [values[id(t)] for t in graph.outputs]


def _graph_input(g: GraphBuilder, name: str, shape, dtype: str) -> Value:
    """A graph input with a dynamic batch axis, and a dynamic time axis for sequences (ids or (B, T, D))."""
    if dtype not in _ONNX_DTYPES:
        raise ValueError(f"input {name!r}: dtype {dtype} has no export; expected a float or int32 / int64 input")
    sequence = len(shape) >= 3 or (len(shape) == 2 and not dtype.startswith("float"))
    dims = tuple("batch" if k == 0 else "time" if k == 1 and sequence else s if s is not None else f"dim{k}"
                 for k, s in enumerate(shape))
    g.input(name, _ONNX_DTYPES[dtype], list(dims))
    return Value(name, dims, dtype="float32" if dtype.startswith("float") else dtype)


# -- one layer -------------------------------------------------------------------------------------------
def convert(g: GraphBuilder, layer, x, kwargs: dict):
    """Export one call of ``layer`` on ``x`` (a Value or a list of them); returns its output Value(s)."""
    kwargs = {k: v for k, v in kwargs.items() if k != "training"}  # inference is what is exported
    initial = kwargs.pop("initial_state", None)
    if kwargs:
        raise ValueError(f"layer {layer.name!r}: its call passes {', '.join(sorted(kwargs))}, which has no export")
    kind = type(layer)
    if initial is not None and kind not in _RNN_TYPES + (L.Bidirectional,):
        raise ValueError(f"layer {layer.name!r}: initial_state is only exported for recurrent layers")
    if kind in _RNN_TYPES:
        return _recurrent(g, layer, _one(layer, x), initial)
    if kind is L.Bidirectional:
        return _bidirectional(g, layer, _one(layer, x), initial)
    if kind in _MERGES or kind in (L.Average, L.Concatenate):
        return _merge(g, layer, x)
    x = _one(layer, x)
    if kind is InputLayer:
        return x
    if kind is L.TimeDistributed:
        inner = layer.layer
        if type(inner) not in (L.Dense, L.Dropout, Activation, SpatialDropout1D) or len(x.shape) != 3:
            raise ValueError(f"layer {layer.name!r}: TimeDistributed({type(inner).__name__}) has no export; "
                             "exportable: TimeDistributed of Dense, Dropout or Activation on (batch, time, features)")
        return convert(g, inner, x, {})
    if kind in (L.Dropout, SpatialDropout1D):
        return x
    if kind is Activation:
        return Value(g.activation(x.name, layer.activation.name, layer.name), x.shape, x.mask)
    if kind is L.Dense:
        return _dense(g, layer, x)
    if kind is L.Embedding:
        return _embedding(g, layer, x)
    if kind is L.Masking:
        return _masking(g, layer, x)
    raise ValueError(f"layer {layer.name!r}: {kind.__name__} has no ONNX export in lstmlab; exportable layers: "
                     "Embedding, Masking, Dense, Activation, Dropout, SpatialDropout1D, TimeDistributed(Dense), "
                     "LSTM, GRU, SimpleRNN, RNN(LSTMCell | PeepholeLSTMCell | GRUCell | SimpleRNNCell), "
                     "Bidirectional, Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate")


def _one(layer, x) -> Value:
    if isinstance(x, list):
        if len(x) != 1:
            raise ValueError(f"layer {layer.name!r}: expected one input, got {len(x)}")
        x = x[0]
    return x


def _dense(g, layer, x: Value) -> Value:
    y = g.op("MatMul", x.name, g.const(f"{layer.name}/kernel", layer.kernel.value), hint=layer.name)  # (..., U)
    if layer.bias is not None:
        y = g.op("Add", y, g.const(f"{layer.name}/bias", layer.bias.value), hint=layer.name)
    y = g.activation(y, layer.activation.name, layer.name)
    return Value(y, x.shape[:-1] + (layer.units,), x.mask)


def _embedding(g, layer, x: Value) -> Value:
    if x.dtype not in ("int64", "int32"):
        raise ValueError(f"layer {layer.name!r}: an Embedding needs an integer input (Input(dtype='int64')), got "
                         f"{x.dtype}")
    y = g.op("Gather", g.const(f"{layer.name}/embeddings", layer.embeddings.value), x.name, axis=0,
             hint=layer.name)  # (B, T, E)
    mask = None
    if layer.mask_zero:
        mask = g.op("Not", g.op("Equal", x.name, g.const("zero_id", 0, np.dtype(x.dtype))), hint=f"{layer.name}/mask")
    return Value(y, x.shape + (layer.output_dim,), mask)


def _masking(g, layer, x: Value) -> Value:
    """mask[b, t] = any feature != mask_value; padded steps are zeroed, as lstmlab's Masking does."""
    differs = g.op("Not", g.op("Equal", x.name, g.const(f"{layer.name}/mask_value", layer.mask_value)))
    keep = g.op("ReduceMax", g.op("Cast", differs, to=g.TP.FLOAT), axes=[-1], keepdims=1)  # (B, T, 1)
    mask = g.op("Cast", g.squeeze(keep, -1), to=g.TP.BOOL, hint=f"{layer.name}/mask")  # (B, T)
    return Value(g.op("Mul", x.name, keep, hint=layer.name), x.shape, mask)


def _merge(g, layer, xs) -> Value:
    xs = xs if isinstance(xs, list) else [xs]
    if any(v.mask is not None for v in xs):
        raise ValueError(f"layer {layer.name!r}: {type(layer).__name__} of masked inputs has no export (its mask "
                         "rules are not mapped to ONNX); merge before masking or drop the mask")
    names = [v.name for v in xs]
    kind = type(layer)
    if kind is L.Concatenate:
        axis = layer.axis % len(xs[0].shape)
        size = [v.shape[axis] for v in xs]
        shape = xs[0].shape[:axis] + ((sum(size) if all(isinstance(s, int) for s in size) else "dim"),) + \
            xs[0].shape[axis + 1:]
        return Value(g.op("Concat", *names, axis=axis, hint=layer.name), shape)
    if kind is L.Average:
        total = g.op("Sum", *names, hint=layer.name)
        return Value(g.op("Div", total, g.const("count", float(len(xs))), hint=layer.name), xs[0].shape)
    op = _MERGES[kind]
    y = names[0]
    if op in ("Sub", "Mul"):
        for other in names[1:]:
            y = g.op(op, y, other, hint=layer.name)
    else:
        y = g.op(op, *names, hint=layer.name)
    return Value(y, xs[0].shape)


# -- recurrent layers ------------------------------------------------------------------------------------
def _check_stateful(g, layer) -> None:
    if layer.stateful and g.stream is None:
        raise ValueError(f"layer {layer.name!r} is stateful: export with states=True, so that the graph takes and "
                         "returns its states (an ONNX graph keeps nothing between runs)")


def _check_sequence(layer, x: Value) -> None:
    if len(x.shape) != 3:
        raise ValueError(f"layer {layer.name!r}: expects (batch, time, features), got an input of rank {len(x.shape)}")


def _initial(g, rnn, given) -> list | None:
    """The initial state names (batch, H) of one recurrent layer: from the graph, from stream inputs, or None."""
    spec = operator_spec(rnn)
    if given is not None:
        return [v.name for v in given]
    if g.stream is None:
        return None
    names = []
    for s in spec["states"]:
        name = g.input(f"{rnn.name}/initial_{s}", g.TP.FLOAT, ["batch", spec["hidden"]])
        names.append(name)
    return names


def _stream_outputs(g, rnn, states: list) -> None:
    if g.stream is None:
        return
    spec = operator_spec(rnn)
    for s, value in zip(spec["states"], states):
        g.stream.append({"input": f"{rnn.name}/initial_{s}", "output": f"{rnn.name}/final_{s}", "value": value,
                         "size": spec["hidden"]})


def _recurrent(g, layer, x: Value, initial) -> Value | list:
    _check_stateful(g, layer)
    _check_sequence(layer, x)
    H = operator_spec(layer)["hidden"]
    init = _initial(g, layer, initial)
    [(y, states)] = run_operator(g, [layer], x, [init], want_sequence=layer.return_sequences)
    _stream_outputs(g, layer, states)
    if layer.return_sequences:  # a backward layer's outputs come in its own (reversed) order, as lstmlab's
        out = Value(g.reverse_time(y) if layer.go_backwards else y, x.shape[:2] + (H,), x.mask)
    else:  # the last step's output is h after the last valid step
        out = Value(states[0], (x.shape[0], H))
    if layer.return_state:
        return [out] + [Value(s, (x.shape[0], H)) for s in states]
    return out


def _bidirectional(g, layer, x: Value, initial) -> Value | list:
    fwd, bwd = layer.forward_layer, layer.backward_layer
    for inner in (fwd, bwd):
        _check_stateful(g, inner)
    _check_sequence(layer, x)
    n = len(operator_spec(fwd)["states"])
    given_f = given_b = None
    if initial is not None:
        given_f, given_b = initial[:n], initial[n:]
    inits = [_initial(g, fwd, given_f), _initial(g, bwd, given_b)]
    seq = layer.return_sequences
    if can_share_node(fwd, bwd):
        (yf, sf), (yb, sb) = run_operator(g, [fwd, bwd], x, inits, want_sequence=seq)
    else:  # two nodes: e.g. a custom backward_layer of another kind
        (yf, sf), = run_operator(g, [fwd], x, [inits[0]], want_sequence=seq)
        (yb, sb), = run_operator(g, [bwd], x, [inits[1]], want_sequence=seq)
        if seq:
            yf = g.reverse_time(yf) if fwd.go_backwards else yf
            yb = yb if bwd.go_backwards else g.reverse_time(yb)  # Bidirectional flips the backward layer back
    _stream_outputs(g, fwd, sf)
    _stream_outputs(g, bwd, sb)
    Hf, Hb = operator_spec(fwd)["hidden"], operator_spec(bwd)["hidden"]
    lead = x.shape[:2] if seq else x.shape[:1]
    a, b = (yf, yb) if seq else (sf[0], sb[0])
    mask = x.mask if seq else None
    mode = layer.merge_mode
    if mode == "concat":
        out = Value(g.op("Concat", a, b, axis=-1, hint=layer.name), lead + (Hf + Hb,), mask)
    elif mode is None:
        out = [Value(a, lead + (Hf,), mask), Value(b, lead + (Hb,), mask)]
    else:
        op = {"sum": "Add", "mul": "Mul", "ave": "Add"}[mode]
        y = g.op(op, a, b, hint=layer.name)
        if mode == "ave":
            y = g.op("Div", y, g.const("two", 2.0), hint=layer.name)
        out = Value(y, lead + (Hf,), mask)
    if layer.return_state:
        states = [Value(s, x.shape[:1] + (Hf,)) for s in sf] + [Value(s, x.shape[:1] + (Hb,)) for s in sb]
        return (out if isinstance(out, list) else [out]) + states
    return out


__all__ = ["export_onnx", "convert"]
