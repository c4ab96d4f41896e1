"""Reading a model file as a stranger may have written it: every field checked before it is used.

The order matters for memory. :func:`lstmlab.io.load_file` has already checked every tensor
entry against the file's bytes, so the tensors together are no larger than the file. The model
is then built from its config with :func:`lstmlab.layers.base.weights_from`: at the one place a
weight is created, the shape the config implies is compared with the file's tensor of that name,
and the file's array is used, so no initializer runs and a config that implies a 6 GB weight is
refused before anything of that size exists. Nothing here repeats a layer's shape rules.

Every problem becomes one :class:`~lstmlab.io.ModelFileError` naming the file and the field.
"""
from __future__ import annotations

import re

import numpy as np

from ..io.errors import ModelFileError, about
from ..io.safetensors import parse_json
from ..layers import LAYERS
from ..layers._config import check_shape_argument
from ..layers.base import weights_from
from ..training.losses import LOSSES
from ..training.optimizers import OPTIMIZERS

MAX_DEPTH = 64  # JSON nesting in a metadata field; a real model config is under 10 deep
_INTEGER = re.compile(r"[0-9]{1,19}")
# Exceptions a constructor can raise for a value of the wrong type or range; all become ModelFileError.


class ModelFile:
    """The tensors and metadata of one model file, and the checked steps that turn them into a model."""

    def __init__(self, path: str, tensors: dict, meta: dict):
        self.path, self.tensors, self.meta = path, tensors, meta
        self.used: set[str] = set()

    def error(self, field, problem) -> ModelFileError:
        return ModelFileError(self.path, field, problem)

    def about(self, field: str):
        """Errors raised inside the block are about ``field`` of this file."""
        return about(self.path, field)

    # -- metadata -----------------------------------------------------------
    def json(self, key: str, kind: type, required: bool = True):
        """Metadata field ``key`` parsed as strict JSON of type ``kind`` (``None`` when optional and absent)."""
        if key not in self.meta:
            if required:
                raise self.error(key, "missing from the file's metadata")
            return None
        try:
            value = parse_json(self.meta[key], MAX_DEPTH)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if not isinstance(value, kind):
            raise self.error(key, f"expected a JSON {'object' if kind is dict else kind.__name__}, "
                                  f"got {type(value).__name__}")
        return value

    def integer(self, key: str) -> int:
        text = self.meta.get(key)
        if text is None:
            raise self.error(key, "missing from the file's metadata")
        if not _INTEGER.fullmatch(text) or int(text) >= 2**63:
            raise self.error(key, f"expected a non-negative integer below 2**63, got {text[:40]!r}")
        return int(text)

    # -- tensors ------------------------------------------------------------
    def tensor(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """The file's tensor ``name``, which must have exactly this shape and dtype and finite values."""
        dtype = np.dtype(dtype)
        arr = self.tensors.get(name)
        if arr is None:
            raise self.error(name, f"missing: the config implies a {dtype.name} tensor of shape {shape}")
        if arr.shape != tuple(shape):
            raise self.error(name, f"the config implies shape {tuple(shape)}, the file holds shape {arr.shape}")
        if arr.dtype != dtype:
            raise self.error(name, f"expected {dtype.name} (the layer's dtype), got {arr.dtype.name}")
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise self.error(name, f"{bad} of {arr.size} values are not finite (NaN or Inf)")
        if name in self.used:
            raise self.error(name, "claimed by two weights (two layers with the same name?)")
        self.used.add(name)
        return arr

    def _weight_from_file(self, layer, name, shape, dtype):
        return self.tensor(f"weights/{layer.name}/{name}", shape, dtype)

    def check_all_used(self, prefix: str, what: str) -> None:
        for name in self.tensors:
            if name.startswith(prefix) and name not in self.used:
                raise self.error(name, f"not {what} of the model the config describes")

    # -- model --------------------------------------------------------------
    def build(self, model_class):
        """The ``model_class`` model the config describes, its weights taken from the file (checked, never
        initialized)."""
        config = self.json("config", dict)
        if getattr(model_class, "__name__", "") != "Sequential":
            with self.about("config"), weights_from(self._weight_from_file):
                model = model_class.from_config(config)
            self.check_weight_order(model)
            self.check_all_used("weights/", "a weight")
            return model
        with self.about("config"):
            unknown = sorted(set(config) - {"name", "layers", "build_input_shape", "trainable"})
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}; expected name, layers, build_input_shape, trainable")
            if not isinstance(config.get("layers"), list):
                raise ValueError(f"layers: expected a list of layers, got {config.get('layers')!r:.80}")
            if config.get("name") is not None and not isinstance(config["name"], str):
                raise ValueError(f"name: expected a string, got {config['name']!r}")
            if not isinstance(config.get("trainable", True), bool):
                raise ValueError(f"trainable: expected true or false, got {config['trainable']!r}")
            shape = config.get("build_input_shape")
            if shape is not None:
                check_shape_argument("build_input_shape", shape)
        with weights_from(self._weight_from_file):
            model = model_class(name=config.get("name"), trainable=config.get("trainable", True))
            for k, spec in enumerate(config["layers"]):
                kind = spec.get("class_name") if isinstance(spec, dict) else None
                with self.about(f"config.layers[{k}]" + (f" ({kind})" if isinstance(kind, str) else "")):
                    model.add(LAYERS.deserialize(spec))
            if not model.built and shape is not None:
                with self.about("config.build_input_shape"):
                    model.build(tuple(shape))
        self.check_weight_order(model)
        self.check_all_used("weights/", "a weight")
        return model

    def check_weight_order(self, model) -> None:
        order = self.json("weight_order", list)
        paths = [w.path for w in model.weights]
        if order != paths:
            raise self.error("weight_order", f"the file lists {order!r:.200}, the config gives {paths!r:.200}")

    def restore_weights(self, model) -> None:
        """Copy the file's weights into an existing model (``load_weights``)."""
        self.check_weight_order(model)
        for w in model.weights:
            w.value[...] = self.tensor(f"weights/{w.path}", w.shape, w.value.dtype)
        self.check_all_used("weights/", "a weight")

    def restore_states(self, model, keep_batch: bool = True) -> None:
        """The carried states of stateful recurrent layers: ``states/<layer>/<k>``, shape (batch, units).

        With ``keep_batch`` a batch size the layer already fixes (from its config) must match the
        file's; without it (``load_weights`` into a model built for another batch) the file's wins.
        """
        for layer in model.layers:
            for sub in getattr(layer, "_inner", lambda: [layer])():
                names = [f"states/{sub.name}/{k}" for k in range(getattr(sub, "_n_states", 0))]
                present = [n for n in names if n in self.tensors]
                if not present:
                    continue
                if not getattr(sub, "stateful", False):
                    raise self.error(present[0], f"layer {sub.name!r} is not stateful; it carries no state")
                missing = [n for n in names if n not in self.tensors]
                if missing:
                    raise self.error(missing[0], f"missing: layer {sub.name!r} carries {len(names)} states")
                first = self.tensors[names[0]]
                batch = (getattr(sub, "_fixed_batch", None) if keep_batch else None) or (
                    first.shape[0] if first.ndim == 2 else None)
                sizes = sub.cell.state_size  # (h, c) widths; h is proj_size wide in a projection LSTM
                if not batch:
                    raise self.error(names[0], f"expected shape (batch, {sizes[0]}), got {first.shape}")
                sub.states = [self.tensor(n, (batch, size), sub.dtype).copy() for n, size in zip(names, sizes)]
                sub._fixed_batch = batch
        self.check_all_used("states/", "a state")

    def compile(self, model) -> None:
        """Compile as saved: optimizer (with its slots and step count), loss and metrics."""
        cc = self.json("compile", dict)
        with self.about("compile"):
            missing = sorted({"optimizer", "loss", "metrics"} - set(cc))
            if missing:
                raise ValueError(f"missing key {missing[0]!r}")
        with self.about("compile.optimizer"):
            optimizer = OPTIMIZERS.get(cc["optimizer"], argument="")
        with self.about("compile.loss"):
            if isinstance(cc["loss"], list):
                loss = [None if l is None else LOSSES.get(l, argument="") for l in cc["loss"]]
            else:
                loss = None if cc["loss"] is None else LOSSES.get(cc["loss"], argument="")
        weights = cc.get("loss_weights")
        with self.about("compile.loss_weights"):
            if weights is not None and (not isinstance(weights, list) or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)):
                raise ValueError(f"expected a list of numbers, got {weights!r:.80}")
        with self.about("compile.metrics"):
            if not isinstance(cc["metrics"], list):
                raise ValueError(f"expected a list, got {cc['metrics']!r:.80}")
        with self.about("compile"):
            model.compile(optimizer=optimizer, loss=loss, metrics=cc["metrics"] or None,
                          loss_weights=weights if weights and len(weights) > 1 else None)
        model._train_seed = self.integer("train_seed")
        opt = model.optimizer
        opt.iterations = self.integer("optimizer_iterations")
        trainable = {w.path: w for w in model.trainable_weights}
        for name in self.tensors:
            if not name.startswith("optimizer/"):
                continue
            _, slot, path = (name.split("/", 2) + ["", ""])[:3]
            if slot not in opt.slot_names or path not in trainable:
                raise self.error(name, f"not a slot of the {opt.name} optimizer ({', '.join(opt.slot_names)}) "
                                       "for a trainable weight")
            w = trainable[path]
            opt.slots[slot][path] = self.tensor(name, w.shape, w.value.dtype)

    def extra(self) -> dict:
        return self.json("extra", dict, required=False) or {}
