"""What ``fit``, ``evaluate`` and ``predict`` accept, turned into one thing: batches of ``(x, y, sample_weight)``.

Accepted, as in Keras 3:

* arrays (NumPy or anything ``np.asarray`` takes), or lists / tuples / dicts of them for models of several
  inputs or outputs; ``batch_size`` slices them, ``shuffle`` permutes them per epoch;
* a ``PyDataset`` (``__len__`` batches, ``__getitem__(i)``, ``on_epoch_end()``);
* a Python generator or any iterator of batches ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
  (it is consumed across epochs: give ``steps_per_epoch`` for an endless one);
* any other iterable of such batches (a list of batches; iterated afresh each epoch).

Dtypes follow Keras's data adapters: booleans become the float type (float32 by default; Keras promotes them
in its ops, e.g. the one-hot ``bool`` inputs and targets of the text-generation examples), integers are kept
(token ids, class labels), and float64 stays float64 (float32 layers cast it at their input, as Keras does
before them).
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import backend


def _is_batch_source(x) -> bool:
    """A PyDataset, generator or iterable of batches, as opposed to arrays."""
    if isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or x is None or np.isscalar(x):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__getitem__") and hasattr(x, "__len__")


def _is_py_dataset(x) -> bool:
    return (hasattr(x, "__getitem__") and hasattr(x, "__len__") and hasattr(x, "on_epoch_end")
            and not isinstance(x, (np.ndarray, list, tuple, dict)))


def as_samples(name: str, value) -> np.ndarray:
    """``value`` as an array of samples: refuses None and ragged nested lists with a message naming ``name``
    (NumPy's own, "inhomogeneous shape after 1 dimensions", names neither the argument nor the fix)."""
    if value is None:
        raise ValueError(f"{name}: expected an array of samples, got None")
    try:
        a = np.asarray(value)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        raise ValueError(f"{name}: expected samples of one shape, got a ragged nested sequence (samples of "
                         "different lengths); pad them to one length first") from None
    if a.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got an object array (ragged sequences must be padded)")
    return a


def cast_array(name: str, a):
    """One array as Keras's adapters pass it on: bools and half floats to floatx, integers unchanged.

    Keras also casts float64 to floatx here; we keep float64, which float32 layers cast at their input
    (the same values) and which a float64 model needs to keep its precision.
    """
    a = as_samples(name, a)
    if (a.dtype.kind == "b" or (a.dtype.kind == "f" and a.itemsize < 4)) and a.dtype != backend.floatx():
        a = a.astype(backend.floatx())
    elif a.dtype.kind not in "fbiu":
        raise ValueError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return a


def structure(name: str, value, n_slots: int | None = None):
    """``value`` (an array, or a list / tuple / dict of them) with every array cast; None stays None.

    A list or tuple holds several inputs (or outputs) when the model has ``n_slots`` > 1 of them; for a
    model of one, it is one array written as nested lists (or ``[array]``).
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: cast_array(f"{name}[{k!r}]", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if n_slots is not None and n_slots > 1:
            return [cast_array(f"{name}[{k}]", v) for k, v in enumerate(value)]
        if len(value) == 1 and isinstance(value[0], np.ndarray):
            return cast_array(name, value[0])
    return cast_array(name, value)


def leaves(value) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return [value]


def n_samples(name: str, *values) -> int:
    """The common number of samples of every array in ``values``; one clear error when they differ."""
    counts = []
    for label, v in zip(name.split(","), values):
        for a in leaves(v):
            if a.ndim == 0:
                raise ValueError(f"{label.strip()}: expected an array of samples, got a scalar")
            counts.append((label.strip(), len(a)))
    if len({n for _, n in counts}) > 1:
        labels = ", ".join(dict.fromkeys(label for label, _ in counts))
        raise ValueError(f"{labels}: expected the same number of samples, got "
                         f"{' and '.join(str(n) for _, n in counts)}")
    return counts[0][1] if counts else 0


def check_finite(name: str, value) -> None:
    for a in leaves(value):
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: expected finite values, got {int(a.size - np.count_nonzero(np.isfinite(a)))} "
                             "NaN or Inf value(s)")


def take(value, idx):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: v[idx] for k, v in value.items()}
    if isinstance(value, list):
        return [v[idx] for v in value]
    return value[idx]


def unpack(batch, what: str):
    """``(x, y, sample_weight)`` of one batch from a generator or dataset, as Keras unpacks them."""
    if isinstance(batch, tuple):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch
        raise ValueError(f"{what}: expected batches of x, (x, y) or (x, y, sample_weight), got a tuple of "
                         f"{len(batch)} items")
    return batch, None, None


def class_weights(class_weight, y) -> np.ndarray:
    """Per-sample weights from ``{class: weight}`` and the targets (class ids, or one-hot rows)."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise ValueError(f"class_weight: expected a dict {{class id: weight}}, got {class_weight!r}")
    y = np.asarray(y)
    ids = y.argmax(-1) if y.ndim >= 2 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    ids = np.asarray(np.round(ids), np.int64)
    top = max(int(ids.max(initial=0)), max(int(k) for k in class_weight)) + 1
    table = np.ones(top, backend.floatx())
    for k, w in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"class_weight: expected non-negative integer class ids as keys, got {k!r}")
        table[int(k)] = float(w)
    return table[ids]


