"""A functional model's graph: which layer calls lead from its inputs to its outputs, in what order, and
how the graph is written to (and rebuilt from) a config.

The config follows Keras 3's functional layout: ``layers`` (each with ``inbound_nodes`` whose ``args`` name
their tensors by ``keras_history = [layer name, node index, tensor index]``), ``input_layers`` and
``output_layers``. Node indices count the calls of a layer *within this model*.
"""
from __future__ import annotations

from ..layers import LAYERS
from ..layers.input_layer import InputLayer
from ..layers.symbolic import KerasTensor, Node, flatten, map_structure

MAX_NODES = 100_000  # a config from a file may not describe a graph larger than this


class Graph:
    """The nodes between ``inputs`` and ``outputs`` (KerasTensors), in an order where each node's inputs come
    before it."""

    def __init__(self, inputs, outputs):
        self.inputs_struct, self.outputs_struct = inputs, outputs
        self.inputs, self.outputs = flatten(inputs), flatten(outputs)
        for argument, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not tensors:
                raise ValueError(f"{argument}: expected at least one tensor from Input() or a layer, got none")
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise ValueError(f"{argument}: expected tensors from Input() or a layer call, got "
                                     f"{type(t).__name__}")
        for t in self.inputs:
            if not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"inputs: {t.name!r} is not an Input(); a model's inputs must come from Input()")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("inputs: the same Input() is listed twice")
        self.nodes = self._order()
        self.layers = [t._keras_history[0] for t in self.inputs]
        for node in self.nodes:
            if node.layer not in self.layers:
                self.layers.append(node.layer)

    def _order(self) -> list[Node]:
        """Depth-first from the outputs: every node after the nodes it reads from (iterative: no recursion limit)."""
        input_ids = {id(t) for t in self.inputs}
        order, done, on_path = [], set(), set()
        stack = [(t, False) for t in reversed(self.outputs)]
        while stack:
            tensor, expanded = stack.pop()
            layer, index, _ = tensor._keras_history
            node = layer._inbound_nodes[index]
            if id(node) in done:
                continue
            if expanded:
                on_path.discard(id(node))
                done.add(id(node))
                if not isinstance(layer, InputLayer):
                    order.append(node)
                continue
            if isinstance(layer, InputLayer) and id(tensor) not in input_ids:
                raise ValueError(f"outputs: the graph is disconnected: it reads Input {layer.name!r}, which is not "
                                 "among the model's inputs")
            if id(node) in on_path:
                raise ValueError(f"outputs: the graph has a cycle through layer {layer.name!r}")
            on_path.add(id(node))
            stack.append((tensor, True))
            for parent in reversed(node.input_tensors):
                stack.append((parent, False))
        return order

    def sequential_like(self) -> bool:
        """One input, one output, and each node reads exactly the previous node's single output (Keras's test for
        the three-column summary)."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        previous = self.inputs[0]
        for node in self.nodes:
            ins = node.input_tensors
            if len(ins) != 1 or ins[0] is not previous or isinstance(node.outputs, list):
                return False
            previous = node.outputs
        return True

    def node_index(self, node) -> int:
        """The index of ``node`` among the calls of its layer that belong to this graph."""
        mine = [n for n in node.layer._inbound_nodes if n in self._node_set()]
        return mine.index(node)

    def _node_set(self) -> list:
        inputs = [t._keras_history[0]._inbound_nodes[0] for t in self.inputs]
        return inputs + self.nodes

    def history_ref(self, tensor) -> list:
        layer, index, k = tensor._keras_history
        return [layer.name, self.node_index(layer._inbound_nodes[index]), k]

    # -- config -----------------------------------------------------------------
    def get_config(self) -> dict:
        def encode(a):
            if isinstance(a, KerasTensor):
                return {"class_name": "__keras_tensor__",
                        "config": {"shape": list(a.shape), "dtype": a.dtype, "keras_history": self.history_ref(a)}}
            return a

        layers = []
        for layer in self.layers:
            spec = LAYERS.serialize(layer)
            spec["name"] = layer.name
            spec["inbound_nodes"] = [] if isinstance(layer, InputLayer) else [
                {"args": [map_structure(encode, n.args)], "kwargs": map_structure(encode, n.kwargs)}
                for n in self.nodes if n.layer is layer]
            layers.append(spec)
        return {"layers": layers,
                "input_layers": [self.history_ref(t) for t in self.inputs],
                "output_layers": [self.history_ref(t) for t in self.outputs],
                "input_structure": _shape_of(self.inputs_struct), "output_structure": _shape_of(self.outputs_struct)}


def _shape_of(struct):
    """Whether the model's inputs / outputs were one tensor or a list (``"one"`` / ``"list"``); dicts by key."""
    if isinstance(struct, dict):
        return {"dict": list(struct)}
    return "list" if isinstance(struct, (list, tuple)) else "one"


