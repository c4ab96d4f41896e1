"""Recurrent layers as ONNX's ``LSTM``, ``GRU`` and ``RNN`` operators.

What maps to what (gate orders through :mod:`lstmlab.interop.layouts`):

==========================  =======================================================================
lstmlab                     ONNX
==========================  =======================================================================
LSTM / RNN(LSTMCell)        ``LSTM``, W = kernel^T and R = recurrent_kernel^T with gates i, o, f, c
RNN(PeepholeLSTMCell)       ``LSTM`` with ``P`` = peepholes in the order i, o, f
GRU(reset_after=True)       ``GRU``, ``linear_before_reset=1``, B = [input bias row, recurrent row]
GRU(reset_after=False)      ``GRU``, ``linear_before_reset=0``, B = [bias, zeros]
SimpleRNN                   ``RNN``
go_backwards                ``direction="reverse"``, the outputs put back in the layer's (reversed) order
Bidirectional               ``direction="bidirectional"`` (one node), merge modes by Concat/Add/Mul/Div
mask (trailing padding)     ``sequence_lens`` = valid steps per row, counted in the graph
==========================  =======================================================================

Masks. A Keras mask may mark any step; ONNX's ``sequence_lens`` only cuts a row's tail. The graph counts
each row's valid steps and checks that they come first; a row whose mask has a gap (e.g. an id 0 inside a
sentence under ``Embedding(mask_zero=True)``) gets NaN outputs and states, never a silently different
answer. Where ONNX leaves zeros past a row's end, lstmlab (like Keras) repeats the last valid output, unless
the layer has ``zero_output_for_mask`` (a Bidirectional's halves: zeros, as in Keras); and
a row with no valid step keeps its initial state where ONNX Runtime returns zeros: both are rebuilt with
``Where``.
"""
from __future__ import annotations

import numpy as np

from ..layers import GRUCell, LSTMCell, PeepholeLSTMCell, SimpleRNNCell
from ..layers.rnn import StackedRNNCells
from .layouts import GRU, LSTM, PEEPHOLE, reorder
from .onnx_graph import RECURRENT_ACTIVATIONS, GraphBuilder, Value

STATE_NAMES = {"LSTM": ("h", "c"), "GRU": ("h",), "RNN": ("h",)}


def operator_spec(layer) -> dict:
    """The ONNX operator, attributes and weights (one direction) of a recurrent layer, or a ValueError."""
    cell = layer.cell
    kind = type(cell)
    if kind is StackedRNNCells:
        raise ValueError(f"layer {layer.name!r}: RNN over a list of cells has no single ONNX operator; build it as "
                         "one recurrent layer per cell (return_sequences=True between them) to export it")
    if kind not in (LSTMCell, PeepholeLSTMCell, GRUCell, SimpleRNNCell):
        raise ValueError(f"layer {layer.name!r}: cell {kind.__name__} has no ONNX operator (ONNX's LSTM, GRU and RNN "
                         "cover LSTMCell, PeepholeLSTMCell, GRUCell and SimpleRNNCell); it cannot be exported")
    if kind is LSTMCell and cell.proj_size is not None:
        raise ValueError(f"layer {layer.name!r}: the projection LSTM (proj_size={cell.proj_size}) has no ONNX "
                         "operator; it cannot be exported")
    H = cell.units
    kernel, recurrent = cell.kernel.value, cell.recurrent_kernel.value  # (D, G*H), (H, G*H)
    bias = None if cell.bias is None else cell.bias.value
    attrs, extra = {}, {}
    if kind in (LSTMCell, PeepholeLSTMCell):
        op, order, acts = "LSTM", LSTM, [cell.recurrent_activation, cell.activation, cell.activation]
        if kind is PeepholeLSTMCell:  # rows p_i, p_f, p_o -> ONNX's i, o, f, one vector
            extra["P"] = reorder(cell.peephole.value, PEEPHOLE["keras"], PEEPHOLE["onnx"], axis=0).reshape(-1)
        b_in, b_rec = bias, None
    elif kind is GRUCell:
        op, order, acts = "GRU", GRU, [cell.recurrent_activation, cell.activation]
        attrs["linear_before_reset"] = int(cell.reset_after)
        b_in, b_rec = (bias[0], bias[1]) if (bias is not None and cell.reset_after) else (bias, None)
    else:
        op, order, acts = "RNN", {"keras": ("h",), "onnx": ("h",)}, [cell.activation]
        b_in, b_rec = bias, None
    G = len(order["keras"]) * H
    to_onnx = lambda w: reorder(w, order["keras"], order["onnx"], axis=-1)  # noqa: E731 - gate blocks, last axis
    names, alphas, betas = [], [], []
    for act in acts:
        if act.name not in RECURRENT_ACTIVATIONS:
            raise ValueError(f"layer {layer.name!r}: activation {act.name!r} has no ONNX recurrent counterpart; "
                             f"exportable: {', '.join(RECURRENT_ACTIVATIONS)}")
        onnx_name, ab = RECURRENT_ACTIVATIONS[act.name]
        names.append(onnx_name)
        if ab is not None:  # ONNX Runtime reads alpha / beta in order, only for the functions that take them
            alphas.append(ab[0])
            betas.append(ab[1])
    zeros = np.zeros(G, np.float32)
    weights = {
        "W": to_onnx(kernel).T,  # (G, D)
        "R": to_onnx(recurrent).T,  # (G, H)
        "B": np.concatenate([zeros if b_in is None else to_onnx(b_in), zeros if b_rec is None else to_onnx(b_rec)]),
        **extra,
    }
    return {"op": op, "hidden": H, "activations": names, "alpha": alphas, "beta": betas, "attrs": attrs,
            "weights": weights, "states": STATE_NAMES[op]}


