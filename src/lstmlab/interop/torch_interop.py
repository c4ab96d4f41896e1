"""PyTorch, both ways: :func:`from_torch` builds lstmlab layers from torch modules or state_dicts, :func:`to_torch`
builds the ``nn.Module`` that computes what an lstmlab layer or ``Sequential`` computes.

torch is imported only inside these functions (and a state_dict of NumPy arrays needs no torch at all).
The weight layouts and the two-bias rule are in :mod:`lstmlab.interop.torch_weights`.

Shapes: lstmlab is batch-first, ``(batch, time, features)``. What ``from_torch`` returns takes batch-first
input whatever the module's ``batch_first`` was: for a ``batch_first=False`` module, feed
``x.transpose(1, 0, 2)`` (and transpose the output sequence back). What ``to_torch`` returns is batch-first.

==========================================  ====================================================================
PyTorch                                     lstmlab (``from_torch``)
==========================================  ====================================================================
``nn.LSTM(D, H)``                           ``LSTM(H, return_sequences=True)``; ``proj_size=P`` -> ``proj_size=P``
``nn.GRU(D, H)``                            ``GRU(H, reset_after=True, return_sequences=True)``
``nn.RNN(D, H, nonlinearity=a)``            ``SimpleRNN(H, activation=a, return_sequences=True)``
``bidirectional=True``                      ``Bidirectional(layer)`` (merge_mode ``"concat"``, as PyTorch)
``num_layers=L > 1``                        ``Sequential`` of L such layers (``Dropout(dropout)`` between them)
``bias=False``                              ``use_bias=False``
``nn.Embedding(V, E)``                      ``Embedding(V, E)``
``nn.Linear(D, U)``                         ``Dense(U)``; ReLU / Tanh / Sigmoid / Softmax / ... -> ``Activation``
``nn.Sequential(...)``                      ``Sequential([...])``; an RNN inside it passes on its output sequence
==========================================  ====================================================================

With ``return_state=True`` a recurrent module returns ``[output, *states]`` as PyTorch's
``output, h_n`` / ``output, (h_n, c_n)`` do, states in lstmlab's order: for each layer, for each direction,
``h`` then (LSTM) ``c``, each ``(batch, H)``; so ``h_n[k]`` is ``states[k * n]`` with ``n`` states per direction
(a functional ``Model`` when ``num_layers > 1``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import torch_weights as tw

INSTALL = "pip install 'lstmlab[torch]'"


class MissingDependency(ImportError, ValueError):
    """An optional library is not installed (an ImportError and a ValueError, so either ``except`` catches it)."""


def _require_torch():
    try:
        import torch
    except ImportError as e:
        raise MissingDependency(f"torch: PyTorch is not installed, and lstmlab's PyTorch interop needs it: {INSTALL}") from e
    return torch


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _dtype_of(arrays, dtype) -> str:
    if dtype is not None:
        return str(np.dtype(dtype))
    return "float64" if any(a.dtype == np.float64 for a in arrays) else "float32"  # half precision widens


# -- from PyTorch ----------------------------------------------------------------------------------------------
_ARCHITECTURE = ("kind", "input_size", "hidden_size", "num_layers", "bidirectional", "proj_size", "bias",
                 "nonlinearity")


def from_torch(module_or_state_dict, *, prefix: str = "", return_state: bool = False, dtype=None, **architecture):
    """lstmlab layers (or a model) computing what a PyTorch module computes, with its weights.

    Parameters
    ----------
    module_or_state_dict : torch.nn.Module or mapping of str -> tensor / ndarray
        An ``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, ``nn.Embedding``, ``nn.Linear`` or an ``nn.Sequential`` of those
        (and of activations and ``nn.Dropout``); or the state_dict of one LSTM / GRU / RNN / Embedding / Linear.
    prefix : str
        With a state_dict: take only the keys starting with it (e.g. ``"encoder."``), stripped of it.
    return_state : bool
        Recurrent modules: also return the final states (see the module docstring for their order).
    dtype : "float32" or "float64", optional
        Of the new layers; by default the tensors' (float64 stays float64, other floats become float32).
    **architecture
        For a state_dict: ``kind`` ("lstm", "gru", "rnn", "embedding", "linear"), ``hidden_size``,
        ``num_layers``, ``bidirectional``, ``proj_size``, ``bias``, ``input_size``, and for ``nn.RNN`` the
        ``nonlinearity`` ("tanh" or "relu"), which a state_dict does not store. Everything else is read from
        the keys and shapes, and what is given must agree with them.

    Returns
    -------
    Layer, Sequential or Model
        Batch-first: inputs ``(batch, time, features)`` whatever the module's ``batch_first``.

    Notes
    -----
    ``nn.Embedding(padding_idx=k)`` converts (the lookup is the same), but lstmlab trains row k like any other,
    where PyTorch keeps its gradient zero; ``max_norm`` and ``scale_grad_by_freq`` are refused. An RNN's
    ``dropout`` becomes ``Dropout`` layers between its layers (the same in inference; other random draws in
    training).
    """
    unknown = sorted(set(architecture) - set(_ARCHITECTURE))
    if unknown:
        raise ValueError(f"{unknown[0]}: not an argument of from_torch; expected one of {', '.join(_ARCHITECTURE)}")
    obj = module_or_state_dict
    if hasattr(obj, "state_dict") and hasattr(obj, "named_children"):
        _require_torch()
        return _from_module(obj, return_state, dtype, architecture)
    if isinstance(obj, Mapping):
        if not isinstance(prefix, str):
            raise ValueError(f"prefix: expected a string, got {prefix!r}")
        params = {k[len(prefix):]: _numpy(v) for k, v in obj.items() if k.startswith(prefix)}
        if not params:
            raise ValueError(f"prefix: no key of the state_dict starts with {prefix!r} (keys: {sorted(obj)[:5]})")
        return _from_params(params, return_state, dtype, architecture)
    raise ValueError(f"module_or_state_dict: expected a torch.nn.Module or a state_dict (a mapping of names to "
                     f"tensors), got {type(obj).__name__}")


def _from_params(params: dict, return_state: bool, dtype, given: dict, dropout: float = 0.0, nested: bool = False):
    if any(tw.suffix(0, False) in k for k in params):  # weight_ih_l0 ...: a recurrent module
        spec = tw.describe_recurrent(params, **given)
        layers = _recurrent_layers(spec, params, _dtype_of(params.values(), dtype), return_state)
        return layers if nested else _stack(layers, spec, dropout, return_state)
    if return_state:
        raise ValueError("return_state: only recurrent modules (nn.LSTM, nn.GRU, nn.RNN) return states")
    kind = tw.describe_single(params, given.get("kind"))
    layer = _single_layer(kind, params, _dtype_of(params.values(), dtype))
    return [layer] if nested else layer


def _recurrent_layers(spec: dict, params: dict, dtype: str, return_state: bool) -> list:
    """One lstmlab layer (or Bidirectional) per PyTorch layer, built and holding its weights."""
    from ..layers import GRU, LSTM, Bidirectional, SimpleRNN

    kind, H, P = spec["kind"], spec["hidden_size"], spec["proj_size"]
    cls = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}[kind]
    options = dict(return_sequences=True, return_state=return_state, use_bias=spec["bias"], dtype=dtype)
    if kind == "lstm" and P:
        options["proj_size"] = P
    if kind == "gru":
        options["reset_after"] = True  # PyTorch's GRU: the reset gate multiplies (W_hn h + b_hn)
    if kind == "rnn":
        options["activation"] = spec["nonlinearity"]
    dirs = (False, True) if spec["bidirectional"] else (False,)
    layers, D = [], spec["input_size"]
    for k in range(spec["num_layers"]):
        layer = cls(H, **options)
        if spec["bidirectional"]:
            layer = Bidirectional(layer, merge_mode="concat")  # PyTorch concatenates [forward, backward]
        layer.build((None, None, D))
        layer.set_weights([w for reverse in dirs
                           for w in tw.recurrent_from_torch(params, kind, tw.suffix(k, reverse), spec["bias"],
                                                            P is not None)])
        layers.append(layer)
        D = (P or H) * len(dirs)  # the next layer reads both directions' outputs
    return layers


def _stack(layers: list, spec: dict, dropout: float, return_state: bool):
    """One layer as it is; several as a Sequential, or with states as a functional Model of all their states."""
    from ..layers import Dropout, Input
    from ..models import Model, Sequential

    if len(layers) == 1:
        return layers[0]
    if not return_state:
        return Sequential(_with_dropout(layers, dropout))
    x = inputs = Input((None, spec["input_size"]), dtype=layers[0].dtype.name)
    states = []
    for k, layer in enumerate(layers):
        if k and dropout:
            x = Dropout(dropout)(x)
        x, *s = layer(x)
        states += s
    return Model(inputs, [x] + states)


def _with_dropout(layers: list, dropout: float) -> list:
    """PyTorch's ``dropout`` acts on the outputs of every layer but the last: a Dropout layer between layers."""
    from ..layers import Dropout

    out = []
    for k, layer in enumerate(layers):
        if k and dropout:
            out.append(Dropout(dropout))
        out.append(layer)
    return out


