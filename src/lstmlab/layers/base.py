"""The layer contract every layer keeps, and the weight container.

Contract (tests and tools rely on it)
-------------------------------------
* ``y = layer(x, training=False)`` builds the layer on first use and runs it.
* After a ``training=True`` call, ``dx = layer.backward(dy)`` returns the
  gradient with respect to the input and fills ``layer.grads``, a list aligned
  with ``layer.get_weights()``. The grads include the gradient of the layer's
  weight penalties (regularizers), so they are the gradient of
  ``data loss + layer.regularization_loss()``.
* ``get_weights()`` / ``set_weights()`` copy values out and in;
  ``layer.weights`` gives the live :class:`Weight` objects.
* ``get_config()`` / ``from_config()`` round-trip the constructor arguments.
* Inputs are batch-first ``(batch, time, features)``.

Threads
-------
A layer trains in one thread at a time, and that is enforced rather than
hoped for: its training call and ``backward()`` share one cache, so a second
thread that trained it between another thread's call and backward silently
gave that thread the wrong ``dx`` (seen in 3 of 200 calls). Now:

* a training call (``training=True``) or ``backward()`` that starts while
  another thread is inside a training call or ``backward()`` of the same
  layer raises ``RuntimeError`` naming the layer and both threads;
* ``backward()`` raises ``RuntimeError`` when the layer's last call was made
  in another thread (its cache, if any, belongs to that thread's call), so
  forward and backward must run in the same thread.

Inference calls (``training=False``) are not refused: several threads may
predict with one layer at once. To train one model from several threads,
give each thread its own copy, or hold a lock around each training step.
"""
from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import numpy as np

from .. import backend
from ..registry import Registry
from ..backend import unique_name
from . import initializers as inits
from . import symbolic, tape
from . import regularizers as regs
from ._config import check_arguments, check_shape_argument

_SOURCE = threading.local()  # where add_weight takes values from while a file is being loaded


@contextlib.contextmanager
def weights_from(source):
    """Inside the block, ``add_weight`` takes each new weight from ``source(layer, name, shape, dtype)``.

    This is how a model file is loaded without building twice or repeating any layer's shape rules:
    the layers build as usual, and at the one place weights are created the loader compares the
    shape the config implies with the tensor in the file and hands over that tensor, or refuses.
    No initializer runs, so a config that implies a huge weight allocates nothing.
    """
    previous = getattr(_SOURCE, "fn", None)
    _SOURCE.fn = source
    try:
        yield
    finally:
        _SOURCE.fn = previous


def check_base_arguments(config: dict) -> None:
    """Types of the arguments every layer takes, as they come from a file's JSON."""
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"name: expected a non-empty string without '/', got {name!r}")
    if config.get("dtype") is not None and config["dtype"] not in backend._VALID_FLOATX:
        raise ValueError(f"dtype: expected one of {', '.join(backend._VALID_FLOATX)}, got {config['dtype']!r}")
    if not isinstance(config.get("trainable", True), bool):
        raise ValueError(f"trainable: expected true or false, got {config['trainable']!r}")
    for key in ("batch_input_shape", "input_shape"):
        if config.get(key) is not None:
            check_shape_argument(key, config[key])
    for key in ("batch_size", "input_dim"):
        if config.get(key) is not None:
            check_shape_argument(key, [config[key]])


_TRAINING_LOCK = threading.Lock()  # guards every layer's ``_training_in``; held for a few instructions


def _this_thread() -> tuple[int, str]:
    """(ident, name) of the calling thread: plain values, so a layer stays copyable and holds no thread alive."""
    t = threading.current_thread()
    return t.ident, t.name


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s).lower()


class Weight:
    """One parameter array of a layer, with its name, penalty and trainability."""

    def __init__(self, layer: "Layer", name: str, value: np.ndarray, regularizer=None, trainable: bool = True):
        self.layer, self.name, self.value = layer, name, value
        self.regularizer = regularizer
        self._trainable = trainable

    @property
    def path(self) -> str:
        return f"{self.layer.name}/{self.name}"

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def trainable(self) -> bool:
        return self._trainable and self.layer.trainable

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"{self.path}: expected a value of shape {self.value.shape}, got {value.shape}")
        self.value[...] = value

    def __repr__(self) -> str:
        return f"<Weight {self.path} shape={self.shape} dtype={self.value.dtype}>"