def _restructure(kind, flat):
    if isinstance(kind, dict):
        return dict(zip(kind["dict"], flat))
    return list(flat) if kind == "list" else flat[0]


def from_config(config: dict, make_layer=LAYERS.deserialize):
    """``(inputs, outputs)`` KerasTensors of the graph a config describes, its layers created and called anew.

    A node whose arguments are not yet made waits; when a pass makes no progress the config is refused.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("config: expected a functional model config with a list of layers")
    made: dict[tuple, KerasTensor] = {}
    pending = []
    layers = {}
    n_nodes = 0
    for spec in config["layers"]:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ValueError("config: every layer needs a name")
        name = spec["name"]
        if name in layers:
            raise ValueError(f"config: two layers are named {name!r}")
        layer = make_layer({"class_name": spec.get("class_name"), "config": spec.get("config")})
        if layer.name != name:
            raise ValueError(f"config: layer {name!r} has the name {layer.name!r} in its own config")
        layers[name] = layer
        if isinstance(layer, InputLayer):
            made[(name, 0, 0)] = layer.output
            continue
        nodes = spec.get("inbound_nodes")
        if not isinstance(nodes, list):
            raise ValueError(f"config: layer {name!r} needs a list of inbound_nodes")
        n_nodes += len(nodes)
        if n_nodes > MAX_NODES:
            raise ValueError(f"config: more than {MAX_NODES} layer calls")
        pending.append([layer, list(nodes), 0])

    def decode(a):
        if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
            ref = a.get("config", {}).get("keras_history")
            if not (isinstance(ref, list) and len(ref) == 3):
                raise ValueError(f"config: a tensor reference must be [layer, node, tensor], got {ref!r}")
            key = tuple(ref)
            if key not in made:
                raise _NotYet
            return made[key]
        if isinstance(a, list):
            return [decode(b) for b in a]
        if isinstance(a, dict):
            return {k: decode(v) for k, v in a.items()}
        return a

    while pending:
        progress = False
        for entry in pending:
            layer, nodes, done = entry
            while done < len(nodes):
                node = nodes[done]
                if not isinstance(node, dict):
                    raise ValueError(f"config: layer {layer.name!r}: a node must be an object with args and kwargs")
                try:
                    args = decode(node.get("args", []))
                    kwargs = decode(node.get("kwargs", {}))
                except _NotYet:
                    break
                if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
                    raise ValueError(f"config: layer {layer.name!r}: a node's args must hold one input structure")
                out = layer(args[0], **kwargs)
                for k, t in enumerate(flatten(out)):
                    made[(layer.name, done, k)] = t
                done += 1
                progress = True
            entry[2] = done
        pending = [e for e in pending if e[2] < len(e[1])]
        if pending and not progress:
            raise ValueError(f"config: layer {pending[0][0].name!r} reads a tensor no layer makes")

    def lookup(argument, refs):
        if not isinstance(refs, list):
            raise ValueError(f"config: {argument} must be a list")
        out = []
        for ref in refs:
            key = tuple(ref) if isinstance(ref, list) else None
            if key not in made:
                raise ValueError(f"config: {argument} names {ref!r}, which no layer makes")
            out.append(made[key])
        return out

    inputs = lookup("input_layers", config.get("input_layers"))
    outputs = lookup("output_layers", config.get("output_layers"))
    return (_restructure(config.get("input_structure", "list" if len(inputs) > 1 else "one"), inputs),
            _restructure(config.get("output_structure", "list" if len(outputs) > 1 else "one"), outputs))


class _NotYet(Exception):
    """A node's input is made by a node not yet replayed."""
