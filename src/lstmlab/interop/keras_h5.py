"""Keras 3's HDF5 weight layout (``model.weights.h5`` in a ``.keras`` archive, and ``.weights.h5`` files).

Keras walks the model and gives every object a group named by its class, not by its name::

    vars                                  (attribute name = the model's name; no datasets)
    layers/dense/vars/0, 1                kernel, bias          (the 2nd Dense is layers/dense_1)
    layers/lstm/cell/vars/0, 1, 2         kernel, recurrent_kernel, bias (the weights belong to the cell)
    layers/rnn/cell/cells/gru_cell/vars   a StackedRNNCells' cells, each named by class
    layers/bidirectional/forward_layer/cell/vars, .../backward_layer/cell/vars
    layers/time_distributed/layer/vars

``layers`` follows ``model.layers`` (a functional model's include its InputLayers; a Sequential's do
not), and inside a group the datasets ``0, 1, ...`` are the object's variables in the order it created
them, which is our order too (our layers keep Keras's weight layouts). In lstmlab an RNN layer owns its
cell's weights (``lstm/kernel``; ``rnn/cell_0/kernel`` in a stack); :func:`weight_groups` states where
each owner's weights go, from the Keras config alone, so that reading can check every shape before a
weight exists.

Reading follows hard links only (no soft or external links, no external or virtual datasets, as Keras's
own reader) and refuses datasets that declare far more bytes than they store.
"""
from __future__ import annotations

import math

import numpy as np

from ..io.errors import ModelFileError
from .keras_config import MODEL_CLASSES, snake