def _single_layer(kind: str, params: dict, dtype: str):
    from ..layers import Dense, Embedding

    w = params["weight"]
    if kind == "embedding":
        layer = Embedding(w.shape[0], w.shape[1], dtype=dtype)  # weight (num_embeddings, embedding_dim)
        layer.build((None, None))
        layer.set_weights([w])
        return layer
    layer = Dense(w.shape[0], use_bias="bias" in params, dtype=dtype)  # weight (out_features, in_features)
    layer.build((None, w.shape[1]))
    layer.set_weights([w.T] + ([params["bias"]] if "bias" in params else []))  # kernel (in, out)
    return layer


def _activation_of(module) -> str | None:
    """The lstmlab activation an activation module computes (None when it is none of them)."""
    from .torch_plan import TORCH_ACTIVATIONS

    names = {cls: act for act, cls in TORCH_ACTIVATIONS.items() if act != "linear"}
    return names.get(type(module).__name__) if type(module).__module__.startswith("torch.nn") else None


def _from_module(m, return_state: bool, dtype, given: dict):
    from torch import nn

    from ..layers import Activation, Dropout
    from ..models import Sequential

    if isinstance(m, nn.RNNBase):
        mode = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}[m.mode]
        arch = dict(kind=mode, input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
                    bidirectional=m.bidirectional, proj_size=getattr(m, "proj_size", 0), bias=m.bias,
                    nonlinearity=getattr(m, "nonlinearity", None))
        for name, value in given.items():
            if value is not None and arch[name] != (value.lower() if name == "kind" else value):
                raise ValueError(f"{name}: got {value!r}, but the module is {m!r}")
        params = {k: _numpy(v) for k, v in m.state_dict().items()}
        return _from_params(params, return_state, dtype, arch, dropout=m.dropout)
    if return_state:
        raise ValueError(f"return_state: only recurrent modules (nn.LSTM, nn.GRU, nn.RNN) return states, got "
                         f"{type(m).__name__}")
    if isinstance(m, nn.Embedding):
        if m.max_norm is not None:
            raise ValueError(f"module: {m!r} renormalizes looked-up rows (max_norm={m.max_norm}); lstmlab's "
                             "Embedding has no max_norm, so nothing computes the same lookup")
        if m.scale_grad_by_freq:
            raise ValueError(f"module: {m!r} scales gradients by word frequency (scale_grad_by_freq=True); "
                             "lstmlab's Embedding does not, so training would differ")
        # padding_idx only freezes one row's gradient in PyTorch; the lookup is the same (that row trains here).
        return _single_layer("embedding", {"weight": _numpy(m.weight)}, _dtype_of([_numpy(m.weight)], dtype))
    if isinstance(m, nn.Linear):
        params = {k: _numpy(v) for k, v in m.state_dict().items()}
        return _single_layer("linear", params, _dtype_of(params.values(), dtype))
    if isinstance(m, nn.Sequential):
        layers = []
        for index, child in enumerate(m):
            try:
                if isinstance(child, nn.RNNBase):  # in a Sequential it passes on its output sequence
                    layers += _with_dropout(_from_module_layers(child, dtype), child.dropout)
                elif isinstance(child, nn.Sequential):
                    layers += list(_from_module(child, False, dtype, {}).layers)
                elif isinstance(child, (nn.Dropout, nn.Identity)):
                    if isinstance(child, nn.Dropout) and child.p:
                        layers.append(Dropout(child.p))
                elif _activation_of(child) is not None:
                    if isinstance(child, nn.Softmax) and child.dim not in (-1, None):
                        raise ValueError(f"module: {child!r} normalizes axis {child.dim}; lstmlab's softmax "
                                         "normalizes the last axis (dim=-1)")
                    layers.append(Activation(_activation_of(child)))
                else:
                    layers.append(_from_module(child, False, dtype, {}))
            except ValueError as e:
                raise ValueError(f"module[{index}] ({type(child).__name__}): {e}") from e
        return Sequential(layers)
    raise ValueError(f"module: expected an nn.LSTM, nn.GRU, nn.RNN, nn.Embedding, nn.Linear or an nn.Sequential of "
                     f"those, got {type(m).__name__}")


