"""Configs across the border: an lstmlab model's config <-> the ``config.json`` of a Keras 3 archive.

Keras 3 writes every object as ``{"module", "class_name", "config", "registered_name"}``: layers
(``keras.layers``), initializers, regularizers and dtype policies (``DTypePolicy``); activations as plain
names. A functional model lists its layers in the order Keras's ``model.layers`` has them, each with its
``inbound_nodes`` (tensors named by ``keras_history = [layer, node, tensor]``); a Sequential starts with
its ``InputLayer``. Our configs use the same class and argument names, so the conversion is small and
happens in one place.

Reading never imports or runs anything a file names: ``module`` and ``registered_name`` are only compared
with Keras's own values, a class is looked up in :data:`KERAS_LAYERS` (then in lstmlab's registry),
``Lambda`` and every class outside that table are refused, and the arguments go through our layers'
checked ``from_config``. Keras arguments lstmlab has no use for (``kernel_constraint``, ...) pass only
with their default value; any other value is refused rather than dropped.
"""
from __future__ import annotations

import re

from ..layers import LAYERS
from ..layers.input_layer import InputLayer
from ..layers.symbolic import KerasTensor, flatten, map_structure
from ..registry import accepted_arguments

KERAS_LAYERS = frozenset((
    "InputLayer", "Dense", "Embedding", "Dropout", "Masking", "LSTM", "GRU", "SimpleRNN", "RNN", "LSTMCell",
    "GRUCell", "SimpleRNNCell", "StackedRNNCells", "Bidirectional", "TimeDistributed", "Conv1D", "MaxPooling1D",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten", "Reshape", "RepeatVector", "Activation",
    "SpatialDropout1D", "Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract",
    "LayerNormalization", "BatchNormalization", "Attention", "AdditiveAttention"))
MODEL_CLASSES = frozenset(("Sequential", "Functional", "Model"))
# Our initializer names <-> Keras's classes; Keras's Zeros and Ones take no seed.
INITIALIZERS = {"zeros": "Zeros", "ones": "Ones", "random_uniform": "RandomUniform", "random_normal": "RandomNormal",
                "glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal", "orthogonal": "Orthogonal"}
_INITIALIZER_OF = {k: v for v, k in INITIALIZERS.items()}
REGULARIZERS = ("L1L2", "L1", "L2")
# Keras arguments lstmlab has no use for, with the value that means "unused".
KERAS_ONLY = {"activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
              "bias_constraint": None, "embeddings_constraint": None,
              "quantization_config": None, "ragged": False, "lora_rank": None, "lora_alpha": None,
              "input_axes": None, "output_axes": None, "use_cudnn": "auto"}
_KERAS_MODULES = ("keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.models",
                  "keras.optimizers", "keras.optimizers.schedules", "keras.losses", "keras.metrics")
_LAYER_KEYS = ("cell", "layer", "backward_layer")


