"""Model files: one safetensors file holding weights, optimizer state and JSON config.

Tensors
    ``weights/<layer>/<weight>``          every weight, in model order
    ``optimizer/<slot>/<layer>/<weight>`` optimizer slots (moments, accumulators)
    ``states/<layer>/<k>``                carried state of stateful layers
Metadata (strings)
    ``format`` = ``lstmlab.model``, ``format_version``, ``config`` (the model's
    layers), ``compile`` (loss, metrics, optimizer config), ``optimizer_iterations``,
    ``train_seed``, ``weight_order``, and anything the caller adds under ``extra``
    (a text model's vocabulary, a training run's progress).

No pickle: the file is JSON plus raw numbers, so loading it cannot run code.
Writes are atomic (a temporary file renamed over the target).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..io.safetensors import CorruptFileError, load_file, save_file

FORMAT = "lstmlab.model"
FORMAT_VERSION = "1"


def model_to_tensors(model, include_optimizer: bool = True) -> tuple[dict, dict]:
    tensors = {f"weights/{w.path}": w.value for w in model.weights}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.get_config()),
        "weight_order": json.dumps([w.path for w in model.weights]),
    }
    for layer in model.layers:
        for sub in getattr(layer, "_inner", lambda: [layer])():
            for k, s in enumerate(getattr(sub, "states", None) or []):
                tensors[f"states/{sub.name}/{k}"] = s
    if include_optimizer and model.compiled:
        meta["compile"] = json.dumps(model._compile_config())
        meta["train_seed"] = str(model._train_seed)
        opt = model.optimizer
        meta["optimizer_iterations"] = str(opt.iterations)
        for slot, arrays in opt.slots.items():
            for path, arr in arrays.items():
                tensors[f"optimizer/{slot}/{path}"] = arr
    return tensors, meta


def save_model(model, path, include_optimizer: bool = True, extra: dict | None = None) -> None:
    tensors, meta = model_to_tensors(model, include_optimizer)
    if extra:
        meta["extra"] = json.dumps(extra)
    save_file(tensors, path, meta)


def read_model_file(path):
    """Tensors and metadata of a model file, with a clear error for anything that is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"path: no model file at {path!r}")
    try:
        tensors, meta = load_file(path)
    except CorruptFileError as exc:
        raise ValueError(f"path: {exc}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"path: {path!r} is a safetensors file but not an lstmlab model (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"path: {path!r} has model format version {meta.get('format_version')!r}; "
                         f"this lstmlab reads version {FORMAT_VERSION}")
    return tensors, meta


def restore_into(model, tensors: dict, meta: dict, path: str) -> None:
    order = json.loads(meta["weight_order"])
    paths = [w.path for w in model.weights]
    if order != paths:
        raise ValueError(f"path: {path!r} holds weights {order}, the model has {paths}")
    for w in model.weights:
        value = tensors.get(f"weights/{w.path}")
        if value is None or value.shape != w.shape:
            raise ValueError(f"path: {path!r} is missing weight {w.path!r} of shape {w.shape}")
        w.value[...] = value
    for layer in model.layers:
        for sub in getattr(layer, "_inner", lambda: [layer])():
            states = [tensors[f"states/{sub.name}/{k}"] for k in range(2) if f"states/{sub.name}/{k}" in tensors]
            if states:
                sub.states = [s.astype(sub.dtype) for s in states]
                sub._fixed_batch = states[0].shape[0]


def load_model(path, compile: bool = True):
    """Rebuild a model saved with ``model.save(path)``: layers, weights and (with ``compile``) optimizer state."""
    from .sequential import Sequential

    path = os.fspath(path)
    tensors, meta = read_model_file(path)
    try:
        model = Sequential.from_config(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"path: {path!r} has a corrupted model config ({exc})") from None
    restore_into(model, tensors, meta, path)
    if compile and "compile" in meta:
        cc = json.loads(meta["compile"])
        model.compile(optimizer=cc["optimizer"], loss=cc["loss"], metrics=cc["metrics"])
        model._train_seed = int(meta["train_seed"])
        opt = model.optimizer
        opt.iterations = int(meta["optimizer_iterations"])
        for name, arr in tensors.items():
            if name.startswith("optimizer/"):
                _, slot, wpath = name.split("/", 2)
                opt.slots.setdefault(slot, {})[wpath] = np.array(arr)
    model.extra = json.loads(meta["extra"]) if "extra" in meta else {}
    return model
