"""The fast path: same signatures and results as the reference LSTM / GRU, with the time loop in C.

``lstm_forward`` / ``lstm_backward`` / ``gru_forward`` / ``gru_backward`` here
take the same arguments as :mod:`lstmlab.functional.lstm` and ``.gru`` and
return the same outputs. When the C kernels are available and the call is one
they cover (default ``tanh`` / ``sigmoid`` activations, no mask, no recurrent
dropout), the time loop runs in C:

* float32 products run on lstmlab's own AVX-512 GEMM (``_fast/sgemm.c``) where
  the CPU has AVX-512, with the kernels packed once per call for all steps;
  float64, other CPUs and ``LSTMLAB_SGEMM=0`` use NumPy's BLAS;
* the float32 LSTM forward (own GEMM) is one C call: each register tile of
  ``[x_t, h_{t-1}] @ [kernel; recurrent_kernel]`` holds the four gates of 16
  units (the kernels' columns regrouped when packed), and the cell runs on it
  in registers with lstmlab's own exp, sigmoid and tanh, so neither product is
  stored and read back; it runs on lstmlab's C worker threads
  (``_fast/pool.c``), which start a call's parts within microseconds;
* elsewhere (backward, GRU, float64) the input projection of all steps is one
  GEMM before the loop, and each step one GEMM and one fused pass over the
  units (AVX-512 registers for the float32 LSTM backward; otherwise
  vectorized loops over glibc's expf / tanhf);
* the batch is split across the cores (those the calling thread may run on at
  the time of the call, see :func:`threads`): each thread runs the whole time loop
  for its rows, so there is no per-step barrier; a batch too small to split
  (B < 8) is split by hidden units instead, the parts meeting once per step
  (both unit-split loops run on the C worker threads);
* the weight gradients are GEMMs over all T*B rows, after the loop;
* temporaries live in per-thread buffers reused between calls, and inference
  (``need_cache=False``, what layers pass when not training) keeps no cache.

Anything else falls through to the reference, so these functions are always
safe to call. The reference stays the oracle; tests hold the two equal.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _fast
from . import dense as ref_dense
from . import gru as ref_gru
from . import lstm as ref_lstm
from ._bptt import weight_grads
from ._validate import recurrent_args, upstream
from .activations import get_activation

MIN_ROWS_PER_THREAD = 4
C_POOL_MAX_THREADS = 64  # pool.c's MAX_THREADS: lk_parallel refuses a job of more parts
_THREADS: int | None = None  # set_threads(n): at most n threads; None: as many as the allowed cores
_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0
_POOL_LOCK = threading.Lock()


def available() -> bool:
    """True when the C kernels and NumPy's OpenBLAS were found (see ``lstmlab._fast.REASON`` if not)."""
    return _fast.KERNELS is not None


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


