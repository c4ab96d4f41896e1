"""Loader of the optional C kernels and of the BLAS they call.

The kernels (``cells_generic.c``: the LSTM and GRU time loops for float32
and float64; ``lstm_avx512.c``: the float32 LSTM engine; ``sgemm.c``: the own
GEMM; ``pool.c``: the C worker threads) are built at install time when a C
compiler is present. They call NumPy's own OpenBLAS (the ILP64
``scipy_openblas`` that NumPy's wheels ship) through function pointers, so no
BLAS is linked or installed. When either piece is missing, ``KERNELS`` is
``None`` and ``REASON`` says why; lstmlab then runs on the NumPy reference
path.

The Python side of the fast path is this package's modules, one job each:
``parallel`` (thread count, Python worker pool), ``workspace`` (per-thread
reused buffers), ``gemm`` (own GEMM or BLAS, packing), ``recurrent`` (what
the per-cell loops share), ``lstm`` and ``gru`` (the per-cell fast loops) and
``dense`` (the Dense and fused output layers on all cores). This loader
imports none of them.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

KERNELS = None
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SET_THREADS_LOCAL = None
REASON = ""
SGEMM = False  # lstmlab's own AVX-512 float32 GEMM (sgemm.c) was built; LSTMLAB_SGEMM=0 turns it off


def available() -> bool:
    """True when the C kernels and NumPy's OpenBLAS were found (see ``REASON`` if not)."""
    return KERNELS is not None


def _find_kernels():
    here = os.path.dirname(__file__)
    found = glob.glob(os.path.join(here, "_kernels*.so")) + glob.glob(os.path.join(here, "_kernels*.pyd"))
    return found[0] if found else None


def _find_openblas():
    numpy_dir = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(numpy_dir, os.pardir, "numpy.libs", "libscipy_openblas64*"))
    candidates += glob.glob(os.path.join(numpy_dir, ".dylibs", "libscipy_openblas64*"))
    return candidates[0] if candidates else None


def _load():
    global KERNELS, SET_THREADS_LOCAL, REASON, SGEMM
    if os.environ.get("LSTMLAB_FAST", "1") == "0":
        REASON = "disabled by LSTMLAB_FAST=0"
        return
    path = _find_kernels()
    if path is None:
        REASON = "the C kernels were not built (no C compiler at install time)"
        return
    blas_path = _find_openblas()
    if blas_path is None:
        REASON = "NumPy's bundled OpenBLAS (scipy_openblas64) was not found"
        return
    try:
        blas = ctypes.CDLL(blas_path)
        pointers = [ctypes.cast(getattr(blas, f"scipy_cblas_{name}64_"), ctypes.c_void_p).value
                    for name in ("sgemm", "dgemm", "sgemv", "dgemv")]
        SET_THREADS_LOCAL = blas.openblas_set_num_threads_local
        SET_THREADS_LOCAL.argtypes, SET_THREADS_LOCAL.restype = [ctypes.c_int], ctypes.c_int
        lib = ctypes.CDLL(path)
    except (OSError, AttributeError) as exc:
        REASON = f"could not load the kernels or BLAS symbols ({exc})"
        SET_THREADS_LOCAL = None
        return
    P, I = ctypes.c_void_p, ctypes.c_int64
    lib.set_blas.argtypes, lib.set_blas.restype = [P] * 4, None
    lib.set_blas(*pointers)
    for sfx in ("f32", "f64"):
        getattr(lib, f"lstm_forward_{sfx}").argtypes = [I, I, I] + [P] * 7 + [I, I] + [P] * 4
        getattr(lib, f"lstm_backward_{sfx}").argtypes = [I, I, I] + [P] * 9 + [I, I] + [P] * 3
        getattr(lib, f"gru_forward_{sfx}").argtypes = [I, I, I] + [P] * 8 + [I, I]
        getattr(lib, f"gru_backward_{sfx}").argtypes = [I, I, I] + [P] * 10 + [I, I]
        for name in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward"):
            getattr(lib, f"{name}_{sfx}").restype = None
    C = ctypes.c_int
    lib.lstm_backward_units_run_f32.argtypes = [I, I, I] + [P] * 12 + [C]
    lib.lstm_backward_units_run_f32.restype = C
    lib.lstm_forward_fused_run_f32.argtypes = [I, I, I, I, P, P, I] + [P] * 11 + [C, P, P, C, C, P]
    lib.lstm_forward_fused_run_f32.restype = C
    lib.lstm_fused_packed_size.argtypes, lib.lstm_fused_packed_size.restype = [I, I], I
    lib.lk_sgemm_available.argtypes, lib.lk_sgemm_available.restype = [], ctypes.c_int
    lib.lk_sgemm.argtypes = [ctypes.c_int, ctypes.c_int, I, I, I, P, I, P, I, ctypes.c_float, P, I]
    lib.lk_sgemm.restype = ctypes.c_int
    lib.lk_sgemm_packed_size.argtypes, lib.lk_sgemm_packed_size.restype = [I, I], I
    lib.lk_sgemm_pack.argtypes, lib.lk_sgemm_pack.restype = [ctypes.c_int, I, I, P, I, P], None
    lib.lk_sgemm_prepacked_steps.argtypes = [I, I, I, I, P, I, I, P, ctypes.c_float, P, I, I]
    lib.lk_sgemm_prepacked_steps.restype = None
    KERNELS = lib
    SGEMM = bool(lib.lk_sgemm_available()) and os.environ.get("LSTMLAB_SGEMM", "1") != "0"


_load()
