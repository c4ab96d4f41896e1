"""The record of one model call: which layer made which array, so backward can walk the calls in reverse.

A :class:`~lstmlab.models.Model` runs its ``call()`` (a functional graph, or the user's own code in a
subclass) with a :class:`Tape` active. Every layer called while it is active is recorded: its inputs,
its outputs and its per-call state (the cache its ``backward`` needs). A layer called twice is recorded
twice, with two caches, which is how shared layers train correctly. ``Tape.backward`` walks the records
from the last to the first, restores each call's cache, runs the layer's ``backward`` and routes every
input gradient to the array it belongs to, by identity.

What a layer returns inside a model call is a :class:`Tracked` view of its output. It carries the output's
mask (``_keras_mask``, so the next layer gets it without being told, as in Keras) and remembers who made it.
NumPy operations on a ``Tracked`` array return arrays marked as *derived*: backward cannot follow them, so
when a derived array reaches a layer or the model's output during a training call, the call stops with an
error that names the operation and the layer whose output it came from. Inference calls accept them.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_STATE = threading.local()


def current() -> "Tape | None":
    """The tape of the model call running in this thread, or None (also inside a layer's own forward)."""
    return getattr(_STATE, "tape", None)


@contextlib.contextmanager
def active(tape: "Tape | None"):
    """Make ``tape`` the current one for the block (``None`` suspends recording, e.g. inside a layer)."""
    previous = getattr(_STATE, "tape", None)
    _STATE.tape = tape
    try:
        yield tape
    finally:
        _STATE.tape = previous


def _plain(a):
    """The same memory as a base-class ndarray (a Tracked array's payload, without its bookkeeping)."""
    return a.view(np.ndarray) if isinstance(a, Tracked) else a


def _plain_tree(obj):
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_tree(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain_tree(v) for k, v in obj.items()}
    return _plain(obj)


def _derived(result, what: str, sources):
    """Mark the arrays of ``result`` as made by NumPy operation ``what`` from ``sources`` (layer names)."""
    if isinstance(result, tuple):
        return tuple(_derived(r, what, sources) for r in result)
    if isinstance(result, np.ndarray) and result.ndim:
        out = result.view(Tracked)
        out._derived = (what, sources)
        return out
    return result


def _sources(args) -> list:
    found = []

    def walk(a):
        if isinstance(a, Tracked):
            found.append(a._producer or (a._derived[1][0] if a._derived and a._derived[1] else None))
        elif isinstance(a, (list, tuple)):
            for b in a:
                walk(b)
        elif isinstance(a, dict):
            for b in a.values():
                walk(b)

    walk(args)
    return [s for s in found if s]


class Tracked(np.ndarray):
    """A layer's output inside a model call (a view: no data is copied).

    ``_producer``: the layer that returned it; ``_keras_mask``: its time mask; ``_derived``:
    ``(operation, source layers)`` when NumPy, not a layer, made it from a layer's output.
    """

    _producer = None
    _keras_mask = None
    _derived = None

    def __array_finalize__(self, obj):
        if obj is None or self.__dict__.get("_producer") is not None:
            return
        if isinstance(obj, Tracked):  # a view, a slice, astype(), copy(): NumPy made it, not a layer
            self._derived = ("indexing or a view", [obj._producer] if obj._producer else
                             (obj._derived[1] if obj._derived else []))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*_plain_tree(inputs), **kwargs)
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        return _derived(result, f"numpy.{name}", _sources(inputs))

    def __array_function__(self, func, types, args, kwargs):
        result = func(*_plain_tree(args), **_plain_tree(kwargs))
        return _derived(result, f"numpy.{func.__name__}", _sources(args))


def _flat(x) -> list:
    if isinstance(x, (list, tuple)):
        return [a for item in x for a in _flat(item)]
    if isinstance(x, dict):
        return [a for item in x.values() for a in _flat(item)]
    return [x]


class _Call:
    """One recorded layer call."""

    __slots__ = ("layer", "inputs", "states", "outputs", "state", "multi_input")

    def __init__(self, layer, inputs, states, outputs, state, multi_input):
        self.layer, self.inputs, self.states, self.outputs = layer, inputs, states, outputs
        self.state, self.multi_input = state, multi_input


