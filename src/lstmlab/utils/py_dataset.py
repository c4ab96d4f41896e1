"""``PyDataset``: a dataset written in Python as "number of batches + batch number i" (Keras 3's class).

A subclass implements ``__len__`` (how many batches per epoch) and ``__getitem__(index)`` (batch
``index`` as ``x``, ``(x, y)`` or ``(x, y, sample_weight)``); it may add ``on_epoch_begin`` /
``on_epoch_end`` (e.g. to reshuffle). Random access by batch number means every sample is seen once
per epoch and an epoch can be replayed, which a generator cannot promise.

Parallelism: Keras's ``fit`` can prefetch batches with ``workers`` threads or processes. lstmlab
accepts ``workers``, ``use_multiprocessing`` and ``max_queue_size`` (so Keras code runs unchanged)
and keeps their values, but always loads batches one after the other in the calling thread: no
thread pool and no multiprocessing. The NumPy kernels already use the cores.
"""
from __future__ import annotations

import itertools
import warnings


class PyDataset:
    """Base class of a batch-indexed dataset, as ``keras.utils.PyDataset``.

    Parameters
    ----------
    workers : int, default 1
        Accepted and stored for Keras compatibility; batches are always loaded in the calling thread.
    use_multiprocessing : bool, default False
        Accepted and stored; lstmlab never forks to load data.
    max_queue_size : int, default 10
        Accepted and stored; there is no prefetch queue.

    Examples
    --------
    >>> class Batches(PyDataset):
    ...     def __init__(self, x, y, batch_size, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.x, self.y, self.batch_size = x, y, batch_size
    ...     def __len__(self):
    ...         return -(-len(self.x) // self.batch_size)   # ceil: the last batch may be short
    ...     def __getitem__(self, index):
    ...         lo = index * self.batch_size
    ...         return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        # A subclass that forgets super().__init__() still works, with Keras's defaults and Keras's warning.
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size") if not hasattr(self, name)]
        if missing:
            self._workers = getattr(self, "_workers", 1)
            self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
            self._max_queue_size = getattr(self, "_max_queue_size", 10)
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                          "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`.",
                          stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """Batch number ``index`` (``0 <= index < num_batches``): ``x``, ``(x, y)`` or ``(x, y, sample_weight)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning one batch")

    @property
    def num_batches(self):
        """Batches per epoch (``len(self)``), or ``None`` for an endless dataset (a subclass may override)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (or the num_batches property)")

    def __iter__(self):
        """One pass over the batches, in order; endless when ``num_batches`` is ``None``."""
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        for index in (itertools.count() if n is None else range(n)):
            yield self[index]

    def on_epoch_begin(self):
        """Called by ``fit`` before each epoch."""

    def on_epoch_end(self):
        """Called by ``fit`` after each epoch (e.g. to reshuffle)."""