def snake(class_name: str) -> str:
    """Keras's ``naming.to_snake_case``: ``Conv1D`` -> ``conv1d``, ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_object(module: str, class_name: str, config: dict) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def dtype_policy(name: str) -> dict:
    return _keras_object("keras", "DTypePolicy", {"name": name})


# -- lstmlab -> Keras ---------------------------------------------------------------
def layer_to_keras(spec: dict) -> dict:
    """Our ``{"class_name", "config"}`` of a layer as Keras 3 writes it; a layer Keras lacks is refused."""
    cls, config = spec["class_name"], dict(spec["config"])
    name = config.get("name")
    if cls in MODEL_CLASSES:
        raise ValueError(f"layer {name!r}: a model nested in a model is not written to .keras files yet; "
                         "save it as .safetensors")
    if cls not in KERAS_LAYERS:
        raise ValueError(f"layer {name!r}: {cls} has no Keras 3 equivalent, so a .keras file cannot hold it; "
                         "save the model as .safetensors (lstmlab's own format)")
    if config.get("proj_size") is not None:
        raise ValueError(f"layer {name!r}: proj_size={config['proj_size']} (a projection LSTM) has no Keras 3 "
                         "equivalent; save the model as .safetensors")
    config.pop("batch_input_shape", None)  # Keras 3 states input shapes with an InputLayer
    if cls == "SpatialDropout1D" and config.get("trainable", True):
        config.pop("trainable", None)  # Keras's SpatialDropout1D takes no trainable argument
    config.pop("proj_size", None)
    for key in ("projection_initializer", "projection_regularizer"):
        config.pop(key, None)
    for key, value in list(config.items()):
        if key == "dtype" and cls != "InputLayer":
            config[key] = dtype_policy(value)
        elif key.endswith("_initializer") and isinstance(value, dict):
            config[key] = _initializer_to_keras(value)
        elif key.endswith("_regularizer") and isinstance(value, dict):
            config[key] = _keras_object("keras.regularizers", "L1L2", dict(value["config"]))
        elif key in _LAYER_KEYS and isinstance(value, dict) or key == "cells":
            try:
                config[key] = [layer_to_keras(c) for c in value] if key == "cells" else layer_to_keras(value)
            except ValueError as exc:  # name the outer layer too: the user knows that one
                raise ValueError(f"layer {name!r}: {exc}") from None
    if cls == "InputLayer":
        config.setdefault("ragged", False)
        config.setdefault("optional", False)
    return _keras_object("keras.layers", cls, config)


def bidirectional_to_keras(layer, spec: dict) -> dict:
    """Keras writes both halves of a Bidirectional under their own names (``forward_x``, ``backward_x``)."""
    out = layer_to_keras(spec)
    out["config"]["layer"]["config"]["name"] = layer.forward_layer.name
    out["config"]["backward_layer"] = layer_to_keras({"class_name": type(layer.backward_layer).__name__,
                                                      "config": layer.backward_layer.get_config()})
    return out


def _initializer_to_keras(spec: dict) -> dict:
    name, config = spec["class_name"], dict(spec.get("config") or {})
    keras_name = INITIALIZERS.get(name) or (name if name in _INITIALIZER_OF else None)
    if keras_name is None:
        raise ValueError(f"initializer {name!r} has no Keras 3 equivalent")
    if keras_name in ("Zeros", "Ones"):
        config = {}
    return _keras_object("keras.initializers", keras_name, config)


# -- Keras -> lstmlab ---------------------------------------------------------------
def check_object(spec, where: str, classes, what: str) -> tuple[str, dict]:
    """``(class_name, config)`` of a Keras object after checking that it names one of ``classes``."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a Keras object {{class_name, config}}, got {type(spec).__name__}")
    cls = spec.get("class_name")
    module = spec.get("module")
    if cls == "Lambda":
        raise ValueError(f"{where}: a Lambda layer holds Python code from the file, which lstmlab never runs "
                         "(Keras refuses it too in safe_mode); rebuild that step from layers")
    if module is not None and (not isinstance(module, str) or not (module in _KERAS_MODULES
                                                                    or module.startswith("keras.src."))):
        raise ValueError(f"{where}: module {module!r}: lstmlab reads only Keras's own classes (module keras...) "
                         "and never imports a module a file names")
    registered = spec.get("registered_name")
    if registered is not None and registered != cls:
        raise ValueError(f"{where}: registered_name {registered!r}: a custom (registered) class holds code "
                         f"lstmlab cannot run; lstmlab reads Keras's built-in {what}s only")
    if not isinstance(cls, str) or cls not in classes:
        raise ValueError(f"{where}: unknown {what} class {cls!r}; lstmlab reads these Keras {what}s: "
                         f"{', '.join(sorted(classes))}")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"{where}: config: expected an object, got {type(config).__name__}")
    return cls, config


def dtype_from_keras(value, where: str) -> str:
    if isinstance(value, dict):
        _, config = check_object(value, where, ("DTypePolicy", "FloatDTypePolicy"), "dtype policy")
        value = config.get("name")
    if value not in ("float32", "float64"):
        raise ValueError(f"{where}: expected the dtype policy float32 or float64, got {value!r}")
    return value


