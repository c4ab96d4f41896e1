"""PyTorch's parameter names and layouts <-> lstmlab's weights, in NumPy (torch is not needed here).

One direction of one layer of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` holds, with ``G`` gates (4, 3, 1),
hidden size ``H``, projection ``P`` and the suffix ``_l{k}`` (``_l{k}_reverse`` for the backward direction)::

    weight_ih (G*H, D)    weight_hh (G*H, P or H)    bias_ih (G*H,)    bias_hh (G*H,)    weight_hr (P, H)

lstmlab's layer (Keras's layout, :mod:`lstmlab.interop.layouts`) holds their transposes, gate blocks along the
last axis::

    kernel (D, G*H)    recurrent_kernel (P or H, G*H)    bias    projection_kernel (H, P)

The two biases: an LSTM or a plain RNN adds both everywhere, so ours is their sum (and going back,
``bias_ih = bias``, ``bias_hh = 0``). A GRU's ``bias_hh`` n-part sits inside the reset gate's product
(``r * (W_hn h + b_hn)``), so it cannot be folded: our ``GRU(reset_after=True)`` keeps both, as the rows of
``bias (2, 3*units)``.
"""
from __future__ import annotations

import re

import numpy as np

from . import layouts

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
_ORDERS = {"lstm": layouts.LSTM, "gru": layouts.GRU}  # a plain RNN has one block: nothing to reorder
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def suffix(layer: int, reverse: bool) -> str:
    return f"_l{layer}" + ("_reverse" if reverse else "")


def _rows_to_keras(w, kind: str) -> np.ndarray:
    """PyTorch's gate blocks (along axis 0) in Keras's gate order."""
    return w if kind == "rnn" else layouts.reorder(w, _ORDERS[kind]["torch"], _ORDERS[kind]["keras"], axis=0)


def _columns_to_torch(w, kind: str) -> np.ndarray:
    """Keras's gate blocks (along the last axis) in PyTorch's gate order."""
    return w if kind == "rnn" else layouts.reorder(w, _ORDERS[kind]["keras"], _ORDERS[kind]["torch"], axis=-1)


def recurrent_from_torch(params: dict, kind: str, sfx: str, use_bias: bool, projected: bool) -> list[np.ndarray]:
    """Our weights ``[kernel, recurrent_kernel, (bias), (projection_kernel)]`` of one direction of one layer."""
    out = [_rows_to_keras(params["weight_ih" + sfx], kind).T,  # (G*H, D) -> (D, G*H)
           _rows_to_keras(params["weight_hh" + sfx], kind).T]  # (G*H, P or H) -> (P or H, G*H)
    if use_bias:
        b_ih = _rows_to_keras(params["bias_ih" + sfx], kind)  # (G*H,)
        b_hh = _rows_to_keras(params["bias_hh" + sfx], kind)
        out.append(np.stack([b_ih, b_hh]) if kind == "gru" else b_ih + b_hh)  # GRU: (2, 3H)
    if projected:
        out.append(params["weight_hr" + sfx].T)  # (P, H) -> (H, P)
    return [np.ascontiguousarray(w) for w in out]


def recurrent_to_torch(values: list, kind: str, sfx: str, use_bias: bool, projected: bool) -> dict:
    """PyTorch's named arrays of one direction from ours (``values`` aligned with the layer's weights).

    Also maps gradients: given our gradients it gives PyTorch's, except that PyTorch's ``bias_hh`` of an
    LSTM / RNN then has the gradient of ``bias_ih`` (the same number, both biases are added), not zero.
    """
    out = {"weight_ih" + sfx: _columns_to_torch(values[0], kind).T,  # (D, G*H) -> (G*H, D)
           "weight_hh" + sfx: _columns_to_torch(values[1], kind).T}
    if use_bias:
        b = values[2]
        if kind == "gru":
            out["bias_ih" + sfx], out["bias_hh" + sfx] = _columns_to_torch(b[0], kind), _columns_to_torch(b[1], kind)
        else:
            out["bias_ih" + sfx], out["bias_hh" + sfx] = _columns_to_torch(b, kind), np.zeros_like(b)
    if projected:
        out["weight_hr" + sfx] = values[-1].T  # (H, P) -> (P, H)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def _expect(given: dict, name: str, inferred, key: str, shape) -> None:
    if given.get(name) is not None and given[name] != inferred:
        raise ValueError(f"{name}: got {given[name]!r}, but the state_dict's {key!r} of shape {tuple(shape)} "
                         f"means {name}={inferred!r}")


