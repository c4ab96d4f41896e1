"""GEMM dispatch: lstmlab's own float32 GEMM where it was built, else NumPy's BLAS.

The own GEMM is ``sgemm.c`` in the AVX-512 variant and ``sgemm_avx2.c`` in
the AVX2 one (``_fast.OWN_GEMM``). The AVX-512 variant uses it for every
float32 product (:func:`own_gemm`, ``_fast.SGEMM``: with the fused float32
engines that sit on its register tiles); the AVX2 variant for the small
products of the time loops only (:func:`packed_for_steps`: the recurrent
kernel packed once per call instead of by BLAS at every step), the others
staying on NumPy's OpenBLAS, whose kernels measured faster on large products. The own GEMM takes transposed views and row or column slices as they are
(it reads them in place or while packing). A kernel used by many products (the
recurrent kernel at every step, the output layer's kernel in every block) is
packed once per call into a per-thread buffer and multiplied from there.
``LSTMLAB_SGEMM=0`` turns the own GEMM off (see :mod:`lstmlab._fast`).
"""
from __future__ import annotations

import numpy as np

from .. import _fast
from .parallel import run, threads
from .workspace import scratch

PACK_MIN_STEPS = 4  # shorter calls (generation: one step) use BLAS per step rather than pack the kernel
PARALLEL_MIN_FLOPS = 4e6  # below this, one thread is faster than handing work to the pool
# The AVX2 variant's own GEMM runs a time loop's products up to this many multiply-adds per step and thread
# (rows x k x n); above, NumPy's BLAS at every step. Measured in the LSTM loops (min of 15, ms, own / BLAS):
# (32, 100, 64, 128), 16 x 128 x 512 per step: inference 6.5 / 6.5, training 18 / 22; (64, 100, 128, 256),
# 32 x 256 x 1024: inference 48 / 43, training 128 / 134; (128, 50, 512, 512): 201 / 178, 579 / 534. (Here
# BLAS is OpenBLAS's AVX-512 kernel, 1.5x the AVX2 tile's speed on large products.)
AVX2_STEP_MAX = 1 << 22


def own_gemm(dtype) -> bool:
    """True when products of ``dtype`` run on lstmlab's own AVX-512 GEMM and the fused float32 engines
    (float32, the AVX-512 variant, not turned off). The AVX2 variant's own GEMM: :func:`packed_for_steps`."""
    return _fast.SGEMM and dtype == np.float32


def operand_layout(a):
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



def row_major(a):
    """``(a, ld)``: ``a`` as the C kernels' packing reads it, rows ``ld`` floats apart; a view when its rows already
    have unit stride (a row or column slice of a matrix), else a C-contiguous copy (a transposed view)."""
    layout = operand_layout(a)
    if layout is None or layout[0]:
        a = np.ascontiguousarray(a)
        return a, a.shape[1]
    return a, layout[1]

def matmul(a, b, out=None, accumulate=False):
    """``a @ b`` (or ``out += a @ b``) for 2-D operands: the own float32 GEMM when built, else NumPy's BLAS.

    Transposed views (``x.T``) and row or column slices are taken as they are: the GEMM reads them in
    place or while packing. Runs in the calling thread; see :func:`parallel_matmul` for both cores.
    """
    la, lb = operand_layout(a), operand_layout(b)
    lc = None if out is None else operand_layout(out)
    if not (own_gemm(a.dtype) and b.dtype == a.dtype and la and lb
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


def parallel_matmul(a, b):
    """``a @ b`` for 2-D operands on all cores: rows of the result split across threads, or, when the
    inner dimension is the long one (weight gradients, ``x.T @ dy``), the inner dimension split and the
    partial products summed."""
    (m, k), n = a.shape, b.shape[1]
    if not own_gemm(a.dtype) or 2.0 * m * n * k < PARALLEL_MIN_FLOPS or threads() < 2:
        return matmul(a, b)
    if m >= k:
        out = np.empty((m, n), a.dtype)
        run(lambda lo, hi: matmul(a[lo:hi], b, out=out[lo:hi]), m)
        return out
    parts = run(lambda lo, hi: matmul(a[:, lo:hi], b[lo:hi]), k)
    for p in parts[1:]:
        parts[0] += p
    return parts[0]


def pack(name: str, src, transpose: bool, k: int, n: int):
    """``src`` (k x n, or n x k when ``transpose``; C-contiguous rows) packed into this thread's buffer
    ``name``, aligned to 64 bytes: the packed rows are whole cache lines."""
    buf = scratch(name, (int(_fast.KERNELS.lk_sgemm_packed_size(k, n)),), np.float32)
    _fast.KERNELS.lk_sgemm_pack(int(transpose), k, n, src.ctypes.data, src.shape[1], buf.ctypes.data)
    return buf


def packed_for_steps(W, transpose: bool, T: int, rows: int | None = None):
    """The recurrent kernel (or its transpose) packed once for all steps of a call, or None.

    None means the time loop calls NumPy's BLAS at every step: float64, no own GEMM (the generic variant), or
    too few steps. The buffer's layout is the loaded variant's (panels of 64 columns with AVX-512, 16 with AVX2).
    The AVX2 variant packs only when the caller says how many ``rows`` one thread multiplies per step and the
    product is small enough (see ``AVX2_STEP_MAX``): beyond, BLAS's per-call packing is paid back.
    """
    if not (_fast.OWN_GEMM and W.dtype == np.float32) or T < PACK_MIN_STEPS:
        return None
    k, n = (W.shape[1], W.shape[0]) if transpose else W.shape
    if not _fast.SGEMM and (rows is None or rows * k * n > AVX2_STEP_MAX):
        return None
    return pack("packed", W, transpose, k, n)


def prepacked(a, packed, n: int, out) -> None:
    """``out = a @ B`` for a C-contiguous ``a`` (m, k) and ``B`` (k, n) packed by :func:`pack`."""
    m, k = a.shape
    _fast.KERNELS.lk_sgemm_prepacked_steps(1, m, n, k, a.ctypes.data, k, 0, packed.ctypes.data, 0.0,
                                           out.ctypes.data, out.strides[0] // out.itemsize, 0)