def _initializer_from_keras(value, where: str):
    if isinstance(value, str):
        return value  # a plain name: our registry checks it
    cls, config = check_object(value, where, set(_INITIALIZER_OF), "initializer")
    config = _drop_keras_only(config, where, set())
    return {"class_name": _INITIALIZER_OF[cls], "config": config}


def _regularizer_from_keras(value, where: str):
    if value is None or isinstance(value, str):
        return value
    cls, config = check_object(value, where, REGULARIZERS, "regularizer")
    unknown = sorted(set(config) - {"l1", "l2"})
    if unknown:
        raise ValueError(f"{where}: {unknown[0]}: not an argument of {cls}")
    return {"class_name": "L1L2", "config": {"l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}}


def _drop_keras_only(config: dict, where: str, accepted: set) -> dict:
    """``config`` without Keras-only arguments at their "unused" value; another value is refused."""
    out = {}
    for key, value in config.items():
        if key in KERAS_ONLY and key not in accepted:
            if value != KERAS_ONLY[key]:
                raise ValueError(f"{where}: {key}={value!r}: lstmlab has no {key}; only {KERAS_ONLY[key]!r} "
                                 "(unused) can be read")
            continue
        out[key] = value
    return out


def _accepted(cls: str) -> set:
    """The argument names our class ``cls`` takes (a recurrent layer's include its cell's)."""
    klass = LAYERS.lookup(cls)
    names = accepted_arguments(klass)[0]
    if getattr(klass, "cell_class", None) is not None:
        names |= accepted_arguments(klass.cell_class)[0]
    return names


def layer_from_keras(spec, where: str) -> dict:
    """Our ``{"class_name", "config"}`` of a Keras layer object, every name and argument checked."""
    cls, config = check_object(spec, where, KERAS_LAYERS | MODEL_CLASSES, "layer")
    if cls in MODEL_CLASSES:
        raise ValueError(f"{where}: a model nested in a model is not read from .keras files yet")
    config = _drop_keras_only(config, where, _accepted(cls))
    if cls == "Bidirectional":
        _strip_forced_zero_output(config)
    for key, value in list(config.items()):
        here = f"{where}.{key}"
        if key == "dtype" and cls != "InputLayer":
            config[key] = dtype_from_keras(value, here)
        elif key.endswith("_initializer"):
            config[key] = _initializer_from_keras(value, here)
        elif key.endswith("_regularizer"):
            config[key] = _regularizer_from_keras(value, here)
        elif key in ("cell", "layer"):
            config[key] = layer_from_keras(value, here)
        elif key == "cells":
            if not isinstance(value, list):
                raise ValueError(f"{here}: expected a list of cells, got {type(value).__name__}")
            config[key] = [layer_from_keras(c, f"{here}[{k}]") for k, c in enumerate(value)]
    if cls == "Bidirectional":
        _bidirectional_from_keras(config, where)
    return {"class_name": cls, "config": config}


def _strip_forced_zero_output(config: dict) -> None:
    """Keras's Bidirectional sets ``zero_output_for_mask=True`` on both halves itself (whatever the file
    says), so the flag in its halves' configs says nothing about the file's model."""
    for key in ("layer", "backward_layer"):
        inner = config.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            config[key] = {**inner, "config": {k: v for k, v in inner["config"].items()
                                               if k != "zero_output_for_mask"}}


def _bidirectional_from_keras(config: dict, where: str) -> None:
    """Our Bidirectional derives its backward half from the forward one: a file's ``backward_layer`` must be
    exactly that derived half (Keras writes it so), and the forward name loses its ``forward_`` prefix."""
    inner = config.get("layer")
    if not isinstance(inner, dict):
        raise ValueError(f"{where}.layer: expected a layer object")
    forward = dict(inner["config"])
    base = str(forward.get("name", "")).removeprefix("forward_")
    forward["name"] = base
    inner["config"] = forward
    backward = config.pop("backward_layer", None)
    if backward is None:
        return
    back = layer_from_keras(backward, f"{where}.backward_layer")
    derived = {**forward, "name": f"backward_{base}", "go_backwards": not forward.get("go_backwards", False)}
    if back["class_name"] != inner["class_name"] or back["config"] != derived:
        raise ValueError(f"{where}.backward_layer: lstmlab's Bidirectional runs a copy of the forward layer "
                         "backwards; this file's backward layer differs from that copy")


def structure_to_keras(struct, ref):
    """Keras's ``input_layers`` / ``output_layers``: one reference, a list of them, or a dict of them."""
    if isinstance(struct, dict):
        return {k: ref(t) for k, t in struct.items()}
    if isinstance(struct, (list, tuple)):
        return [ref(t) for t in struct]
    return ref(struct)


def structure_from_keras(value, where: str) -> tuple[list, object]:
    """``(flat list of references, our structure tag)`` of Keras's ``input_layers`` / ``output_layers``."""
    def is_ref(v):
        return isinstance(v, list) and len(v) == 3 and isinstance(v[0], str)

    if is_ref(value):
        return [value], "one"
    if isinstance(value, list) and all(is_ref(v) for v in value) and value:
        return list(value), "list"
    if isinstance(value, dict) and value and all(is_ref(v) for v in value.values()):
        return list(value.values()), {"dict": list(value)}
    raise ValueError(f"{where}: expected a tensor reference [layer, node, tensor], or a list or dict of them, "
                     f"got {value!r:.120}")


# -- models -------------------------------------------------------------------------
def _layer_spec(layer) -> dict:
    spec = LAYERS.serialize(layer)
    if type(layer).__name__ == "Bidirectional":
        return bidirectional_to_keras(layer, spec)
    return layer_to_keras(spec)


def model_to_keras(model) -> tuple[dict, list]:
    """``(config.json object, layers in Keras's model.layers order)`` of a Sequential or functional model.

    The order matters beyond looks: Keras names each layer's weights in the HDF5 file by its class and its
    rank among the layers of that class in ``model.layers`` (``layers/lstm``, ``layers/lstm_1``).
    """
    if model._graph is None and type(model).__name__ != "Sequential":
        raise ValueError(f"model {model.name!r}: a subclassed model's call() is Python code, which a .keras file "
                         "cannot hold; build it as a functional model, or save its weights (.weights.h5)")
    if type(model).__name__ == "Sequential":
        shape = model._declared_input_shape
        if shape is None:
            raise ValueError(f"model {model.name!r}: its input shape is unknown (call it once, or start it with "
                             "Input(shape)) and a .keras file states it")
        shape = list(shape)
        inp = layer_to_keras({"class_name": "InputLayer", "config": {
            "batch_shape": shape, "dtype": model.layers[0].dtype.name, "sparse": False,
            "name": getattr(model, "_input_name", None) or "input_layer"}})
        config = {"name": model.name, "trainable": model.trainable, "dtype": dtype_policy(model.layers[0].dtype.name),
                  "layers": [inp] + [_layer_spec(l) for l in model.layers], "build_input_shape": shape}
        return ({"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None,
                 "build_config": {"input_shape": shape}}, list(model.layers))
    graph = model._graph
    in_graph = {id(n) for n in graph._node_set()}

    def encode(a):
        if isinstance(a, KerasTensor):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(a.shape), "dtype": a.dtype, "keras_history": graph.history_ref(a)}}
        return a

    order = keras_order(graph)
    layers = []
    for layer in order:
        spec = _layer_spec(layer)
        nodes = [] if isinstance(layer, InputLayer) else [n for n in layer._inbound_nodes if id(n) in in_graph]
        spec["name"] = layer.name
        spec["inbound_nodes"] = [{"args": [map_structure(encode, n.args)], "kwargs": map_structure(encode, n.kwargs)}
                                 for n in nodes]
        layers.append(spec)
    config = {"name": model.name, "trainable": model.trainable, "layers": layers,
              "input_layers": structure_to_keras(graph.inputs_struct, graph.history_ref),
              "output_layers": structure_to_keras(graph.outputs_struct, graph.history_ref)}
    return ({"module": "keras.src.models.functional", "class_name": "Functional", "config": config,
             "registered_name": "Functional", "build_config": {"input_shape": None}}, order)