def describe_recurrent(params: dict, **given) -> dict:
    """The architecture of an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` state_dict, inferred from its keys and shapes.

    ``given`` (kind, hidden_size, num_layers, bidirectional, proj_size, bias, nonlinearity, input_size) are
    checked against what the arrays say; a mismatch or a missing key raises ValueError naming the key. The
    one thing a state_dict cannot say is an ``nn.RNN``'s nonlinearity: it must be given.
    """
    for key in params:
        if not _KEY.match(key):
            raise ValueError(f"state_dict: key {key!r} is not a parameter of nn.LSTM, nn.GRU or nn.RNN "
                             "(weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_hr_l0, *_reverse); "
                             "for a submodule of a bigger state_dict pass prefix=")
    if "weight_hh_l0" not in params:
        raise ValueError("state_dict: no key 'weight_hh_l0'; expected the state_dict of an nn.LSTM, nn.GRU or nn.RNN")
    whh = params["weight_hh_l0"]
    projected = "weight_hr_l0" in params
    if projected:
        P, H = params["weight_hr_l0"].shape
    else:
        P, H = None, whh.shape[1]
    rows = whh.shape[0]
    kinds = {g * H: k for k, g in GATES.items()}
    if rows not in kinds or (projected and kinds[rows] != "lstm"):
        raise ValueError(f"state_dict: 'weight_hh_l0' has shape {tuple(whh.shape)}: expected 4, 3 or 1 times "
                         f"hidden_size={H} rows (an LSTM, a GRU or an RNN)")
    kind = kinds[rows]
    _expect({**given, "kind": (given.get("kind") or "").lower() or None}, "kind", kind, "weight_hh_l0", whh.shape)
    _expect(given, "hidden_size", H, "weight_hr_l0" if projected else "weight_hh_l0", whh.shape)
    _expect(given, "proj_size", P or 0, "weight_hr_l0" if projected else "weight_hh_l0",
            params["weight_hr_l0"].shape if projected else whh.shape)
    layers = sorted({int(_KEY.match(k).group(2)) for k in params})
    L = len(layers)
    if layers != list(range(L)):
        raise ValueError(f"state_dict: layers {layers} are not numbered 0..{L - 1}")
    _expect(given, "num_layers", L, f"weight_hh_l{L - 1}", params[f"weight_hh_l{L - 1}"].shape)
    bidirectional = "weight_hh_l0_reverse" in params
    _expect(given, "bidirectional", bidirectional, "weight_hh_l0_reverse" if bidirectional else "weight_hh_l0",
            params["weight_hh_l0_reverse" if bidirectional else "weight_hh_l0"].shape)
    use_bias = "bias_ih_l0" in params
    _expect(given, "bias", use_bias, "bias_ih_l0" if use_bias else "weight_hh_l0",
            params["bias_ih_l0" if use_bias else "weight_hh_l0"].shape)
    if "weight_ih_l0" not in params:
        raise ValueError("state_dict: missing key 'weight_ih_l0'")
    D = params["weight_ih_l0"].shape[1]
    _expect(given, "input_size", D, "weight_ih_l0", params["weight_ih_l0"].shape)
    nonlinearity = given.get("nonlinearity")
    if kind == "rnn" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: the state_dict ('weight_hh_l0' of shape {tuple(whh.shape)}) is an nn.RNN, "
                         f"whose nonlinearity is not stored in it; pass nonlinearity='tanh' or 'relu', got "
                         f"{nonlinearity!r}")
    dirs = 2 if bidirectional else 1
    for layer in range(L):  # every key present, with the shape the architecture implies
        d_in = D if layer == 0 else (P or H) * dirs
        for reverse in (False, True)[:dirs]:
            sfx = suffix(layer, reverse)
            want = {"weight_ih": (rows, d_in), "weight_hh": (rows, P or H)}
            if use_bias:
                want.update(bias_ih=(rows,), bias_hh=(rows,))
            if projected:
                want["weight_hr"] = (P, H)
            for name, shape in want.items():
                if name + sfx not in params:
                    raise ValueError(f"state_dict: missing key {name + sfx!r} (a {kind.upper()} of {L} layer(s), "
                                     f"{'bidirectional' if bidirectional else 'one direction'})")
                if tuple(params[name + sfx].shape) != shape:
                    raise ValueError(f"state_dict: {name + sfx!r} has shape {tuple(params[name + sfx].shape)}, "
                                     f"expected {shape}")
    if len(params) != (2 + 2 * use_bias + projected) * dirs * L:
        extra = sorted(set(params) - {n + suffix(l, r) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                      "weight_hr") for l in range(L) for r in (False, True)[:dirs]})
        raise ValueError(f"state_dict: unexpected key {extra[0]!r} for this architecture "
                         f"(bias={use_bias}, bidirectional={bidirectional}, proj_size={P or 0})")
    return {"kind": kind, "input_size": D, "hidden_size": H, "proj_size": P, "num_layers": L,
            "bidirectional": bidirectional, "bias": use_bias, "nonlinearity": nonlinearity if kind == "rnn" else None}


def describe_single(params: dict, kind: str | None) -> str:
    """``"embedding"`` or ``"linear"`` for a state_dict of ``weight`` (and ``bias``), refusing what is ambiguous."""
    keys = set(params)
    if keys not in ({"weight"}, {"weight", "bias"}):
        raise ValueError(f"state_dict: keys {sorted(keys)} are not those of an nn.LSTM, nn.GRU, nn.RNN, "
                         "nn.Embedding or nn.Linear; for a submodule of a bigger state_dict pass prefix=")
    w = params["weight"]
    if np.ndim(w) != 2:
        raise ValueError(f"state_dict: 'weight' has shape {tuple(np.shape(w))}, expected 2 axes")
    kind = None if kind is None else kind.lower()
    if "bias" in keys:
        if kind not in (None, "linear"):
            raise ValueError(f"kind: got {kind!r}, but the state_dict has a 'bias', so it is an nn.Linear")
        if tuple(np.shape(params["bias"])) != (w.shape[0],):
            raise ValueError(f"state_dict: 'bias' has shape {tuple(np.shape(params['bias']))}, expected "
                             f"({w.shape[0]},) for 'weight' of shape {tuple(w.shape)}")
        return "linear"
    if kind not in ("embedding", "linear"):
        raise ValueError(f"kind: a state_dict holding only 'weight' of shape {tuple(w.shape)} is an nn.Embedding "
                         f"or an nn.Linear(bias=False); pass kind='embedding' or kind='linear', got {kind!r}")
    return kind