def _same_operator(a: dict, b: dict) -> bool:
    keys = ("op", "hidden", "activations", "alpha", "beta", "attrs")
    return all(a[k] == b[k] for k in keys) and a["weights"].keys() == b["weights"].keys() and all(
        a["weights"][k].shape == b["weights"][k].shape for k in a["weights"])


class MaskInfo:
    """What a mask becomes in the graph: ``lens`` (batch,) int32 for ``sequence_lens``, ``valid`` (batch,
    time, 1) bool (the step is one of the first ``lens``), ``some`` (batch, 1) bool (lens > 0), and ``ok``
    (batch, 1) bool: the mask is exactly trailing padding, so ``sequence_lens`` says the same."""

    def __init__(self, g: GraphBuilder, mask: str):
        TP = g.TP
        counts = g.op("Cast", mask, to=TP.INT64, hint="mask/int")  # (B, T)
        lens64 = g.op("ReduceSum", counts, g.ints(1), keepdims=0, hint="mask/lens")  # (B,)
        self.lens = g.op("Cast", lens64, to=TP.INT32, hint="sequence_lens")  # (B,)
        T = g.op("Gather", g.op("Shape", mask), g.const("one", 1, np.int64), axis=0, hint="mask/time")  # ()
        steps = g.op("Range", g.const("zero", 0, np.int64), T, g.const("one", 1, np.int64), hint="mask/steps")
        prefix = g.op("Less", g.unsqueeze(steps, 0), g.unsqueeze(lens64, 1), hint="mask/prefix")  # (B, T)
        gaps = g.op("ReduceSum", g.op("Cast", g.op("Xor", prefix, mask), to=TP.INT64), g.ints(1), keepdims=1)
        self.ok = g.op("Equal", gaps, g.const("zero", [0], np.int64), hint="mask/trailing")  # (B, 1)
        self.valid = g.unsqueeze(prefix, 2)  # (B, T, 1)
        self.some = g.unsqueeze(g.op("Greater", lens64, g.const("zero", 0, np.int64)), 1)  # (B, 1)


def mask_info(g: GraphBuilder, mask: str) -> MaskInfo:
    cache = g.__dict__.setdefault("_mask_infos", {})
    if mask not in cache:
        cache[mask] = MaskInfo(g, mask)
    return cache[mask]