class Layer:
    """Base class; subclasses implement ``build``, ``forward``, ``_backward`` and ``compute_output_shape``."""

    def __init__(self, name: str | None = None, dtype=None, trainable: bool = True, input_shape=None,
                 batch_input_shape=None, batch_size: int | None = None, input_dim: int | None = None):
        self.name = name if name is not None else unique_name(_snake(type(self).__name__))
        self.dtype = backend.resolve_dtype(dtype)
        self.trainable = trainable
        self.built = False
        self._weights: list[Weight] = []
        self.grads: list[np.ndarray | None] = []
        self.rng: np.random.Generator | None = None  # dropout draws; set by the model per training step
        self._cache: Any = None
        self.output_mask = None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self.batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self.batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self.batch_input_shape = None

    # -- weights -----------------------------------------------------------
    def add_weight(self, name: str, shape: tuple, initializer, regularizer=None, trainable: bool = True) -> Weight:
        owner, prefix = self._weight_owner()
        name = prefix + name
        source = getattr(_SOURCE, "fn", None)
        if source is not None:
            value = source(owner, name, tuple(shape), self.dtype)
        else:
            value = inits.get(initializer)(shape, self.dtype)
        w = Weight(owner, name, np.ascontiguousarray(value).reshape(tuple(shape)), regs.get(regularizer), trainable)
        self._weights.append(w)
        return w

    def _weight_owner(self) -> tuple:
        """``(layer, name prefix)`` of the weights this layer creates: itself, or for a cell inside an RNN layer
        that layer (its weights are saved and trained as ``lstm/kernel``, ``rnn/cell_0/kernel``)."""
        return self.__dict__.get("_owner") or (self, "")

    @property
    def weights(self) -> list[Weight]:
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[Weight]:
        return [w for w in self.weights if w.trainable]

    def get_weights(self) -> list[np.ndarray]:
        return [w.numpy() for w in self.weights]

    def set_weights(self, values) -> None:
        ws = self.weights
        values = list(values)
        if len(values) != len(ws):
            hint = ("; PyTorch's weight_ih, weight_hh, bias_ih, bias_hh are in another layout (two biases, gate "
                    "blocks on rows): convert the module or state_dict with lstmlab.interop.from_torch"
                    if hasattr(self, "return_sequences") and len(values) > len(ws) else "")
            raise ValueError(f"weights: layer {self.name!r} expects {len(ws)} arrays, got {len(values)}{hint}")
        for w, v in zip(ws, values):
            w.assign(v)

    def count_params(self) -> int:
        return int(sum(w.value.size for w in self.weights))

    def regularization_loss(self) -> float:
        return float(sum(w.regularizer(w.value) for w in self.weights if w.regularizer is not None))

    # -- calling -----------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def compute_mask(self, inputs, mask):
        return mask

    def __call__(self, x, training=None, mask=None, **kwargs):
        """Run the layer on ``x`` (an array, or a list for layers of several inputs).

        On symbolic tensors (``Input(...)`` and what layers return from them) nothing is computed: the call
        becomes a node of a graph (see :mod:`lstmlab.layers.symbolic`). Inside a model's call it is recorded
        on the model's tape (:mod:`lstmlab.layers.tape`), and ``training=None`` means the model's own mode.
        """
        if symbolic.any_symbolic(x, kwargs):
            return symbolic.symbolic_call(self, x, mask, kwargs)
        recording = tape.current()
        if recording is not None:
            return recording.call(self, x, training, mask, kwargs, self._run)
        return self._run(x, bool(training), mask, kwargs)

    def _run(self, x, training, mask, kwargs):
        training = bool(training)
        with self._one_training_thread("a training call") if training else contextlib.nullcontext():
            if not self.built:
                self.build(self._input_shape_of(x))
                self.built = True
            self._called_training = training
            self._called_in = _this_thread()  # whose cache the next backward() would use
            out = self.forward(x, training=training, mask=mask, **kwargs)
            self.output_mask = self.compute_mask(x, mask)
            return out

    # -- in a graph ----------------------------------------------------------
    @property
    def output(self):
        """The symbolic output of this layer's one call in a graph (a KerasTensor, or a list of them)."""
        nodes = self.__dict__.get("_inbound_nodes") or []
        if len(nodes) != 1:
            raise ValueError(f"layer {self.name!r} has {len(nodes)} calls in graphs, so it has no single output; "
                             "it is defined for a layer called once on Input() tensors")
        return nodes[0].outputs

    @property
    def output_shape(self):
        """The shape of :attr:`output` (a list of shapes for several outputs), ``None`` for unknown sizes."""
        out = self.output
        return [t.shape for t in out] if isinstance(out, list) else out.shape

    # -- one cache per call ------------------------------------------------
    def _sublayers(self) -> list:
        """Layers this one calls inside its own forward (a wrapper's), whose caches belong to its calls."""
        inner = getattr(self, "_inner", None)
        return list(inner()) if inner is not None else []

    def _call_state(self):
        """What ``backward`` needs from the last call: saved per call, so a layer called twice trains right."""
        d = self.__dict__
        return (d.get("_cache"), d.get("_called_training"), d.get("_called_in"), d.get("output_mask"),
                [sub._call_state() for sub in self._sublayers()])

    def _restore_call_state(self, state) -> None:
        self._cache, self._called_training, self._called_in, self.output_mask, subs = state
        for sub, s in zip(self._sublayers(), subs):
            sub._restore_call_state(s)

    @contextlib.contextmanager
    def _one_training_thread(self, what: str):
        """Run a training call or backward(), refusing it while another thread is in one (see Threads above)."""
        me = _this_thread()
        with _TRAINING_LOCK:
            owner = self.__dict__.get("_training_in")
            if owner is not None and owner != me:
                raise RuntimeError(f"layer {self.name!r}: {what} in thread {me[1]!r} while thread {owner[1]!r} "
                                   "is in a training call or backward() of this layer; a layer trains in one thread "
                                   "at a time (give each thread its own model, or hold a lock around each training "
                                   "step)")
            self._training_in = me
        try:
            yield
        finally:
            if owner is None:  # the outermost entry of this thread (a wrapper's inner calls nest) ends the claim
                self._training_in = None

    def _input_shape_of(self, x) -> tuple:
        shape = np.shape(x)
        return (None,) + tuple(shape[1:])

    def forward(self, x, training: bool = False, mask=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):
        """Gradient with respect to the input of the last ``training=True`` call; fills ``self.grads``.

        Runs in the thread that made that call; see Threads in the module docstring.
        """
        with self._one_training_thread("backward()"):
            me, caller = _this_thread(), self.__dict__.get("_called_in")
            if caller is not None and caller != me:
                raise RuntimeError(f"layer {self.name!r}: backward() in thread {me[1]!r}, but the layer's last call "
                                   f"was made in thread {caller[1]!r}; a layer trains in one thread at a time, its "
                                   "training call and backward() in the same thread")
            if self._cache is None or not getattr(self, "_called_training", False):
                raise RuntimeError(f"layer {self.name!r}: backward() needs a preceding call with training=True")
            return self._backward_filling_grads(dy)

    def _backward_filling_grads(self, dy):
        """``_backward`` plus the penalties' gradients; fills ``self.grads`` and returns dx."""
        dx, grads = self._backward(dy)
        for k, w in enumerate(self.weights):
            if w.regularizer is not None and grads[k] is not None:
                grads[k] = grads[k] + w.regularizer.gradient(w.value)
        self.grads = grads
        return dx

    def _backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def reset_states(self, states=None) -> None:
        """Only stateful recurrent layers hold state; a no-op elsewhere."""

    # -- config ------------------------------------------------------------
    def get_config(self) -> dict:
        config = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = check_arguments(cls, config)
        check_base_arguments(config)
        if "batch_input_shape" in config and config["batch_input_shape"] is not None:
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)

    @classmethod
    def _from_config_with(cls, config: dict, key: str):
        """``from_config`` of a layer that holds another one (or a cell) under ``key``: checked like any
        config, the inner layer resolved through the registry."""
        config = check_arguments(cls, config)
        check_base_arguments(config)
        config[key] = LAYERS.deserialize(config[key])
        if config.get("batch_input_shape") is not None:
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)

    def _dropout_rng(self) -> np.random.Generator:
        return self.rng if self.rng is not None else backend.rng()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


LAYERS = Registry("layer", Layer)  # every layer and cell a file can name, by class name
