"""``timeseries_dataset_from_array``: sliding windows over a time series, batched (Keras's semantics).

Window ``k`` starts at ``p_k = start_index + k * sequence_stride`` and takes every ``sampling_rate``-th
step::

    x_k = data[p_k + j * sampling_rate]  for j = 0 .. sequence_length - 1      (sequence_length, ...)
    y_k = targets[p_k]                   (the target of the window that *starts* at p_k)

A window must fit before ``end_index``: the last step ``p_k + (sequence_length - 1) * sampling_rate``
is ``< end_index``, so there are ``num_seqs = end - start - (sequence_length - 1) * sampling_rate``
admissible starts (fewer when ``targets`` ends first: ``p_k < len(targets)``), of which every ``sequence_stride``-th is used.

Keras returns a ``tf.data.Dataset`` (it needs TensorFlow); lstmlab returns a :class:`TimeseriesDataset`,
a :class:`~lstmlab.utils.PyDataset`: ``len()`` batches, re-iterable each epoch, windows cut on demand.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .py_dataset import PyDataset


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_range(start_index, end_index, n: int) -> tuple[int, int]:
    """Keras's bounds: ``0 <= start_index < n`` and ``start_index < end_index < n`` (``end_index == n`` is refused, as in Keras)."""
    for name, value in (("start_index", start_index), ("end_index", end_index)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise ValueError(f"{name}: expected None or an integer, got {value!r}")
    if start_index is not None and not 0 <= start_index < n:
        raise ValueError(f"start_index: expected 0 <= start_index < {n} (the length of data), got {start_index}")
    if end_index is not None:
        if not 0 < end_index < n:
            raise ValueError(f"end_index: expected 0 < end_index < {n} (the length of data), got {end_index}")
        if start_index is not None and end_index <= start_index:
            raise ValueError(f"end_index: expected more than start_index={start_index}, got {end_index}")
    return int(start_index or 0), int(n if end_index is None else end_index)


class TimeseriesDataset(PyDataset):
    """Batches of windows over ``data`` (and their targets); built by :func:`timeseries_dataset_from_array`.

    ``self[b]`` is ``(x, y)`` with ``x`` of shape ``(B, sequence_length) + data.shape[1:]`` and ``y`` of
    shape ``(B,) + targets.shape[1:]``, or ``x`` alone when ``targets`` is None; ``B = batch_size``
    except for a shorter last batch. With ``batch_size=None`` an item is one window, unbatched.

    With ``shuffle``, the window order is a permutation drawn from ``seed``; :meth:`on_epoch_end`
    (called by ``fit``) draws the next permutation from the same generator, so every epoch has a
    new order and the run is reproducible. Iterating twice without ``on_epoch_end`` repeats the order.
    """

    def __init__(self, data, targets, sequence_length, sequence_stride, sampling_rate, batch_size, shuffle, seed,
                 start_index, end_index):
        super().__init__()
        self.data = data[start_index:end_index]  # (end - start, ...)
        self.targets = None if targets is None else targets[start_index:end_index]
        self.sequence_length = sequence_length
        self.sampling_rate = sampling_rate
        self.batch_size = batch_size
        num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
        if targets is not None:
            # Window k needs targets[start_index + p_k]. (Keras caps at len(targets) and then indexes past the
            # end when start_index > 0 and targets are short; here those windows are simply not made.)
            num_seqs = min(num_seqs, len(targets) - start_index)
        self._starts = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=np.int64)  # (K,) offsets into self.data
        self._rng = np.random.RandomState(seed) if shuffle else None  # Keras shuffles with RandomState(seed) too
        self._order = self._starts.copy()
        if self._rng is not None:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        """Batches per epoch (windows when ``batch_size`` is None)."""
        if self.batch_size is None:
            return len(self._order)
        return -(-len(self._order) // self.batch_size)  # ceil: the last batch may be short

    def _window_rows(self, starts: np.ndarray) -> np.ndarray:
        """Row numbers of the windows starting at ``starts`` (B,) -> (B, sequence_length)."""
        offsets = np.arange(self.sequence_length, dtype=np.int64) * self.sampling_rate  # (L,)
        return starts[:, None] + offsets[None, :]  # (B, L)

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer batch number, got {index!r}")
        if not -n <= index < n:
            raise IndexError(f"index: expected a batch number in [0, {n}), got {index}")
        index = int(index) % n
        if self.batch_size is None:
            starts = self._order[index:index + 1]  # (1,)
        else:
            starts = self._order[index * self.batch_size:(index + 1) * self.batch_size]  # (B,)
        x = self.data[self._window_rows(starts)]  # (B, L) + data.shape[1:]
        if self.batch_size is None:
            x = x[0]  # (L,) + data.shape[1:]
        if self.targets is None:
            return x
        y = self.targets[starts]  # (B,) + targets.shape[1:]
        return x, (y[0] if self.batch_size is None else y)

    def on_epoch_end(self):
        """Reshuffle the windows for the next epoch (only with ``shuffle=True``)."""
        if self._rng is not None:
            self._order = self._starts.copy()
            self._rng.shuffle(self._order)


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Sliding windows over ``data`` as a dataset of batches, as ``keras.utils.timeseries_dataset_from_array``.

    Parameters
    ----------
    data : array-like of shape ``(T, ...)``
        Consecutive time steps along axis 0.
    targets : array-like of shape ``(T', ...)`` or None
        ``targets[i]`` is the target of the window starting at ``data[i]``; ``None`` yields ``x`` only.
    sequence_length : int
        Steps per window ``L``.
    sequence_stride : int, default 1
        Distance between the starts of consecutive windows.
    sampling_rate : int, default 1
        Distance between consecutive steps inside a window.
    batch_size : int or None, default 128
        Windows per batch; ``None`` yields single windows.
    shuffle : bool, default False
        Draw windows in a random order (a new one each epoch; see :class:`TimeseriesDataset`).
    seed : int or None
        Seed of the shuffle; ``None`` draws one from ``lstmlab.backend`` (so ``set_random_seed`` fixes it).
    start_index, end_index : int or None
        Use only ``data[start_index:end_index]``.

    Returns
    -------
    TimeseriesDataset
        ``len()`` batches of ``(x, y)`` with ``x`` of shape ``(B, L) + data.shape[1:]``.

    Raises
    ------
    ValueError
        For Keras's bad arguments (strides, rate or indices out of range) and, unlike Keras (which then
        gives an empty dataset), when not a single window fits.
    """
    data = np.asarray(data)
    if data.ndim == 0:
        raise ValueError(f"data: expected an array with a time axis first, got a scalar {data!r}")
    n = len(data)
    if targets is not None:
        targets = np.asarray(targets)
        if targets.ndim == 0:
            raise ValueError(f"targets: expected an array with one target per time step or None, got {targets!r}")
    sequence_length = _positive_int("sequence_length", sequence_length)
    start, end = _check_range(start_index, end_index, n)
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        _positive_int(name, value)
        if value >= n:
            raise ValueError(f"{name}: expected less than {n} (the length of data), got {value}")
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    if shuffle and seed is None:
        seed = int(backend.rng().integers(0, 2**31 - 1))  # RandomState takes seeds below 2**32
    span = (sequence_length - 1) * sampling_rate + 1
    if span > end - start:
        raise ValueError(f"sequence_length: a window of {sequence_length} steps at sampling_rate={sampling_rate} spans "
                         f"{span} steps, more than the {end - start} steps of data[{start}:{end}]")
    if targets is not None and len(targets) <= start:
        raise ValueError(f"targets: expected more than start_index={start} targets (one per window start) or None, "
                         f"got {len(targets)}")
    return TimeseriesDataset(data, targets, sequence_length, int(sequence_stride), int(sampling_rate), batch_size,
                             bool(shuffle), seed, start, end)
