"""How many threads a fast call splits its work across, and the Python worker pool that runs the parts.

Two pools serve the fast path. The float32 LSTM forward and the unit-split
backward run on lstmlab's C worker threads (``pool.c``), started from C. Every
other split call (the by-sequence time loops, the dense and output layers'
GEMMs) runs its parts here: the first part in the calling thread, the others
on a ``ThreadPoolExecutor`` whose workers each use single-threaded BLAS.

The thread count follows the cores the calling thread may run on, asked at
every call (see :func:`threads`), capped by :func:`set_threads`. After
``fork()`` the child forgets the parent's pool and starts its own.
"""
from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import _fast

MIN_ROWS_PER_THREAD = 4
C_POOL_MAX_THREADS = 64  # pool.c's MAX_THREADS: lk_parallel refuses a job of more parts
_THREADS: int | None = None  # set_threads(n): at most n threads; None: as many as the allowed cores
_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0
_POOL_LOCK = threading.Lock()


def set_threads(n: int | None) -> None:
    """At most ``n`` threads split a call's work; ``None`` (the default): as many as there are allowed cores.

    Never more than the cores the calling thread may run on at the time of the call (see :func:`threads`).
    """
    global _THREADS
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    _THREADS = n
    _drop_pool()


def _allowed_cores() -> int:
    """The cores the calling thread may run on now (about 0.4 us: one sched_getaffinity system call)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads() -> int:
    """Threads a call splits its work across: the cores the calling thread may run on, asked at every call.

    The affinity can narrow after import (``os.sched_setaffinity``, ``taskset -p``, a container's CPU set):
    a count fixed at import then splits the work, and the unit split's per-step barrier, across threads that
    cannot run at the same time. Measured at B = 1, T = 500, H = 256 on a machine narrowed to one core: 273
    ms with two parts against 9 ms with one. Capped by :func:`set_threads` and by the C pool's 64 threads.
    """
    n = _allowed_cores()
    if _THREADS is not None:
        n = min(n, _THREADS)
    return max(1, min(n, C_POOL_MAX_THREADS))


def _drop_pool() -> None:
    """Forget the Python pool; its threads end once the last caller holding it is done (the executor's own
    weakref callback wakes them), so a caller still submitting to it is never refused."""
    global _POOL, _POOL_WORKERS
    with _POOL_LOCK:
        _POOL, _POOL_WORKERS = None, 0


def _forget_pool_in_child() -> None:
    """After ``fork()`` in the child, which has only the forking thread: the inherited pool believes its
    workers idle and never starts new ones, so the child's first split call waited on its futures forever.
    The child starts a pool of its own on first use instead (pool.c does the same for the C threads). The
    lock is new too: a thread of the parent may have held it at the fork."""
    global _POOL, _POOL_WORKERS, _POOL_LOCK
    _POOL_LOCK = threading.Lock()
    _POOL, _POOL_WORKERS = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _pool(workers: int) -> ThreadPoolExecutor:
    """The Python worker pool, with at least ``workers`` threads (more cores may be allowed than at its start)."""
    global _POOL, _POOL_WORKERS
    with _POOL_LOCK:
        if _POOL is None or _POOL_WORKERS < workers:  # a smaller pool is dropped as in _drop_pool
            # each worker uses single-threaded BLAS for its own GEMMs
            _POOL = ThreadPoolExecutor(workers, initializer=_fast.SET_THREADS_LOCAL, initargs=(1,))
            _POOL_WORKERS = workers
        return _POOL


def split(B: int) -> list[tuple[int, int]]:
    """The row ranges ``[(b0, b1), ...]`` that ``B`` rows are split into: one per thread, each of at least
    ``MIN_ROWS_PER_THREAD`` rows (a single range when there are too few)."""
    n = max(1, min(threads(), B // MIN_ROWS_PER_THREAD))
    edges = [(B * i + n // 2) // n for i in range(n + 1)]  # as even as integers allow
    return list(zip(edges[:-1], edges[1:]))


def run(job, B: int) -> list:
    """Run ``job(b0, b1)`` over batch chunks, in parallel when there are several; returns their results.

    A job does everything for its rows (input projection, time loop, gradient GEMMs) with single-threaded
    BLAS, so the cores never wait for each other inside a layer.
    """
    return _in_parallel([functools.partial(job, lo, hi) for lo, hi in split(B)])


def _in_parallel(calls) -> list:
    """Run the calls at the same time, returning their results: the first here, on single-threaded BLAS,
    the others on the pool. The caller works instead of waiting, and one thread fewer has to be woken
    (measured: a (32, 4, 4, 32) forward, nearly all overhead, went from 240 to 190 us)."""
    pool = _pool(len(calls) - 1) if len(calls) > 1 else None
    futures = [pool.submit(call) for call in calls[1:]]
    previous = _fast.SET_THREADS_LOCAL(1)
    try:
        first = calls[0]()
    finally:
        _fast.SET_THREADS_LOCAL(previous)
    return [first] + [f.result() for f in futures]