def _split(B: int) -> list[tuple[int, int]]:
    n = max(1, min(threads(), B // MIN_ROWS_PER_THREAD))
    edges = [(B * i + n // 2) // n for i in range(n + 1)]  # as even as integers allow
    return list(zip(edges[:-1], edges[1:]))


def _run(job, B: int) -> list:
    """Run ``job(b0, b1)`` over batch chunks, in parallel when there are several; returns their results.

    A job does everything for its rows (input projection, time loop, gradient GEMMs) with single-threaded
    BLAS, so the cores never wait for each other inside a layer.
    """
    return _in_parallel([functools.partial(job, lo, hi) for lo, hi in _split(B)])


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


def _ptr(a):
    return None if a is None else a.ctypes.data


# -- workspace -------------------------------------------------------------------------------------------
# Temporaries that never leave a call (the gate gradients, h_{t-1} rows, the packed recurrent kernel) reuse
# one buffer per name and thread instead of fresh memory every call: a fresh multi-MB array is fresh pages,
# which the kernel must fault in and zero (measured: a third of a small layer's training step).
_WORKSPACE = threading.local()


class _Buffers(dict):
    """One thread's buffers by name: a dict that can be weakly referenced, equal only to itself."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


_ALL_BUFFERS: "weakref.WeakSet[_Buffers]" = weakref.WeakSet()  # every live thread's buffers, for workspace_bytes()


def _scratch(name: str, shape, dtype, align: int = 64) -> np.ndarray:
    """A C-contiguous, ``align``-byte aligned array of this thread's buffer ``name`` (contents undefined)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    buffers = _WORKSPACE.__dict__.get("buffers")
    if buffers is None:
        buffers = _WORKSPACE.buffers = _Buffers()
        _ALL_BUFFERS.add(buffers)
    raw = buffers.get(name)
    if raw is None or raw.nbytes < n * dtype.itemsize + align:
        raw = buffers[name] = np.empty(n * dtype.itemsize + align, np.uint8)
    return _aligned_in(raw, shape, dtype, align)


def _aligned_in(raw: np.ndarray, shape, dtype, align: int) -> np.ndarray:
    """A C-contiguous ``shape`` array of ``dtype`` inside the bytes ``raw`` (``align`` bytes larger than it
    needs), starting on an ``align``-byte boundary."""
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)


def _aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """A fresh C-contiguous array whose data starts on an ``align``-byte boundary (the fused forward streams
    whole 64-byte gate vectors into it past the cache)."""
    dtype = np.dtype(dtype)
    return _aligned_in(np.empty(math.prod(shape) * dtype.itemsize + align, np.uint8), shape, dtype, align)


def clear_workspace() -> None:
    """Free the calling thread's reusable buffers (they are kept between calls; see ``_scratch``)."""
    _WORKSPACE.__dict__.get("buffers", {}).clear()


def workspace_bytes() -> int:
    """Bytes held by the reusable buffers of all threads (the largest call of each kind keeps its size)."""
    return sum(raw.nbytes for buffers in list(_ALL_BUFFERS) for raw in list(buffers.values()))


# -- lstmlab's own float32 GEMM (src/lstmlab/_fast/sgemm.c) ----------------------------------------------
PACK_MIN_STEPS = 4  # shorter calls (generation: one step) use BLAS per step rather than pack the kernel


def _own_gemm(dtype) -> bool:
    return _fast.SGEMM and dtype == np.float32


def _layout(a):
    """(stored transposed?, leading dimension) of a 2-D float operand, or None when it has neither layout.

    Row slices and column slices of a matrix or of its transpose qualify: only the unit stride matters.
    """
    item = a.itemsize
    (s0, s1), (m, n) = a.strides, a.shape
    if (s1 == item or n == 1) and s0 % item == 0 and s0 // item >= max(n, 1):
        return 0, s0 // item
    if (s0 == item or m == 1) and s1 % item == 0 and s1 // item >= max(m, 1):
        return 1, s1 // item
    return None


def matmul(a, b, out=None, accumulate=False):
    """``a @ b`` (or ``out += a @ b``) for 2-D operands: the own float32 GEMM when built, else NumPy's BLAS.

    Transposed views (``x.T``) and row or column slices are taken as they are: the GEMM reads them in
    place or while packing. Runs in the calling thread; see :func:`parallel_matmul` for both cores.
    """
    la, lb = _layout(a), _layout(b)
    lc = None if out is None else _layout(out)
    if not (_own_gemm(a.dtype) and b.dtype == a.dtype and la and lb
            and (out is None or (lc is not None and lc[0] == 0 and out.dtype == a.dtype))):
        if accumulate:
            out += a @ b
            return out
        return np.matmul(a, b, out=out)
    (m, k), n = a.shape, b.shape[1]
    if out is None:
        out, lc = np.empty((m, n), a.dtype), (0, n)
    if _fast.KERNELS.lk_sgemm(la[0], lb[0], m, n, k, a.ctypes.data, la[1], b.ctypes.data, lb[1],
                              1.0 if accumulate else 0.0, out.ctypes.data, lc[1]) != 0:
        raise MemoryError("lstmlab's GEMM could not allocate its packing buffer")
    return out


PARALLEL_MIN_FLOPS = 4e6  # below this, one thread is faster than handing work to the pool


def parallel_matmul(a, b):
    """``a @ b`` for 2-D operands on all cores: rows of the result split across threads, or, when the
    inner dimension is the long one (weight gradients, ``x.T @ dy``), the inner dimension split and the
    partial products summed."""
    (m, k), n = a.shape, b.shape[1]
    if not _own_gemm(a.dtype) or 2.0 * m * n * k < PARALLEL_MIN_FLOPS or threads() < 2:
        return matmul(a, b)
    if m >= k:
        out = np.empty((m, n), a.dtype)
        _run(lambda lo, hi: matmul(a[lo:hi], b, out=out[lo:hi]), m)
        return out
    parts = _run(lambda lo, hi: matmul(a[:, lo:hi], b[lo:hi]), k)
    for p in parts[1:]:
        parts[0] += p
    return parts[0]


def dense_forward(x, kernel, bias=None, *, activation=None):
    """Same contract as :func:`lstmlab.functional.dense.dense_forward`, its GEMM on all cores."""
    return ref_dense.dense_forward(x, kernel, bias, activation=activation, matmul=parallel_matmul)


def dense_backward(dy, cache):
    """Same contract as :func:`lstmlab.functional.dense.dense_backward`, its GEMMs on all cores."""
    return ref_dense.dense_backward(dy, cache, matmul=parallel_matmul)


def _packed(W, transpose: bool, T: int):
    """The recurrent kernel (or its transpose) packed once for all steps of a call, or None.

    None means the time loop calls NumPy's BLAS at every step: float64, no own GEMM, or too few steps.
    """
    if not _own_gemm(W.dtype) or T < PACK_MIN_STEPS:
        return None
    k, n = (W.shape[1], W.shape[0]) if transpose else W.shape
    return _pack("packed", W, transpose, k, n)


def _pack(name: str, src, transpose: bool, k: int, n: int):
    """``src`` (k x n, or n x k when ``transpose``; C-contiguous rows) packed into this thread's buffer
    ``name``, aligned to 64 bytes: the packed rows are whole cache lines."""
    buf = _scratch(name, (int(_fast.KERNELS.lk_sgemm_packed_size(k, n)),), np.float32)
    _fast.KERNELS.lk_sgemm_pack(int(transpose), k, n, src.ctypes.data, src.shape[1], buf.ctypes.data)
    return buf


# -- the LSTM time loop split by hidden units (see the end of lstm_kernels.c) ------------------------------
UNIT_SPLIT = "auto"  # "auto", "always" (whenever possible) or "never": how the LSTM's time loop is split
_NO_THREADS = "lstmlab's C kernels could not start their worker threads"


def _unit_parts(B: int, T: int, H: int, dtype):
    """The unit ranges ``[(u0, u1), ...]`` of the parts when the LSTM loop is split by units, else None.

    Measured on 2 cores, H = 256 (min of 40 calls, forward / backward ms): B = 1, T = 500: by units
    2.3 / 3.9, by sequences 4.6 / 6.9 (one core idle); B = 4: 1.3 / 2.6 against 1.8 / 3.5; from B = 8 on,
    splitting the sequences is as fast or faster (B = 64: 15.8 / 29.6 against 16.5 / 32.4), as it needs
    no barrier. So "auto" splits by units only when the batch is too small to split. (Measured before the
    forward's cell was fused into its GEMM.)
    """
    if UNIT_SPLIT == "never" or not _own_gemm(dtype) or T < PACK_MIN_STEPS or H < 32:
        return None
    if UNIT_SPLIT == "auto" and B >= 2 * MIN_ROWS_PER_THREAD:
        return None
    n = min(threads(), H // 16)
    if n < 2:  # one allowed core: parts that meet at a barrier every step would take turns on it
        return None
    edges = [int(round(i * (H // 16) / n)) * 16 for i in range(n + 1)]
    edges[-1] = H
    return list(zip(edges[:-1], edges[1:]))


def _packed_rows_transposed(U, parts):
    """Per part of the backward, its rows of the recurrent kernel packed transposed: (4H, n)."""
    H = U.shape[0]
    # rows u0..u1: (n, 4H), read as (4H, n)
    return [_pack(f"packed{p}", U[u0:u1], True, 4 * H, u1 - u0) for p, (u0, u1) in enumerate(parts)]


def _covered(activation, recurrent_activation, mask, recurrent_mask, dtype) -> bool:
    return (available() and mask is None and recurrent_mask is None and dtype in _fast.DTYPES
            and get_activation(activation, argument="activation").name == "tanh"
            and get_activation(recurrent_activation, argument="recurrent_activation").name == "sigmoid")


def _kernel(name: str, dtype) -> object:
    return getattr(_fast.KERNELS, f"{name}_{'f32' if dtype == np.float32 else 'f64'}")


# -- LSTM ------------------------------------------------------------------------------------------------
def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *, activation="tanh",
                 recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.lstm.lstm_forward`.

    ``need_cache=False`` (inference: no backward will follow) returns ``None`` for the cache and keeps the
    per-step gates and cell states in this thread's reused buffers instead of fresh arrays (measured at
    (128, 50, 512, 512): fresh 52 MB arrays cost 4 ms of page faults per call, 5% of the forward).
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0, "c0": c0}, gates=4)
    if not _covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype):
        hs, final, cache = ref_lstm.lstm_forward(x, kernel, recurrent_kernel, bias, states["h0"], states["c0"],
                                                 activation=activation, recurrent_activation=recurrent_activation,
                                                 mask=mask, recurrent_mask=recurrent_mask)
        return hs, final, cache if need_cache else None
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    U = np.ascontiguousarray(recurrent_kernel)
    bias_c = None if bias is None else np.ascontiguousarray(bias)
    h0c, c0c = np.ascontiguousarray(states["h0"]), np.ascontiguousarray(states["c0"])
    fused = _own_gemm(dtype) and T >= PACK_MIN_STEPS
    parts = _unit_parts(B, T, H, dtype) if fused else None
    if need_cache:
        z = _aligned_empty((B, T, 4 * H), dtype)  # (B, T, 4H) the activated gates (and before, x @ kernel)
        cs = np.empty((B, T, H), dtype)  # (B, T, H)
    else:  # inference: the fused loop split by sequences never stores x @ kernel or the gates
        z = _scratch("gates", (B, T, 4 * H), dtype) if not fused or parts else None
        cs = _scratch("cs", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    if fused:
        _lstm_forward_fused(x, kernel, U, bias_c, h0c, c0c, z, hs, cs, parts, keep_gates=need_cache)
    else:
        kern = _kernel("lstm_forward", dtype)

        def job(b0, b1):
            # input projection of all steps: one GEMM per chunk, (b*T, D) @ (D, 4H)
            matmul(x[b0:b1].reshape(-1, D), kernel, out=z[b0:b1].reshape(-1, 4 * H))
            kern(T, B, H, _ptr(z), _ptr(U), _ptr(bias_c), _ptr(h0c), _ptr(c0c), _ptr(hs), _ptr(cs), b0, b1)

        _run(job, B)
    cache = dict(fast="lstm", x=x, gates=z, hs=hs, cs=cs, h0=h0c, c0=c0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None) if need_cache else None
    return hs, (hs[:, -1].copy(), cs[:, -1].copy()), cache


def _lstm_forward_fused(x, kernel, U, bias, h0, c0, z, hs, cs, parts, keep_gates):
    """The float32 forward in one C call (``lstm_forward_fused_run_f32``): the input projection and the cell
    fused into the recurrent GEMM's register tiles, both kernels packed once with their gate columns
    regrouped by 16 units; the batch split across lstmlab's C worker threads (``pool.c``), or the units by
    ``parts`` when the batch is too small (see :func:`_unit_parts`; z is then needed for x @ kernel). Fills
    hs, cs and, with keep_gates, z (the gates)."""
    B, T, D = x.shape
    H = U.shape[0]
    lk = _fast.KERNELS
    layout = _layout(kernel)
    if layout is None or layout[0]:  # the packing reads the kernel's rows
        kernel = np.ascontiguousarray(kernel)
        layout = (0, kernel.shape[1])
    packed_kernel = _scratch("packed_kernel", (int(lk.lstm_fused_packed_size(D, H)),), np.float32)
    packed = _scratch("packed", (int(lk.lstm_fused_packed_size(H, H)),), np.float32)
    if parts:  # unit blocks of 16; the last one partial when 16 does not divide H
        edges = [u0 // 16 for u0, _ in parts] + [-(-H // 16)]
    else:
        edges = [b0 for b0, _ in _split(B)] + [B]
    edges = np.array(edges, np.int64)
    if lk.lstm_forward_fused_run_f32(T, B, D, H, _ptr(x), _ptr(kernel), layout[1], _ptr(U), _ptr(bias), _ptr(h0),
                                     _ptr(c0), _ptr(z), _ptr(hs), _ptr(cs), int(keep_gates), _ptr(packed_kernel),
                                     _ptr(packed), len(edges) - 1, int(bool(parts)), _ptr(edges)) != 0:
        raise RuntimeError(_NO_THREADS)


def lstm_backward(dhs, dh_T, dc_T, cache):
    """Same contract as :func:`lstmlab.functional.lstm.lstm_backward`; accepts either path's cache."""
    if cache.get("fast") != "lstm":
        return ref_lstm.lstm_backward(dhs, dh_T, dc_T, cache)
    z, hs, cs, kernel, U = cache["gates"], cache["hs"], cache["cs"], cache["kernel"], cache["recurrent_kernel"]
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh = upstream("dh_T", dh_T, (B, H), dtype)
    dc = upstream("dc_T", dc_T, (B, H), dtype)
    dh = np.zeros((B, H), dtype) if dh is None else np.array(dh, dtype, order="C")  # in: dh_T, out: dh0
    dc = np.zeros((B, H), dtype) if dc is None else np.array(dc, dtype, order="C")  # in: dc_T, out: dc0
    dhs = None if dhs is None else np.ascontiguousarray(dhs)  # (B, T, H)
    dz = _scratch("dz", z.shape, dtype)  # (B, T, 4H)
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D), each chunk writes its rows
    parts = _unit_parts(B, T, H, dtype)
    if parts:
        packs = _packed_rows_transposed(U, parts)
        pointers = (ctypes.c_void_p * len(packs))(*[_ptr(a) for a in packs])
        edges = np.array([u0 for u0, _ in parts] + [H], np.int64)
        if _fast.KERNELS.lstm_backward_units_run_f32(T, B, H, _ptr(z), pointers, _ptr(cache["c0"]), _ptr(cs),
                                                     _ptr(dhs), _ptr(dh), _ptr(dc), _ptr(dz), _ptr(edges),
                                                     len(parts)) != 0:
            raise RuntimeError(_NO_THREADS)
        dkernel, drecurrent_kernel, dbias = _weight_grads_all_rows(cache, dz, dx)
        return ref_lstm.LSTMGrads(dx, dh, dc, dkernel, drecurrent_kernel, dbias)
    kern = _kernel("lstm_backward", dtype)
    packed = _packed(U, True, T)

    def job(b0, b1):
        kern(T, B, H, _ptr(z), _ptr(U), _ptr(packed), _ptr(cache["c0"]), _ptr(cs), _ptr(dhs), _ptr(dh), _ptr(dc),
             _ptr(dz), b0, b1)
        return _weight_grads(cache["x"][b0:b1], dz[b0:b1], dz[b0:b1], cache["h0"][b0:b1], hs[b0:b1], kernel,
                             cache["has_bias"], dx_out=dx[b0:b1])

    dkernel, drecurrent_kernel, dbias = _sum_chunks(_run(job, B))
    return ref_lstm.LSTMGrads(dx, dh, dc, dkernel, drecurrent_kernel, dbias)


def _sum_chunks(parts):
    """The weight gradients of the batch chunks, summed (dx was written in place, chunk by chunk)."""
    parts = [p[1:] for p in parts]
    if len(parts) > 1:
        for p in parts[1:]:
            for total, g in zip(parts[0], p):
                if total is not None:
                    total += g
    return parts[0]


def _weight_grads_all_rows(cache, dz, dx):
    """After a unit-split loop: the gradient GEMMs over all B*T rows, each on both cores."""
    x, hs, kernel = cache["x"], cache["hs"], cache["kernel"]
    B, T, H = hs.shape
    h_prev = _scratch("h_prev", hs.shape, hs.dtype)  # (B, T, H) h_{t-1} for every step
    h_prev[:, 0], h_prev[:, 1:] = cache["h0"], hs[:, :-1]
    dz2, dx2 = dz.reshape(B * T, -1), dx.reshape(B * T, -1)  # (N, 4H), (N, D)
    _run(lambda lo, hi: matmul(dz2[lo:hi], kernel.T, out=dx2[lo:hi]), B * T)
    dkernel = parallel_matmul(x.reshape(B * T, -1).T, dz2)  # (D, 4H)
    drecurrent_kernel = parallel_matmul(h_prev.reshape(B * T, H).T, dz2)  # (H, 4H)
    return dkernel, drecurrent_kernel, (dz2.sum(axis=0) if cache["has_bias"] else None)


def _weight_grads(x, da, du, h0, hs, kernel, has_bias, bias_rows=False, dx_out=None):
    """The gradient GEMMs for one batch chunk, batch-first rows (runs in the chunk's thread)."""
    h_prev = _scratch("h_prev", hs.shape, hs.dtype)  # (b, T, H) h_{t-1} for every step
    h_prev[:, 0], h_prev[:, 1:] = h0, hs[:, :-1]
    return weight_grads(x, da, du, h_prev, kernel, has_bias, bias_rows, matmul=matmul, dx_out=dx_out)


# -- GRU -------------------------------------------------------------------------------------------------
def gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None, *, activation="tanh",
                recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.gru.gru_forward`; ``need_cache`` as in :func:`lstm_forward`."""
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=3, bias_rows=2)
    if not _covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype):
        hs, h, cache = ref_gru.gru_forward(x, kernel, recurrent_kernel, bias, states["h0"], activation=activation,
                                           recurrent_activation=recurrent_activation, mask=mask,
                                           recurrent_mask=recurrent_mask)
        return hs, h, cache if need_cache else None
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    rbias = None if bias is None else np.ascontiguousarray(bias[1])
    ibias = None if bias is None else bias[0]
    U = np.ascontiguousarray(recurrent_kernel)
    h0c = np.ascontiguousarray(states["h0"])
    if need_cache:
        a = np.empty((B, T, 3 * H), dtype)  # (B, T, 3H) input projection, then the gates z, r, hh
        uh = np.empty((B, T, H), dtype)  # (B, T, H)
    else:
        a, uh = _scratch("gates", (B, T, 3 * H), dtype), _scratch("uh", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    u = np.empty((B, 3 * H), dtype)  # (B, 3H) per-step scratch, rows owned by their thread
    kern = _kernel("gru_forward", dtype)
    packed = _packed(U, False, T)

    def job(b0, b1):
        matmul(x[b0:b1].reshape(-1, D), kernel, out=a[b0:b1].reshape(-1, 3 * H))  # (b*T, 3H)
        if ibias is not None:
            a[b0:b1] += ibias
        kern(T, B, H, _ptr(a), _ptr(U), _ptr(packed), _ptr(rbias), _ptr(h0c), _ptr(hs), _ptr(uh), _ptr(u), b0, b1)

    _run(job, B)
    cache = dict(fast="gru", x=x, gates=a, uh=uh, hs=hs, h0=h0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None) if need_cache else None
    return hs, hs[:, -1].copy(), cache


def gru_backward(dhs, dh_T, cache):
    """Same contract as :func:`lstmlab.functional.gru.gru_backward`; accepts either path's cache."""
    if cache.get("fast") != "gru":
        return ref_gru.gru_backward(dhs, dh_T, cache)
    gates, hs, kernel, U = cache["gates"], cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs = upstream("dhs", dhs, (B, T, H), dtype)
    dh = upstream("dh_T", dh_T, (B, H), dtype)
    dh = np.zeros((B, H), dtype) if dh is None else np.array(dh, dtype, order="C")
    dhs = None if dhs is None else np.ascontiguousarray(dhs)
    da, du = _scratch("da", gates.shape, dtype), _scratch("du", gates.shape, dtype)  # (B, T, 3H) each
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = _kernel("gru_backward", dtype)
    packed = _packed(U, True, T)

    def job(b0, b1):
        kern(T, B, H, _ptr(gates), _ptr(cache["uh"]), _ptr(hs), _ptr(cache["h0"]), _ptr(U), _ptr(packed),
             _ptr(dhs), _ptr(dh), _ptr(da), _ptr(du), b0, b1)
        return _weight_grads(cache["x"][b0:b1], da[b0:b1], du[b0:b1], cache["h0"][b0:b1], hs[b0:b1], kernel,
                             cache["has_bias"], bias_rows=True, dx_out=dx[b0:b1])

    dkernel, drecurrent_kernel, dbias = _sum_chunks(_run(job, B))
    return ref_gru.GRUGrads(dx, dh, dkernel, drecurrent_kernel, dbias)
