"""What :func:`lstmlab.interop.to_torch` makes of each lstmlab layer: the check that PyTorch can compute it, the
PyTorch names of its weights (NumPy, no torch), and its ``nn.Module`` piece (:mod:`.torch_modules`).

A layer that PyTorch has no module for is refused here with the reason, never converted approximately.
"""
from __future__ import annotations

from . import torch_weights as tw

# lstmlab activation -> the torch.nn class computing it (Softmax over the last axis); read both ways.
TORCH_ACTIVATIONS = {"linear": "Identity", "relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid",
                     "softsign": "Softsign", "hard_sigmoid": "Hardsigmoid", "softmax": "Softmax"}


def _refuse(layer, why: str):
    raise ValueError(f"to_torch: layer {layer.name!r} ({type(layer).__name__}) has no PyTorch equivalent: {why}")


def _one_direction(rnn) -> dict:
    """The nn.LSTM / nn.GRU / nn.RNN options of one recurrent layer, or a ValueError saying why there are none."""
    from ..layers import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells

    cell = rnn.cell
    if isinstance(cell, StackedRNNCells):
        _refuse(rnn, "a StackedRNNCells; convert a Sequential of one recurrent layer per cell instead")
    kinds = {LSTMCell: "lstm", GRUCell: "gru", SimpleRNNCell: "rnn"}
    if type(cell) not in kinds:
        extra = (" (nn.LSTM has no peephole connections; ONNX's LSTM has them, as its input P)"
                 if type(cell).__name__ == "PeepholeLSTMCell" else "")
        _refuse(rnn, f"its cell is a {type(cell).__name__}; PyTorch has modules for LSTMCell, GRUCell and "
                     f"SimpleRNNCell only{extra}")
    kind = kinds[type(cell)]
    if not rnn.built:
        raise ValueError(f"to_torch: layer {rnn.name!r} is not built; call it once or give it an input_shape so "
                         "its input size is known")
    if rnn.stateful:
        _refuse(rnn, "stateful=True carries state between calls, a PyTorch module does not; pass the states "
                     "as initial_state instead")
    if cell.dropout or cell.recurrent_dropout:
        _refuse(rnn, f"dropout={cell.dropout}, recurrent_dropout={cell.recurrent_dropout}: nn.{kind.upper()} has no "
                     "per-sequence input or recurrent dropout (its inference is the same: copy the weights into "
                     "a layer built with dropout=0 and recurrent_dropout=0)")
    if kind == "gru" and not cell.reset_after:
        _refuse(rnn, "GRU(reset_after=False) applies the reset gate before the recurrent product; nn.GRU applies "
                     "it after (reset_after=True), and the two compute different functions")
    if kind == "rnn":
        if cell.activation.name not in ("tanh", "relu"):
            _refuse(rnn, f"activation {cell.activation.name!r}; nn.RNN's nonlinearity is 'tanh' or 'relu'")
    elif (cell.activation.name, cell.recurrent_activation.name) != ("tanh", "sigmoid"):
        _refuse(rnn, f"activation {cell.activation.name!r}, recurrent_activation {cell.recurrent_activation.name!r}; "
                     f"nn.{kind.upper()} computes tanh and sigmoid")
    return {"kind": kind, "units": cell.units, "input_size": cell.kernel.shape[0], "use_bias": cell.use_bias,
            "proj_size": getattr(cell, "proj_size", None), "nonlinearity": cell.activation.name,
            "return_sequences": rnn.return_sequences, "return_state": rnn.return_state,
            "go_backwards": rnn.go_backwards}


def recurrent_spec(layer) -> dict:
    """``_one_direction``'s options plus ``bidirectional`` and ``merge_mode``."""
    from ..layers import Bidirectional

    if not isinstance(layer, Bidirectional):
        return {**_one_direction(layer), "bidirectional": False, "merge_mode": "concat", "split": None}
    fwd, bwd = _one_direction(layer.forward_layer), _one_direction(layer.backward_layer)
    if fwd["go_backwards"] or not bwd["go_backwards"]:
        _refuse(layer, "its forward layer reads backwards; nn's bidirectional modules read forward then backward")
    if {**fwd, "go_backwards": True} != bwd:
        _refuse(layer, "its backward_layer differs from its forward layer; a bidirectional nn module has one "
                       f"configuration for both directions (forward {fwd}, backward {bwd})")
    return {**fwd, "bidirectional": True, "merge_mode": layer.merge_mode,
            "split": len(layer.forward_layer.weights)}