def _node_inputs(node) -> list:
    """A node's input tensors in Keras's order: the positional arguments, then the keyword ones by name."""
    kwargs = [node.kwargs[k] for k in sorted(node.kwargs)]
    return [a for a in flatten(node.args) + flatten(kwargs) if isinstance(a, KerasTensor)]


def keras_order(graph) -> list:
    """The graph's layers in the order of Keras 3's ``Functional.layers`` (``ops.function.map_graph``):
    by decreasing depth from the outputs, ties by first visit of a depth-first walk from the outputs."""
    finished, nodes, first_visit = set(), [], {}
    layer_of = {}
    for out in graph.outputs:
        stack = [(out, False)]
        while stack:  # the recursive walk of Keras's _build_map, with an explicit stack
            tensor, expanded = stack.pop()
            layer, index, _ = tensor._keras_history
            node = layer._inbound_nodes[index]
            if expanded:
                finished.add(id(node))
                nodes.append(node)
                continue
            if id(node) in finished:
                continue
            first_visit.setdefault(id(layer), len(first_visit))
            layer_of[id(layer)] = layer
            stack.append((tensor, True))
            if not isinstance(layer, InputLayer):
                stack.extend((t, False) for t in reversed(_node_inputs(node)))
    node_depth, layer_depth = {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for t in _node_inputs(node):
            parent = t._keras_history[0]._inbound_nodes[t._keras_history[1]]
            if id(parent) in finished:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in graph.inputs:  # an input no output reads still belongs to the model
        layer = t._keras_history[0]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)], first_visit[id(layer)], layer_of[id(layer)] = 0, -1, layer
    ranked = sorted(layer_depth, key=lambda i: (-layer_depth[i], first_visit[i]))
    return [layer_of[i] for i in ranked]


