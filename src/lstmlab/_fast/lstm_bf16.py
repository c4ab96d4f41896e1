"""The LSTM's bfloat16 inference path: :func:`lstm_bf16_forward`, the C loop of ``lstm_bf16.c``.

What ``LSTM(units, dtype="bfloat16")`` runs when it is not training: bf16
operands in both products, float32 sums and a float32 cell (the math and its
NumPy reference: :mod:`lstmlab.functional.bf16`). The C loop runs when the
kernels were built and the CPU has AVX512_BF16 (``lk_cpu_has_bf16``, asked of
the loaded variant: 0 in the AVX2 and generic ones, so ``LSTMLAB_ISA=avx2``
runs the reference); otherwise the reference runs, with the same numbers up
to the order of float32 sums.

* both kernels are packed into bf16 panels once per weights change
  (:func:`packed_weights`): the packing is O(weights) like a one-step forward,
  so a sampler calling one step at a time would otherwise pay it at every
  token;
* the batch is split across the cores with :func:`.parallel.run`, each thread
  running the whole time loop for its rows (no per-step barrier); a batch
  too small to split (B < 8) runs on one core (there is no unit split here);
* masks: the rows are sorted by length (:func:`.recurrent.padded_rows`) and
  each step computes the running rows only; a hole inside them (a padded
  step between valid ones) is computed and then carried, as ``cells.h`` says.
"""
from __future__ import annotations

import collections
import ctypes
import threading
import weakref

import numpy as np

from .. import _fast
from ..functional import bf16 as ref_bf16
from ..functional._validate import recurrent_args
from .parallel import run, split
from .recurrent import count_call, padded_rows, ptr
from .workspace import scratch

# Calls that ran in C, by kind ("forward", "forward_mask"): what tests read to know the C path ran.
CALLS: collections.Counter = collections.Counter()
PACKS: collections.Counter = collections.Counter()  # "pack": times the weights were packed (the cache missed)
_P, _I = ctypes.c_void_p, ctypes.c_int64
_ARGTYPES = {"lstm_bf16_forward": ([_I] * 4 + [_P] * 11 + [_I, _I], None),
             "lstm_bf16_pack": ([_I, _I, _P, _I, _P], None),
             "lstm_bf16_packed_size": ([_I, _I], _I),
             "lk_cpu_has_bf16": ([], ctypes.c_int)}
_DECLARED: dict = {}  # id(kernels library) -> whether its CPU runs the C loop


def available() -> bool:
    """True when the C loop runs: kernels built with ``lstm_bf16.c`` and the CPU has AVX512_BF16."""
    lib = _fast.KERNELS
    if lib is None or not hasattr(lib, "lk_cpu_has_bf16"):
        return False
    if id(lib) not in _DECLARED:
        for name, (args, res) in _ARGTYPES.items():
            getattr(lib, name).argtypes, getattr(lib, name).restype = args, res
        _DECLARED[id(lib)] = bool(lib.lk_cpu_has_bf16())
    return _DECLARED[id(lib)]


# -- the packed bf16 weights, cached per weights --------------------------------------------------------
_CACHE_SIZE = 64  # layers whose packed weights are kept (least recently used dropped; an entry also goes
# when its kernel array is freed, so this bounds only the live bf16 layers that take turns without thrashing)
_CACHE: collections.OrderedDict = collections.OrderedDict()  # (id(kernel), id(U)) -> (kernel, U, packed k, u)
_CACHE_LOCK = threading.Lock()
try:
    _memcmp = ctypes.CDLL(None).memcmp
    _memcmp.argtypes, _memcmp.restype = [_P, _P, ctypes.c_size_t], ctypes.c_int
except (OSError, AttributeError):  # no C library to ask (not on Linux or macOS): NumPy compares
    _memcmp = None


def _same(a: np.ndarray, snapshot: np.ndarray) -> bool:
    """True when ``a`` holds exactly the bytes of ``snapshot`` (both C-contiguous float32)."""
    if a.shape != snapshot.shape:
        return False
    if _memcmp is not None:
        return _memcmp(a.ctypes.data, snapshot.ctypes.data, a.nbytes) == 0
    return bool(np.array_equal(a.view(np.uint32), snapshot.view(np.uint32)))