def _from_module_layers(m, dtype) -> list:
    """An RNN module's lstmlab layers (one per PyTorch layer)."""
    params = {k: _numpy(v) for k, v in m.state_dict().items()}
    arch = dict(nonlinearity=getattr(m, "nonlinearity", None))
    return _from_params(params, False, dtype, arch, nested=True)


# -- to PyTorch ------------------------------------------------------------------------------------------------
def to_torch(model_or_layer, *, state_dict_only: bool = False):
    """The ``nn.Module`` computing what an lstmlab layer or ``Sequential`` model computes (batch-first).

    Converts ``LSTM`` (also ``proj_size``), ``GRU(reset_after=True)``, ``SimpleRNN`` (tanh or relu), their
    ``RNN(cell)`` forms, ``Bidirectional`` of those (every merge_mode), ``Embedding``, ``Dense`` with its
    activation, ``Activation``, ``Dropout``, and a ``Sequential`` of them. A recurrent piece returns what the
    lstmlab layer returns (the last step unless ``return_sequences``, ``[output, *states]`` with ``return_state``)
    and takes ``initial_state`` as lstmlab does.

    Refused, with the reason: cells PyTorch has no module for (peephole, layer-norm, stacked cells),
    ``GRU(reset_after=False)``, other activations, masks (``mask_zero``, ``Masking``), ``stateful`` layers and
    dropout inside recurrent cells.

    Parameters
    ----------
    state_dict_only : bool
        Return ``(state_dict, module)``: the weights in PyTorch's names and layouts, and a freshly initialized
        module for ``module.load_state_dict(state_dict)``.
    """
    torch = _require_torch()
    from . import torch_modules

    named = torch_state_dict(model_or_layer)  # checks that everything converts before building anything
    module = _build_module(model_or_layer, torch_modules)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in named.items()}
    if state_dict_only:
        return state, module
    module.load_state_dict(state, strict=True)
    return module


def torch_state_dict(model_or_layer, values=None) -> dict:
    """``{PyTorch name: ndarray}`` of :func:`to_torch`'s module for ``values`` aligned with
    ``model_or_layer.weights`` (default: the weights). Given ``model.grads``, PyTorch's gradients (an LSTM's or
    RNN's ``bias_hh`` then shows the gradient of the one bias, which PyTorch's ``bias_hh`` also receives).
    Needs no torch."""
    layer = model_or_layer
    values = [w.value for w in layer.weights] if values is None else list(values)
    if len(values) != len(layer.weights):
        raise ValueError(f"values: expected {len(layer.weights)} arrays (aligned with the weights), got {len(values)}")
    from . import torch_plan

    return torch_plan.named_arrays(layer, values)


def _build_module(layer, tm):
    from . import torch_plan

    return torch_plan.build(layer, tm)