def model_from_keras(spec) -> tuple[str, dict]:
    """``(our model class name, our config)`` of a Keras model object, every layer checked."""
    cls, config = check_object(spec, "config", MODEL_CLASSES, "model")
    allowed = {"name", "trainable", "dtype", "layers"} | (
        {"build_input_shape"} if cls == "Sequential" else {"input_layers", "output_layers"})
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"config.config: unknown key {unknown[0]!r} for a Keras {cls}")
    if "dtype" in config:
        dtype_from_keras(config["dtype"], "config.config.dtype")
    name, trainable = config.get("name"), config.get("trainable", True)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"config.config.name: expected a string, got {name!r:.80}")
    if not isinstance(trainable, bool):
        raise ValueError(f"config.config.trainable: expected true or false, got {trainable!r:.80}")
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"config.config.layers: expected a list of layers, got {type(layers).__name__}")

    def where(k, s):
        named = s.get("config", {}).get("name") if isinstance(s, dict) and isinstance(s.get("config"), dict) else None
        return f"config.layers[{k}]" + (f" ({named!r})" if isinstance(named, str) else "")

    ours = [layer_from_keras(s, where(k, s)) for k, s in enumerate(layers)]
    if cls == "Sequential":
        return "Sequential", {"name": name, "trainable": trainable, "layers": ours,
                              "build_input_shape": config.get("build_input_shape")}
    for k, (s, mine) in enumerate(zip(layers, ours)):
        if not isinstance(s.get("name", mine["config"].get("name")), str):
            raise ValueError(f"{where(k, s)}: a layer of a functional model needs a name")
        mine["name"] = s.get("name", mine["config"].get("name"))
        mine["inbound_nodes"] = s.get("inbound_nodes", [])
    ins, in_struct = structure_from_keras(config.get("input_layers"), "config.config.input_layers")
    outs, out_struct = structure_from_keras(config.get("output_layers"), "config.config.output_layers")
    return "Model", {"name": name, "trainable": trainable, "layers": ours, "input_layers": ins,
                     "output_layers": outs, "input_structure": in_struct, "output_structure": out_struct}