def run_operator(g: GraphBuilder, layers: list, x: Value, initial: list, want_sequence: bool) -> list:
    """One ONNX recurrent node for ``layers`` (one layer, or a Bidirectional's forward and backward layers).

    Parameters
    ----------
    x : Value, (batch, time, D)
    initial : list of (list of state names (batch, H)) or None, one per layer
    want_sequence : bool
        Whether the per-step outputs are needed (return_sequences).

    Returns
    -------
    list, one ``(y, states)`` per layer: ``y`` (batch, time, H) in *input* time order (or None), ``states``
    the final states (batch, H), as lstmlab computes them (mask rules applied, see the module docstring).
    """
    specs = [operator_spec(layer) for layer in layers]
    if len(layers) == 2:
        direction = "bidirectional"
    else:
        direction = "reverse" if layers[0].go_backwards else "forward"
    spec, prefix = specs[0], layers[0].name
    H, n_states = spec["hidden"], len(spec["states"])
    feeds = {k: g.const(f"{prefix}/{k}", np.stack([s["weights"][k] for s in specs]))  # (dirs, ...)
             for k in ("W", "R", "B", "P") if k in spec["weights"]}
    info = mask_info(g, x.mask) if x.mask is not None else None
    inits = [""] * n_states
    if any(s is not None for s in initial):
        for k in range(n_states):
            parts = [g.unsqueeze(s[k] if s is not None else _zeros_like_state(g, x, H), 0) for s in initial]
            inits[k] = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=0)  # (dirs, B, H)
    x_tm = g.op("Transpose", x.name, perm=[1, 0, 2], hint=f"{prefix}/time_major")  # (T, B, D)
    inputs = [x_tm, feeds["W"], feeds["R"], feeds["B"], info.lens if info else ""] + inits
    if "P" in feeds:
        inputs.append(feeds["P"])
    attrs = dict(hidden_size=H, direction=direction, activations=spec["activations"] * len(layers), **spec["attrs"])
    if spec["alpha"]:
        attrs.update(activation_alpha=spec["alpha"] * len(layers), activation_beta=spec["beta"] * len(layers))
    while inputs and inputs[-1] == "":
        inputs.pop()
    outs = g.op(spec["op"], *inputs, n_out=1 + n_states, hint=prefix, **attrs)  # Y (T, dirs, B, H), Y_h, Y_c
    nan = g.const("nan", np.nan) if info is not None else None
    results = []
    for d, layer in enumerate(layers):
        index = g.const("index", d, np.int64)
        states = [g.op("Gather", o, index, axis=0, hint=f"{layer.name}/final") for o in outs[1:]]  # (B, H)
        start = [None if initial[d] is None else initial[d][k] for k in range(n_states)]
        if info is not None:  # a row without a valid step keeps its initial state (ONNX Runtime gives zeros)
            states = [g.op("Where", info.some, s, s0 or g.const("zero_f", 0.0)) for s, s0 in zip(states, start)]
        y = None
        if want_sequence:
            y = g.op("Transpose", g.op("Gather", outs[0], index, axis=1), perm=[1, 0, 2], hint=f"{layer.name}/y")
            if info is not None and getattr(layer, "zero_output_for_mask", False):  # padded steps output 0
                y = g.op("Where", info.valid, y, g.const("zero_f", 0.0), hint=f"{layer.name}/y")  # (B, T, H)
            elif info is not None:  # past a row's end: the last valid output (forward) or the initial h (reverse)
                if direction == "reverse" or d == 1:
                    carry = g.const("zero_f", 0.0) if start[0] is None else g.unsqueeze(start[0], 1)  # (B, 1, H)
                else:
                    carry = g.unsqueeze(states[0], 1)  # (B, 1, H)
                y = g.op("Where", info.valid, y, carry, hint=f"{layer.name}/y")  # (B, T, H)
        if info is not None:  # a mask ONNX cannot express poisons its rows instead of answering wrongly
            states = [g.op("Where", info.ok, s, nan, hint=f"{layer.name}/checked") for s in states]
            if y is not None:
                y = g.op("Where", g.unsqueeze(info.ok, 2), y, nan, hint=f"{layer.name}/checked")
        results.append((y, states))
    return results


def _zeros_like_state(g: GraphBuilder, x: Value, H: int) -> str:
    """Zeros (batch, H) for the direction whose initial state the graph does not give."""
    batch = g.op("Slice", g.op("Shape", x.name), g.ints(0), g.ints(1))  # (1,)
    return g.op("ConstantOfShape", g.op("Concat", batch, g.ints(H), axis=0),
                value=g.onnx.numpy_helper.from_array(np.zeros(1, np.float32)))


def can_share_node(forward, backward) -> bool:
    """Whether a Bidirectional's two layers run as one ``direction="bidirectional"`` node."""
    if forward.go_backwards or not backward.go_backwards:
        return False
    return _same_operator(operator_spec(forward), operator_spec(backward))