class Tape:
    """The layer calls of one model call, in order, and the arrays they made.

    Parameters
    ----------
    model_name : str
        Named in errors.
    training : bool
        Whether the model call trains: only then are calls recorded for backward, and derived arrays refused.
    """

    def __init__(self, model_name: str, training: bool):
        self.model_name, self.training = model_name, bool(training)
        self.calls: list[_Call] = []
        self.made: dict[int, np.ndarray] = {}  # id -> array made by a recorded call (kept alive: ids stay valid)
        self.inputs: list[np.ndarray] = []
        self.outputs: list = []

    # -- the model's inputs and outputs ----------------------------------------
    def register_inputs(self, flat_inputs: list) -> list:
        """Fresh views of the model's input arrays: their identities are what backward routes ``dx`` to."""
        self.inputs = [np.asarray(a).view(np.ndarray) for a in flat_inputs]
        return self.inputs

    def set_outputs(self, flat_outputs: list) -> None:
        for a in flat_outputs:
            self._check_traceable(a, "is returned by the model")
        self.outputs = list(flat_outputs)

    # -- layer calls -----------------------------------------------------------
    def _origin(self, a):
        """Why ``a`` cannot carry a gradient back, or None when it can (or needs none)."""
        if id(a) in self.made or any(a is i for i in self.inputs):
            return None
        if isinstance(a, Tracked) and a._derived is not None:
            return a._derived
        base = a.base if isinstance(a, np.ndarray) else None
        while base is not None:
            if isinstance(base, Tracked):
                return ("numpy.asarray or a view", [base._producer] if base._producer else [])
            base = base.base if isinstance(base, np.ndarray) else None
        return None

    def _check_traceable(self, a, where: str) -> None:
        if not self.training or not isinstance(a, np.ndarray):
            return
        origin = self._origin(a)
        if origin is not None:
            what, sources = origin
            src = f"the output of layer {sources[0]!r}" if sources else "a layer's output"
            raise ValueError(
                f"model {self.model_name!r}: call() applied {what} to {src}, and the result {where}; backward "
                "follows lstmlab layer calls only, so its gradient would be lost. Do it with a layer "
                "(layers.Add, Multiply, Concatenate, Activation, Reshape, ...) or call the model with training=False")

    def call(self, layer, x, training, mask, kwargs, run):
        """Run ``layer`` through ``run(x, training, mask, kwargs)`` and record the call; returns Tracked outputs."""
        if training is None:
            training = self.training
        multi_input = isinstance(x, (list, tuple))
        flat_x = _flat(x)
        states = _flat(kwargs["initial_state"]) if kwargs.get("initial_state") is not None else []
        where = f"is passed to layer {layer.name!r}"
        if mask is None:
            masks = [getattr(a, "_keras_mask", None) for a in flat_x]
            if any(m is not None for m in masks):
                mask = masks if multi_input else masks[0]
        if training and self.training:
            for a in flat_x + states:
                self._check_traceable(a, where)
        elif self.training and any(isinstance(a, np.ndarray) and (id(a) in self.made) for a in flat_x + states):
            raise ValueError(f"model {self.model_name!r}: layer {layer.name!r} was called with training=False "
                             "inside a training call, on a layer's output; backward cannot pass through an "
                             "inference call (leave training unset inside call())")
        plain_x = _plain_tree(x)
        plain_kwargs = {k: _plain_tree(v) for k, v in kwargs.items()}
        with active(None):  # a layer's own inner calls (a wrapper's, a nested model's) are its business
            out = run(plain_x, training, mask, plain_kwargs)
        out_masks = layer.output_mask
        multi_output = isinstance(out, (list, tuple))
        outs = list(out) if multi_output else [out]
        masks = list(out_masks) if isinstance(out_masks, (list, tuple)) else [out_masks] + [None] * (len(outs) - 1)
        wrapped = []
        for a, m in zip(outs, masks):
            if isinstance(a, np.ndarray):
                t = a.view(Tracked)
                t._producer, t._keras_mask = layer.name, m
                self.made[id(t)] = t
                a = t
            wrapped.append(a)
        if training and self.training:
            self.calls.append(_Call(layer, [_key(a) for a in flat_x], [_key(a) for a in states], wrapped,
                                    layer._call_state(), multi_input))
        return type(out)(wrapped) if multi_output else wrapped[0]

    # -- backward --------------------------------------------------------------
    def backward(self, douts: list) -> tuple[list, dict]:
        """Gradients for the model's inputs (aligned with ``register_inputs``) and, per layer, its summed grads.

        ``douts``: one gradient per model output (None where none flows). Returns ``(dx, layer_grads)`` with
        ``layer_grads[id(layer)] = (layer, [grad per weight])``, summed over the layer's calls.
        """
        grads: dict[int, np.ndarray] = {}

        def add(key, d):
            if d is None or key is None:
                return
            d = _plain(d)
            grads[key] = d if key not in grads else grads[key] + d

        for a, d in zip(self.outputs, douts):
            add(_key(a), d)
        layer_grads: dict[int, tuple] = {}
        for call in reversed(self.calls):
            dys = [grads.pop(id(o), None) for o in call.outputs]
            if all(d is None for d in dys):
                continue  # nothing downstream used this call's outputs
            layer = call.layer
            layer._restore_call_state(call.state)
            dx = layer.backward(dys if len(dys) > 1 else dys[0])
            _, acc = layer_grads.setdefault(id(layer), (layer, None))
            summed = list(layer.grads) if acc is None else [
                g if a is None else a if g is None else a + g for a, g in zip(acc, layer.grads)]
            layer_grads[id(layer)] = (layer, summed)
            dxs = list(dx) if call.multi_input else [dx]
            for key, d in zip(call.inputs, dxs):
                add(key, d)
            if call.states:
                for key, d in zip(call.states, getattr(layer, "initial_state_grads", None) or []):
                    add(key, d)
        dx = [grads.get(id(a)) for a in self.inputs]
        dx = [np.zeros_like(a, dtype=np.result_type(a.dtype, np.float32)) if d is None else d
              for a, d in zip(self.inputs, dx)]
        return dx, layer_grads


def _key(a):
    """What gradients are routed by: the identity of an array (None for anything else)."""
    return id(a) if isinstance(a, np.ndarray) else None
