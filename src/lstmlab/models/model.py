"""``Model``: a functional graph of layer calls, or your own ``call()`` in a subclass (Keras's two ways).

* Functional: ``Model(inputs, outputs)`` over tensors from ``Input()`` and layer calls; several inputs and
  outputs, shared layers, layers called with ``initial_state=`` from another layer's states.
* Subclassing: assign layers to attributes in ``__init__`` and compose them in ``call(inputs, training=None,
  mask=None)``; every layer call is recorded while the model runs, and ``backward`` follows those calls.

Either way a model is a layer: it can be called inside another model, and a layer called twice (in one model,
or in two) keeps one cache per call (see :mod:`lstmlab.layers.tape`).
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import backend
from ..functional._validate import internal_activations
from ..layers import LAYERS, Layer
from ..layers import tape as tape_mod
from ..layers.symbolic import KerasTensor, flatten, map_structure
from . import graph as graph_mod
from .saving import MODELS
from .summary import summary_lines
from .trainer import Trainer


def _restructure(like, flat):
    it = iter(flat)
    return map_structure(lambda _: next(it), like)


@MODELS.register
class Model(Trainer, Layer):
    """A model: ``Model(inputs, outputs)`` for a graph, or a subclass with its own ``call``.

    >>> x = Input(shape=(None, 8))
    >>> h, state_h, state_c = layers.LSTM(16, return_state=True)(x)
    >>> model = Model(x, [layers.Dense(1)(h), state_h])
    """

    def __init__(self, inputs=None, outputs=None, name: str | None = None, trainable: bool = True, **kwargs):
        if (inputs is None) != (outputs is None):
            raise ValueError("inputs, outputs: a functional model needs both (Model(inputs, outputs)); a subclass "
                             "passes neither")
        functional = inputs is not None
        if name is None:
            name = backend.unique_name("functional" if functional and type(self) is Model else
                                       _snake(type(self).__name__))
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        self.optimizer = self.loss = None
        self.metrics = []
        self._metric_specs, self._losses, self._loss_weights = [[]], [None], [1.0]
        self.compiled = False
        self.stop_training = False
        self._train_seed = None
        self.history = None
        self._graph = None
        self._out_masks = None
        if functional:
            self._graph = graph_mod.Graph(inputs, outputs)
            self.built = True

    # -- structure -------------------------------------------------------------
    def __setattr__(self, name, value):
        if not name.startswith("_") and name != "layers":  # a subclass's layers, in the order it assigns them
            tracked = self.__dict__.setdefault("_tracked", [])
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(v, Layer) and v is not self and all(v is not t for t in tracked):
                    tracked.append(v)
        object.__setattr__(self, name, value)

    @property
    def layers(self) -> list:
        """The model's layers: a graph's in call order (its InputLayers first), a subclass's as assigned."""
        if "_layer_list" in self.__dict__:
            return self.__dict__["_layer_list"]
        if self._graph is not None:
            return list(self._graph.layers)
        return list(self.__dict__.get("_tracked", []))

    @layers.setter
    def layers(self, value) -> None:
        self.__dict__["_layer_list"] = value

    @property
    def inputs(self) -> list:
        return list(self._graph.inputs) if self._graph is not None else None

    @property
    def outputs(self) -> list:
        return list(self._graph.outputs) if self._graph is not None else None

    @property
    def input(self):
        return self._graph.inputs_struct if self._graph is not None else None

    @property
    def output(self):
        return self._graph.outputs_struct if self._graph is not None else None

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs or []]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs or []]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_layer(self, name: str | None = None, index: int | None = None):
        """A layer by name or by index in ``layers`` (Keras's ``get_layer``)."""
        layers = self.layers
        if index is not None:
            if name is not None:
                raise ValueError("get_layer: give name or index, not both")
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -len(layers) <= index < len(layers):
                raise ValueError(f"index: expected an integer in [0, {len(layers)}), got {index!r}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: model {self.name!r} has no layer named {name!r}; its layers are "
                         f"{', '.join(l.name for l in layers) or 'none'}")

    def _all_layers(self) -> list:
        """Every layer whose random draws training seeds: nested models' layers included, each once."""
        out = []
        for layer in self.layers:
            inner = layer._all_layers() if isinstance(layer, Model) else [layer]
            out.extend(l for l in inner if all(l is not o for o in out))
        return out

    def _output_names(self) -> list[str]:
        if self._graph is not None:
            return [t._keras_history[0].name for t in self._graph.outputs]
        return list(self.__dict__.get("_subclass_outputs", ["output"]))

    @property
    def output_names(self) -> list[str]:
        return self._output_names()

    def _n_inputs(self) -> int:
        return len(self._graph.inputs) if self._graph is not None else 1

    # -- weights -----------------------------------------------------------------
    @property
    def weights(self):
        seen, out = set(), []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    def _trainable_pairs(self) -> list:
        return [(w, g) for w, g in zip(self.weights, self.grads) if w.trainable]

    def regularization_loss(self) -> float:
        return float(sum(layer.regularization_loss() for layer in self.layers))

    def reset_states(self, states=None) -> None:
        for layer in self.layers:
            layer.reset_states()

    def _sublayers(self) -> list:
        return []  # a model's inner calls are on its tape, which is its cache

    # -- building ----------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """A subclass's layers are built by running ``call`` once on zeros of ``input_shape`` (None = 1)."""
        if self._graph is not None or input_shape is None:
            self.built = True
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        zeros = [np.zeros(tuple(1 if s is None else s for s in shape), backend.floatx()) for shape in shapes]
        self.built = True
        self(zeros if isinstance(input_shape, list) else zeros[0], training=False)

    def _input_shape_of(self, x):
        shapes = [(None,) + tuple(np.shape(a))[1:] for a in flatten(x)]
        return shapes if isinstance(x, (list, tuple)) else shapes[0]

    def compute_output_shape(self, input_shape):
        if self._graph is None:
            raise ValueError(f"model {self.name!r}: a subclassed model's output shape is known only by calling it")
        return self.output_shape

    def compute_mask(self, inputs, mask):
        masks = self._out_masks or [None]
        return masks[0] if len(masks) == 1 else masks

    # -- calling -----------------------------------------------------------------
    def _standardize(self, x):
        """The inputs of a graph as a flat list: cast to each Input's dtype, a missing trailing 1 added, checked."""
        g = self._graph
        if isinstance(x, dict):
            names = [t._keras_history[0].name for t in g.inputs]
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(f"x: no array for input {missing[0]!r}; the model's inputs are {', '.join(names)}")
            flat = [x[n] for n in names]
        else:
            flat = flatten(x) if isinstance(x, (list, tuple)) and len(g.inputs) > 1 else [x]
        if len(flat) != len(g.inputs):
            raise ValueError(f"x: model {self.name!r} has {len(g.inputs)} inputs, got {len(flat)} arrays")
        out = []
        for k, (a, t) in enumerate(zip(flat, g.inputs)):
            name = "x" if len(flat) == 1 else f"x[{k}]"
            a = np.asarray(a)
            if a.ndim == len(t.shape) - 1 and t.shape[-1] == 1:
                a = a[..., None]  # (N, T) fed to an input of (None, T, 1), as Keras 3 does
            elif a.ndim == len(t.shape) + 1 and a.shape[-1] == 1:
                a = a[..., 0]
            ok = a.ndim == len(t.shape) and all(w is None or w == s for w, s in zip(t.shape, a.shape))
            if not ok:
                raise ValueError(f"{name}: input {t.name!r} of model {self.name!r} expects shape "
                                 f"{_shown(t.shape)}, got {a.shape}")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                bad = int(a.size - np.count_nonzero(np.isfinite(a)))
                raise ValueError(f"{name}: expected finite values, got {bad} NaN or Inf value(s)")
            if a.dtype.name != t.dtype:
                a = a.astype(t.dtype)
            out.append(a)
        return out

    def forward(self, x, training=False, mask=None):
        rec = tape_mod.Tape(self.name, training)
        if self._graph is not None:
            flat = rec.register_inputs(self._standardize(x))
        else:
            flat = rec.register_inputs(flatten(x))
        with tape_mod.active(rec), internal_activations():
            if self._graph is not None:
                out = self._run_graph(flat)
            else:
                out = self._call_user(_restructure(x, flat), training, mask)
            outs = flatten(out)
            rec.set_outputs(outs)
        if self._graph is None:
            self.__dict__["_subclass_outputs"] = ["output"] if len(outs) == 1 else [f"output_{k}" for k in range(len(outs))]
        self._out_masks = [getattr(o, "_keras_mask", None) for o in outs]
        self._cache = rec if training else None
        return map_structure(tape_mod._plain, out)

    def _run_graph(self, flat_inputs):
        values = {id(t): a for t, a in zip(self._graph.inputs, flat_inputs)}

        def value(a):
            return values[id(a)] if isinstance(a, KerasTensor) else a

        for node in self._graph.nodes:
            out = node.layer(map_structure(value, node.args), **map_structure(value, node.kwargs))
            for t, a in zip(flatten(node.outputs), flatten(out)):
                values[id(t)] = a
        return map_structure(value, self._graph.outputs_struct)

    def _call_user(self, x, training, mask):
        params = self.__dict__.get("_call_params")
        if params is None:
            try:
                params = set(inspect.signature(self.call).parameters)
            except (TypeError, ValueError):
                params = set()
            self.__dict__["_call_params"] = params
        kwargs = {}
        if "training" in params:
            kwargs["training"] = training
        if "mask" in params and mask is not None:
            kwargs["mask"] = mask
        return self.call(x, **kwargs)

    def call(self, inputs, training=None, mask=None):
        """Override in a subclass: compose layers on ``inputs``; a functional model runs its graph."""
        raise NotImplementedError(f"model {self.name!r}: a subclass of Model must define call(inputs)")

    def _backward(self, dy):
        rec = self._cache
        douts = flatten(dy) if isinstance(dy, (list, tuple)) else [dy]
        if len(douts) != len(rec.outputs):
            raise ValueError(f"dy: model {self.name!r} has {len(rec.outputs)} outputs, got {len(douts)} gradients")
        dx, per_layer = rec.backward(douts)
        for layer in self.layers:
            if id(layer) in per_layer:
                layer.grads = per_layer[id(layer)][1]
            else:  # no gradient reached it in this call
                layer.grads = [np.zeros_like(w.value) for w in layer.weights]
        grads_of = {}
        for layer in self.layers:
            for w, g in zip(layer.weights, layer.grads):
                grads_of[id(w)] = g if id(w) not in grads_of else grads_of[id(w)]
        grads = [grads_of.get(id(w), np.zeros_like(w.value)) for w in self.weights]
        grads = [np.zeros_like(w.value) if g is None else g for w, g in zip(self.weights, grads)]
        return (dx[0] if len(dx) == 1 else dx), grads

    def _backward_filling_grads(self, dy):
        dx, self.grads = self._backward(dy)  # the layers added their own penalties' gradients
        return dx

    def _outputs(self, x, training: bool):
        out = self(x, training=training)
        preds = flatten(out)
        masks = list(self._out_masks or [None] * len(preds))
        return preds, masks

    def backward(self, dy):
        """Backpropagate ``dy`` (one array per output) after a ``training=True`` call; fills every layer's grads
        and ``self.grads`` (aligned with ``self.weights``); returns the gradient of the inputs."""
        with internal_activations():
            return Layer.backward(self, dy)

    # -- description -----------------------------------------------------------
    def summary(self, line_length: int | None = None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None) -> None:
        for line in summary_lines(self, line_length):
            (print_fn or print)(line)

    def get_config(self) -> dict:
        if self._graph is None:
            raise ValueError(f"model {self.name!r}: a subclassed model has no config of its own (its call() is "
                             "Python code); save its weights, or build it as a functional model")
        return {"name": self.name, "trainable": self.trainable, **self._graph.get_config()}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        if not isinstance(config, dict):
            raise ValueError(f"config: expected an object, got {type(config).__name__}")
        inputs, outputs = graph_mod.from_config(config)
        name = config.get("name")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name: expected a string, got {name!r}")
        return cls(inputs, outputs, name=name)

    # -- files -------------------------------------------------------------------
    def save(self, path, include_optimizer: bool = True, metadata: dict | None = None) -> None:
        """Write the model, atomically: ``.safetensors`` (ours: config, weights, optimizer state) or ``.keras``
        (a Keras 3 archive that ``keras.saving.load_model`` opens: config, weights, and with ``include_optimizer``
        the compile settings and optimizer state)."""
        from . import saving
        kind = saving.file_kind(path, ("keras", "safetensors"), "save")
        if not self.built:
            raise ValueError(f"model {self.name!r}: build or call the model before saving it")
        if kind == "keras":
            from ..interop import keras_files
            keras_files.save_model(self, path, metadata, include_optimizer)
        else:
            saving.save_model(self, path, include_optimizer, metadata)

    def save_weights(self, path) -> None:
        """Write the weights, atomically: ``.weights.h5`` (Keras 3's layout) or ``.safetensors`` (ours)."""
        from . import saving
        if saving.file_kind(path, ("weights.h5", "safetensors"), "save_weights") == "weights.h5":
            from ..interop import keras_files
            keras_files.save_weights(self, path)
        else:
            saving.save_model(self, path, include_optimizer=False)

    def load_weights(self, path) -> None:
        """Read weights saved by ``save_weights`` (or by Keras 3, ``.weights.h5``), every shape checked first."""
        from . import saving
        if saving.file_kind(path, ("weights.h5", "safetensors"), "load_weights") == "weights.h5":
            from ..interop import keras_files
            keras_files.load_weights(self, path)
            return
        tensors, meta = saving.read_model_file(path)
        saving.restore_into(self, tensors, meta, str(path))

    def export(self, filepath, format: str = "onnx", **options) -> None:
        """Export the model for inference elsewhere (Keras 3's ``Model.export``); lstmlab writes ONNX only.

        ``model.export("m.onnx", format="onnx", states=True)``: see :mod:`lstmlab.interop.onnx_export` for what
        each layer becomes, the options (``states=True``: recurrent states as graph inputs and outputs, for
        step-by-step streaming) and what is refused. Needs ``pip install 'lstmlab[onnx]'``.
        """
        if format != "onnx":
            raise ValueError(f"format: expected 'onnx' (lstmlab exports ONNX only), got {format!r}")
        from ..interop.onnx_export import export_onnx
        export_onnx(self, filepath, **options)


def _snake(name: str) -> str:
    from ..layers.base import _snake as snake
    return snake(name)


def _shown(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


LAYERS.register(Model)