def _recurrent_arrays(spec: dict, values: list) -> dict:
    parts = [values] if spec["split"] is None else [values[: spec["split"]], values[spec["split"]:]]
    out = {}
    for reverse, part in zip((False, True), parts):
        for k, v in tw.recurrent_to_torch(part, spec["kind"], tw.suffix(0, reverse), spec["use_bias"],
                                          spec["proj_size"] is not None).items():
            out["rnn." + k] = v
    return out


def _kind(layer) -> str:
    """Which piece converts ``layer``, or a ValueError."""
    from ..layers import RNN, Activation, Bidirectional, Dense, Dropout, Embedding, Masking
    from ..models import Model, Sequential

    if isinstance(layer, Sequential):
        return "sequential"
    if isinstance(layer, Model):
        raise ValueError(f"to_torch: model {layer.name!r} is a functional or subclassed Model; to_torch converts "
                         "layers and Sequential models (convert its layers one by one with to_torch(layer))")
    if isinstance(layer, (RNN, Bidirectional)):
        return "recurrent"
    if isinstance(layer, Embedding):
        if layer.mask_zero:
            _refuse(layer, "mask_zero=True makes a mask the recurrent layers skip padded steps by; PyTorch's "
                           "modules take no masks (they take packed sequences)")
        return "embedding"
    if isinstance(layer, Masking):
        _refuse(layer, "PyTorch's recurrent modules take no masks (they take packed sequences)")
    if isinstance(layer, (Dense, Activation)):
        if layer.activation.name not in TORCH_ACTIVATIONS:
            _refuse(layer, f"activation {layer.activation.name!r}; to_torch knows {', '.join(TORCH_ACTIVATIONS)}")
        return "dense" if isinstance(layer, Dense) else "activation"
    if type(layer) is Dropout:
        if layer.noise_shape is not None:
            _refuse(layer, f"noise_shape={layer.noise_shape}; nn.Dropout drops single values")
        return "dropout"
    _refuse(layer, "to_torch converts LSTM, GRU, SimpleRNN, RNN of their cells, Bidirectional, Embedding, Dense, "
                   "Activation, Dropout and Sequential models of them")


def named_arrays(layer, values: list) -> dict:
    """``{PyTorch name: ndarray}`` of the piece of ``layer`` for ``values`` aligned with its weights."""
    kind = _kind(layer)
    if kind in ("embedding", "dense") and not layer.built:
        raise ValueError(f"to_torch: layer {layer.name!r} is not built; call it once so its weights exist")
    if kind == "sequential":
        out, k0 = {}, 0
        for index, sub in enumerate(layer.layers):
            n = len(sub.weights)
            out.update({f"layers.{index}.{k}": v for k, v in named_arrays(sub, values[k0:k0 + n]).items()})
            k0 += n
        return out
    if kind == "recurrent":
        return _recurrent_arrays(recurrent_spec(layer), values)
    if kind == "embedding":
        return {"embedding.weight": values[0]}  # (input_dim, output_dim), the same layout
    if kind == "dense":
        out = {"linear.weight": values[0].T}  # kernel (in, out) -> weight (out, in)
        if layer.use_bias:
            out["linear.bias"] = values[1]
        return out
    return {}


def build(layer, tm):
    """The freshly initialized ``nn.Module`` piece of ``layer`` (``tm`` is :mod:`.torch_modules`)."""
    import torch
    from torch import nn

    kind = _kind(layer)
    dtype = getattr(torch, layer.dtype.name) if hasattr(layer, "dtype") else torch.float32
    if kind == "sequential":
        return tm.Sequential([build(sub, tm) for sub in layer.layers])
    if kind == "recurrent":
        s = recurrent_spec(layer)
        common = dict(input_size=s["input_size"], hidden_size=s["units"], num_layers=1, bias=s["use_bias"],
                      batch_first=True, bidirectional=s["bidirectional"])
        if s["kind"] == "lstm":
            rnn = nn.LSTM(**common, proj_size=s["proj_size"] or 0)
        elif s["kind"] == "gru":
            rnn = nn.GRU(**common)
        else:
            rnn = nn.RNN(**common, nonlinearity=s["nonlinearity"])
        return tm.Recurrent(rnn.to(dtype), s["return_sequences"], s["return_state"], s["go_backwards"],
                            s["merge_mode"])
    if kind == "embedding":
        return tm.Embedding(nn.Embedding(layer.input_dim, layer.output_dim).to(dtype))
    if kind == "dense":
        linear = nn.Linear(layer.kernel.shape[0], layer.units, bias=layer.use_bias).to(dtype)
        return tm.Dense(linear, tm.activation(layer.activation.name))
    if kind == "activation":
        return tm.activation(layer.activation.name)
    return nn.Dropout(layer.rate)