BOMB_FLOOR = 1 << 24  # bytes; above this a dataset must store at least 1/1000 of what it declares
MAX_EXPANSION = 1000
MAX_OPTIMIZER_VARS = 1 << 20  # iterations, learning rate, and at most three slots per weight
_CELL_LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _unique(name: str, used: dict) -> str:
    """Keras's ``_get_unique_name``: ``lstm``, ``lstm_1``, ``lstm_2`` ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def weight_groups(model_spec: dict) -> list[tuple]:
    """``(owner layer name or None, weight name prefix, group path, label)`` of every HDF5 group of a Keras
    model config. ``owner`` None marks a group Keras writes without variables (only its ``name`` label)."""
    out = [(None, "", "", model_spec["config"].get("name", "model"))]
    _model_groups(model_spec, "", out)
    return out


def _model_groups(spec: dict, path: str, out: list) -> None:
    used = {}
    for layer in spec["config"]["layers"]:
        if spec["class_name"] == "Sequential" and layer.get("class_name") == "InputLayer":
            continue  # a Sequential's model.layers leaves its InputLayer out
        name = _unique(snake(layer["class_name"]), used)
        _layer_groups(layer, f"{path}layers/{name}", out)


def _layer_groups(spec: dict, path: str, out: list) -> None:
    cls, config = spec["class_name"], spec["config"]
    name = config.get("name")
    if cls in MODEL_CLASSES:
        _model_groups(spec, f"{path}/", out)
    elif cls in _CELL_LAYERS or cls == "RNN":
        out.append((None, "", path, name))
        cell = config.get("cell") or {"class_name": f"{cls}Cell", "config": {"name": f"{snake(cls)}_cell"}}
        if cell.get("class_name") == "StackedRNNCells":
            out.append((None, "", f"{path}/cell", cell["config"].get("name")))
            used = {}
            for k, c in enumerate(cell["config"]["cells"]):
                group = f"{path}/cell/cells/{_unique(snake(c['class_name']), used)}"
                out.append((name, f"cell_{k}/", group, c["config"].get("name")))
        else:
            out.append((name, "", f"{path}/cell", cell["config"].get("name")))
    elif cls == "Bidirectional":
        out.append((None, "", path, name))
        inner = config["layer"]
        base = str(inner["config"].get("name", "")).removeprefix("forward_")
        for half in ("forward", "backward"):
            named = {"class_name": inner["class_name"], "config": {**inner["config"], "name": f"{half}_{base}"}}
            _layer_groups(named, f"{path}/{half}_layer", out)
    elif cls == "TimeDistributed":
        out.append((None, "", path, name))
        _layer_groups(config["layer"], f"{path}/layer", out)
    else:
        out.append((name, "", path, name))


def _vars(path: str) -> str:
    return f"{path}/vars" if path else "vars"


def placement(model, model_spec: dict) -> list[tuple]:
    """``(group path, weight)`` of every weight of ``model``, in the file's (Keras's) order."""
    by_owner: dict[str, list] = {}
    for w in model.weights:
        by_owner.setdefault(w.layer.name, []).append(w)
    placed, seen = [], set()
    for owner, prefix, path, _ in weight_groups(model_spec):
        if owner is None:
            continue
        for w in by_owner.get(owner, []):
            if w.name.startswith(prefix) and id(w) not in seen:
                placed.append((path, w))
                seen.add(id(w))
    missing = [w.path for w in model.weights if id(w) not in seen]
    if missing:
        raise ValueError(f"weight {missing[0]!r} has no place in Keras's weight layout for this model")
    return placed


def keras_trainable_order(model, model_spec: dict) -> list:
    """``model``'s trainable weights in the order of Keras's ``model.trainable_variables`` (the order of the
    optimizer's slots in a Keras file): layer by layer as ``model.layers``, each layer's in creation order."""
    trainable = {id(w) for w in model.trainable_weights}
    return [w for _, w in placement(model, model_spec) if id(w) in trainable]


def write_weights(h5, model, model_spec: dict) -> None:
    """Write ``model``'s weights into the open HDF5 file ``h5`` in Keras's layout for ``model_spec``."""
    placed = placement(model, model_spec)
    for owner, _, path, label in weight_groups(model_spec):
        h5.create_group(_vars(path)).attrs["name"] = str(label)
    counts: dict[str, int] = {}
    for path, w in placed:
        k = counts.get(path, 0)
        h5[f"{_vars(path)}/{k}"] = w.value
        counts[path] = k + 1


def write_optimizer(h5, name: str, values: list) -> None:
    """Keras's ``optimizer/vars/0, 1, ...`` (see :mod:`.keras_optimizer` for their order)."""
    group = h5.create_group("optimizer/vars")
    group.attrs["name"] = name
    for k, value in enumerate(values):
        group[str(k)] = value


class WeightReader:
    """Takes each weight from a Keras HDF5 file as our layers create it, checked first.

    ``source`` is the callback of :func:`lstmlab.layers.base.weights_from`: given the layer that owns a
    new weight, its name, and the shape the config implies, it finds the dataset, compares the declared
    shape and dtype, and only then reads it. :meth:`check_all_read` refuses datasets no weight claimed.
    """

    def __init__(self, h5, path: str, model_spec: dict, member: str = ""):
        self.h5, self.path, self.member = h5, path, member
        self.groups: dict[str, list] = {}
        for owner, prefix, group, _ in weight_groups(model_spec):
            if owner is not None:
                self.groups.setdefault(owner, []).append((prefix, group))
        self.taken: dict[str, int] = {}
        self.read: set[str] = set()

    def error(self, field: str, problem: str) -> ModelFileError:
        return ModelFileError(self.path, f"{self.member}{field}", problem)

    def dataset(self, path: str):
        """The dataset at ``path``, reached through hard links only, and not external or virtual."""
        import h5py
        node = self.h5
        parts = path.split("/")
        for k, part in enumerate(parts):
            if part not in node:
                raise self.error(path, "missing: the config implies this weight, the file does not hold it")
            link = node.get(part, getclass=True, getlink=True)
            if link is not h5py.HardLink:
                raise self.error(path, f"a {link.__name__}; lstmlab follows hard links only")
            node = node[part]
            want = h5py.Dataset if k == len(parts) - 1 else h5py.Group
            if not isinstance(node, want):
                raise self.error(path, f"expected a {want.__name__}, got a {type(node).__name__}")
        if node.external or node.is_virtual:
            raise self.error(path, "an external or virtual dataset (data outside this file) is not read")
        return node

    def source(self, owner, name: str, shape: tuple, dtype) -> np.ndarray:
        candidates = [(p, g) for p, g in self.groups.get(owner.name, []) if name.startswith(p)]
        if not candidates:
            raise self.error(f"layers ({owner.name})", f"the file has no weights for layer {owner.name!r}")
        _, group = max(candidates, key=lambda pg: len(pg[0]))
        k = self.taken.get(group, 0)
        self.taken[group] = k + 1
        return self.checked(f"{_vars(group)}/{k}", f"weight {owner.name}/{name}", shape, "f").astype(dtype)

    def checked(self, where: str, what: str, shape: tuple, kind: str) -> np.ndarray:
        """Dataset ``where``, its declared shape and dtype kind ("f" float, "i" integer) compared before it is
        read, its stored size compared with the declared one, and every value finite."""
        ds = self.dataset(where)
        if tuple(ds.shape) != tuple(shape):
            raise self.error(where, f"{what}: the config implies shape {tuple(shape)}, the file holds {ds.shape}")
        if ds.dtype.kind not in (("i", "u") if kind == "i" else ("f",)):
            expected = "integer" if kind == "i" else "floating-point"
            raise self.error(where, f"{what}: expected {expected} values, got {ds.dtype}")
        declared = math.prod(ds.shape) * ds.dtype.itemsize
        if declared > BOMB_FLOOR and declared > MAX_EXPANSION * ds.id.get_storage_size():
            raise self.error(where, f"{what}: declares {declared} bytes but stores {ds.id.get_storage_size()}; "
                                    "refusing a decompression bomb")
        value = np.asarray(ds[()]).reshape(shape)
        if kind == "f":
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                raise self.error(where, f"{what}: {bad} of {value.size} values are not finite (NaN or Inf)")
        self.read.add(where)
        return value

    # -- the optimizer's variables (optimizer/vars/0, 1, ...) ------------------------
    def optimizer_count(self) -> int:
        """How many datasets ``optimizer/vars`` holds (0 without one); only names ``0 .. n-1`` are accepted."""
        import h5py
        if "optimizer" not in self.h5:
            return 0
        group = self.dataset_group("optimizer/vars")
        if len(group) > MAX_OPTIMIZER_VARS:  # counted before any name is listed
            raise self.error("optimizer/vars", f"{len(group)} variables, more than the {MAX_OPTIMIZER_VARS} "
                                               "lstmlab reads")
        names = list(group.keys())
        if sorted(names) != sorted(str(k) for k in range(len(names))):
            odd = sorted(set(names) - {str(k) for k in range(len(names))})
            raise self.error(f"optimizer/vars/{odd[0]}", "not an optimizer variable (expected 0, 1, ...)")
        for name in names:
            if group.get(name, getclass=True, getlink=True) is not h5py.HardLink:
                raise self.error(f"optimizer/vars/{name}", "lstmlab follows hard links only")
        return len(names)

    def optimizer_var(self, k: int, shape: tuple, kind: str, what: str) -> np.ndarray:
        return self.checked(f"optimizer/vars/{k}", f"optimizer variable {k} ({what})", shape, kind)

    def dataset_group(self, path: str):
        """The group at ``path``, reached through hard links only."""
        import h5py
        node = self.h5
        for part in path.split("/"):
            if part not in node:
                raise self.error(path, "missing")
            if node.get(part, getclass=True, getlink=True) is not h5py.HardLink:
                raise self.error(path, "lstmlab follows hard links only")
            node = node[part]
            if not isinstance(node, h5py.Group):
                raise self.error(path, f"expected a Group, got a {type(node).__name__}")
        return node

    def check_all_read(self, tops: tuple = ("layers", "vars")) -> None:
        """Refuse datasets under ``tops`` that nothing read (``optimizer`` too when the optimizer was read)."""
        import h5py
        extra = []

        def visit(name, obj):
            top = name.split("/", 1)[0]
            if isinstance(obj, h5py.Dataset) and top in tops and name not in self.read:
                extra.append(name)

        self.h5.visititems(visit)
        if extra:
            raise self.error(sorted(extra)[0], "not a weight of the model the config describes")