def _pack(W: np.ndarray, H: int) -> np.ndarray:
    lib = _fast.KERNELS
    packed = np.empty(int(lib.lstm_bf16_packed_size(W.shape[0], H)), np.uint16)
    lib.lstm_bf16_pack(W.shape[0], H, ptr(W), W.shape[1], ptr(packed))
    return packed


def packed_weights(kernel: np.ndarray, recurrent_kernel: np.ndarray):
    """``(packed kernel, packed recurrent kernel)``, bf16 panels of ``lstm_bf16_pack``, packed once per weights.

    The cache is keyed on the weight arrays' identity; the version is their content: a float32 snapshot of
    the arrays packed last is compared byte for byte (memcmp, ~1/4 the cost of packing), so a weight written
    in place (``set_weights``, ``load_weights``, an assignment to ``layer.kernel.value``) is never served
    stale. Arguments: C-contiguous float32 (D, 4H) and (H, 4H).
    """
    H = recurrent_kernel.shape[0]
    key = (id(kernel), id(recurrent_kernel))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and _same(kernel, hit[0]) and _same(recurrent_kernel, hit[1]):
            _CACHE.move_to_end(key)
            return hit[2], hit[3]
    packed = (_pack(kernel, H), _pack(recurrent_kernel, H))
    PACKS["pack"] += 1
    with _CACHE_LOCK:
        if key not in _CACHE:  # dropped with the kernel array (a freed array's id can be reused)
            weakref.finalize(kernel, _forget, key)
        _CACHE[key] = (kernel.copy(), recurrent_kernel.copy()) + packed
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return packed


def _forget(key) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(key, None)


def clear_cache() -> None:
    """Forget every packed weight (they are rebuilt on the next call)."""
    with _CACHE_LOCK:
        _CACHE.clear()


# -- the forward -------------------------------------------------------------------------------------------
def lstm_bf16_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *, mask=None):
    """Same contract as :func:`lstmlab.functional.bf16.lstm_bf16_forward`: ``hs (B, T, H), (h_T, c_T)``.

    Runs ``lstm_bf16_forward`` of ``lstm_bf16.c`` when :func:`available`, else the NumPy reference.
    Inputs of another float dtype are converted to float32 (the master weights of a bf16 layer are float32).
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0, "c0": c0}, gates=4)
    f32 = lambda a: None if a is None else np.ascontiguousarray(a, np.float32)  # noqa: E731
    x, kernel, U, bias = f32(x), f32(kernel), f32(recurrent_kernel), f32(bias)
    h0c, c0c = f32(states["h0"]), f32(states["c0"])
    if not available():
        return ref_bf16.lstm_bf16_forward(x, kernel, U, bias, h0c, c0c, mask=mask)
    packed_kernel, packed_recurrent = packed_weights(kernel, U)
    valid, order = padded_rows(mask, B, T, split(B))  # (B, T) uint8 in the loop's row order, or None
    if order is not None:  # the loop's row order (copies)
        x, h0c, c0c = x[order], h0c[order], c0c[order]
    hs = np.empty((B, T, H), np.float32)  # (B, T, H)
    c = np.empty((B, H), np.float32)  # (B, H) c0 in, c_T out
    x16 = scratch("bf16_x", (B, T, 2 * ((D + 1) // 2)), np.uint16)  # (B, T, Dp) bf16(x)
    h16 = scratch("bf16_h", (2, B, 2 * ((H + 1) // 2)), np.uint16)  # (2, B, Hp) bf16(h_{t-1}), bf16(h_t)
    kern = _fast.KERNELS.lstm_bf16_forward

    def job(b0, b1):
        kern(T, B, D, H, ptr(x), ptr(packed_kernel), ptr(packed_recurrent), ptr(bias), ptr(h0c), ptr(c0c),
             ptr(hs), ptr(c), ptr(x16), ptr(h16), ptr(valid), b0, b1)

    run(job, B)
    count_call(CALLS, "forward", valid, None)
    h_T = hs[:, -1].copy()  # (B, H) after each row's last valid step (padded steps carry it)
    if order is not None:  # back to the caller's row order
        inverse = np.argsort(order)
        hs, h_T, c = hs[inverse], h_T[inverse], c[inverse]
    return hs, (h_T, c)