class Batches:
    """The batches of one data source, epoch by epoch: ``for x, y, sw in batches.epoch(k)``.

    Parameters
    ----------
    x, y, sample_weight
        As passed to ``fit`` (see the module docstring).
    batch_size : int
        For arrays only.
    steps : int or None
        Batches per epoch (``steps_per_epoch`` / ``validation_steps`` / ``steps``); None = the whole source.
    shuffle : bool
        Arrays: a new permutation each epoch, a function of ``seed`` and the epoch.
    what : str
        The argument name the errors use (``x``, ``validation_data``).
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size: int = 32, steps: int | None = None,
                 shuffle: bool = False, seed: int | None = None, class_weight=None, what: str = "x",
                 n_inputs: int | None = None, n_outputs: int | None = None):
        self.what, self.steps_arg, self.class_weight = what, steps, class_weight
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.source = None
        if _is_batch_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(f"y: do not pass y or sample_weight together with a {type(x).__name__} as {what}; "
                                 "it must yield them itself")
            self.source = x
            self.kind = "dataset" if _is_py_dataset(x) else "generator" if (
                inspect.isgenerator(x) or hasattr(x, "__next__")) else "iterable"
            self._iterator = None
            n = len(x) if self.kind == "dataset" else (len(x) if hasattr(x, "__len__") else None)
            self.steps = steps if steps is not None else n
            return
        self.kind = "arrays"
        self.x = structure(what, x, n_inputs)
        self.y = structure("y", y, n_outputs)
        self.sample_weight = None if sample_weight is None else cast_array("sample_weight", sample_weight)
        present = [(label, v) for label, v in ((what, self.x), ("y", self.y), ("sample_weight", self.sample_weight))
                   if v is not None]
        self.n = n_samples(", ".join(label for label, _ in present), *[v for _, v in present])
        check_finite("y", self.y)
        check_finite("sample_weight", self.sample_weight)
        if self.n == 0:
            first = (leaves(self.x) or [np.zeros(0)])[0]
            raise ValueError(f"{what}: expected at least one sample, got an empty array of shape {first.shape}")
        if class_weight is not None:
            if self.y is None or isinstance(self.y, (list, dict)):
                raise ValueError("class_weight: supported for a model of one output with targets y")
            cw = class_weights(class_weight, self.y)
            self.sample_weight = cw if self.sample_weight is None else self.sample_weight * cw
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        full = -(-self.n // batch_size)
        self.steps = full if steps is None else min(steps, full)

    def epoch(self, epoch: int):
        """The batches of epoch ``epoch`` (as ``(x, y, sample_weight)``)."""
        if self.kind == "arrays":
            order = (np.random.default_rng([self.seed or 0, 1, epoch]).permutation(self.n) if self.shuffle
                     else np.arange(self.n))
            for step in range(self.steps):
                idx = order[step * self.batch_size : (step + 1) * self.batch_size]
                yield take(self.x, idx), take(self.y, idx), take(self.sample_weight, idx)
            return
        if self.kind == "dataset":
            count = self.steps if self.steps is not None else len(self.source)
            for i in range(count):
                yield self._cast(self.source[i % len(self.source)])
            return
        if self.kind == "iterable":
            it = iter(self.source)
        else:
            it = self.source if self._iterator is None else self._iterator
            self._iterator = it
        step = 0
        while self.steps is None or step < self.steps:
            try:
                batch = next(it)
            except StopIteration:
                if self.steps is not None and step == 0:
                    raise ValueError(f"{self.what}: the generator ran out of data; give it enough for "
                                     f"steps_per_epoch x epochs ({self.steps} batches an epoch)") from None
                return
            yield self._cast(batch)
            step += 1

    def on_epoch_end(self) -> None:
        if self.kind == "dataset":
            self.source.on_epoch_end()

    def _cast(self, batch):
        x, y, sw = unpack(batch, self.what)
        x = structure(self.what, x, self.n_inputs)
        y = structure("y", y, self.n_outputs)
        sw = None if sw is None else cast_array("sample_weight", sw)
        check_finite("y", y)
        if self.class_weight is not None and y is not None:
            cw = class_weights(self.class_weight, y)
            sw = cw if sw is None else sw * cw
        return x, y, sw
