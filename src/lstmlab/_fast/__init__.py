"""Loader of the optional C kernels and of the BLAS they call.

The kernels (``cells_generic.c``: the LSTM time loops for float32 and
float64; ``gru_loops.c`` and ``rnn_loop.c``: the GRU's and the simple
RNN's; ``peephole_loop.c``, ``projection_loop.c`` and ``layernorm_loop.c``:
the LSTM variants'; ``lstm_avx512.c``, ``gru_avx512.c`` and ``lstm_fused_avx2.c``: the fused
float32 engines; ``lstm_bf16.c``: the bf16 LSTM inference loop; ``sgemm.c`` and
``sgemm_avx2.c``: the own GEMM; ``pool.c``: the C worker threads) are built at
install time when a C compiler is present. They call NumPy's own OpenBLAS (the ILP64
``scipy_openblas`` that NumPy's wheels ship) through function pointers, so no
BLAS is linked or installed. When either piece is missing, ``KERNELS`` is
``None`` and ``REASON`` says why; lstmlab then runs on the NumPy reference
path.

The Python side of the fast path is this package's modules, one job each:
``parallel`` (thread count, Python worker pool), ``workspace`` (per-thread
reused buffers), ``gemm`` (own GEMM or BLAS, packing), ``recurrent`` (what
the per-cell loops share), ``lstm``, ``gru``, ``gru_reset_before``, ``rnn``,
``peephole``, ``projection``, ``layernorm`` and ``lstm_bf16`` (the per-cell
fast loops; the last four declare their own C argument types) and ``dense``
(the Dense and fused output layers on all cores). This loader imports none
of them.

Instruction sets: setup.py builds the same C files three times on x86-64,
``_kernels_avx512`` (x86-64-v4), ``_kernels_avx2`` (x86-64-v3) and
``_kernels_generic`` (any x86-64 CPU; the only one elsewhere). At import the
loader asks the generic variant what the CPU runs (``lk_cpu_level`` in
``cpu.c``: CPUID and the OS's register saving) and loads the best of the
built variants it runs; ``LSTMLAB_ISA=avx512|avx2|generic`` forces one and is
refused (ValueError) when that one was not built or this CPU cannot run it.
``ISA`` is the variant loaded, ``ISA_REASON`` says why it was chosen and what
else was built and runnable. What each variant has, beyond the generic cell
loops on NumPy's BLAS (same results everywhere, tests hold each to the
reference):

* ``avx512``: the own GEMM (``sgemm.c``) and the fused float32 engines on it
  (``lstm_avx512.c``, ``gru_avx512.c``): ``OWN_GEMM`` and ``SGEMM`` True; and,
  on a CPU with AVX512_BF16 (``lk_cpu_has_bf16``), the bf16 LSTM loop;
* ``avx2``: its own GEMM (``sgemm_avx2.c``, 8-float vectors) for the float32
  LSTM's per-step products where they are small (see ``gemm.AVX2_STEP_MAX``),
  the fused float32 LSTM forward in 8-float vectors (``lstm_fused_avx2.c``),
  the float32 LSTM cell in AVX2 registers (``lstm_avx2.c``) and the LSTM loops
  split by units for batches too small to split (``lstm_units_avx2.c``):
  ``OWN_GEMM`` True, ``SGEMM`` False (the AVX-512 engines are not there);
* ``generic``: neither, ``OWN_GEMM`` and ``SGEMM`` False.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import os

import numpy as np

KERNELS = None
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SET_THREADS_LOCAL = None
REASON = ""
OWN_GEMM = False  # lstmlab's own float32 GEMM was built (sgemm.c, AVX-512; sgemm_avx2.c, AVX2); LSTMLAB_SGEMM=0: off
SGEMM = False  # the AVX-512 variant's own GEMM and the fused float32 engines on it (lstm_avx512.c, gru_avx512.c)
ISAS = ("avx512", "avx2", "generic")  # the variants setup.py can build, best first
ISA = None  # the variant loaded, one of ISAS (None: no kernels)
ISA_REASON = ""  # why that variant: forced or chosen, which were built, which this CPU runs


def available() -> bool:
    """True when the C kernels and NumPy's OpenBLAS were found (see ``REASON`` if not)."""
    return KERNELS is not None


def _built_variants() -> dict:
    """{variant: path} of the kernel variants installed next to this file, best first."""
    here = os.path.dirname(__file__)
    built = {}
    for isa in ISAS:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:  # e.g. .cpython-311-x86_64-linux-gnu.so, .pyd
            path = os.path.join(here, f"_kernels_{isa}{suffix}")
            if os.path.exists(path):
                built[isa] = path
                break
    return built


def _cpu_runs(generic_path: str) -> tuple:
    """The variants this CPU can execute, best first, from ``lk_cpu_level`` of the generic variant (built for
    plain x86-64, so loading and calling it is safe on any x86-64 CPU; on other CPUs it answers 0)."""
    probe = ctypes.CDLL(generic_path)
    probe.lk_cpu_level.argtypes, probe.lk_cpu_level.restype = [], ctypes.c_int
    level = probe.lk_cpu_level()  # 2: x86-64-v4, 1: x86-64-v3, 0: neither
    return ISAS[2 - max(0, min(2, level)):]


def _requested_isa():
    """LSTMLAB_ISA, checked (None when unset or empty)."""
    forced = os.environ.get("LSTMLAB_ISA", "").strip().lower()
    if forced and forced not in ISAS:
        raise ValueError(f"LSTMLAB_ISA: expected one of {', '.join(ISAS)} (or unset, for the best this CPU runs), "
                         f"got {os.environ['LSTMLAB_ISA']!r}")
    return forced or None


def _find_kernels(forced):
    """(path, variant, why) of the variant to load; path None when none can be (why says so). Raises
    ValueError when the forced variant was not built or this CPU cannot run it: a forced variant is never
    replaced by another one behind the user's back."""
    built = _built_variants()
    if not built:
        return None, None, "the C kernels were not built (no C compiler at install time)"
    if "generic" not in built:  # cannot happen with setup.py (all variants build from the same sources)
        return None, None, (f"the generic kernel variant, which checks what this CPU runs, was not built "
                            f"(built: {', '.join(built)})")
    runs = _cpu_runs(built["generic"])
    facts = f"built: {', '.join(built)}; this CPU runs: {', '.join(runs)}"
    if forced:
        if forced not in built:
            raise ValueError(f"LSTMLAB_ISA={forced}: that kernel variant was not built ({facts}); expected one "
                             f"of {', '.join(built)}")
        if forced not in runs:
            raise ValueError(f"LSTMLAB_ISA={forced}: this CPU cannot run that kernel variant ({facts}); expected "
                             f"one of {', '.join(i for i in runs if i in built)}")
        return built[forced], forced, f"{forced}: forced by LSTMLAB_ISA ({facts})"
    best = next(i for i in ISAS if i in built and i in runs)  # generic is built and always runs
    return built[best], best, f"{best}: the best variant built that this CPU runs ({facts})"


def _find_openblas():
    numpy_dir = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(numpy_dir, os.pardir, "numpy.libs", "libscipy_openblas64*"))
    candidates += glob.glob(os.path.join(numpy_dir, ".dylibs", "libscipy_openblas64*"))
    return candidates[0] if candidates else None


def _load():
    global KERNELS, SET_THREADS_LOCAL, REASON, OWN_GEMM, SGEMM, ISA, ISA_REASON
    forced = _requested_isa()  # a misspelt LSTMLAB_ISA is refused even when the fast path is off
    if os.environ.get("LSTMLAB_FAST", "1") == "0":
        REASON = "disabled by LSTMLAB_FAST=0"
        return
    path, isa, why = _find_kernels(forced)
    if path is None:
        REASON = why
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
    lib.loop_set_blas.argtypes, lib.loop_set_blas.restype = [P] * 4, None
    lib.loop_set_blas(*pointers)  # the GRU and simple-RNN loops' own pointers (loop_blas.c)
    for sfx in ("f32", "f64"):
        getattr(lib, f"lstm_forward_{sfx}").argtypes = [I, I, I] + [P] * 8 + [I, I] + [P] * 4  # U, then packed U
        getattr(lib, f"lstm_backward_{sfx}").argtypes = [I, I, I] + [P] * 9 + [I, I] + [P] * 3
        # the GRU's loops (gru_loops.c) and the simple RNN's (rnn_loop.c): rows b0..b1, then mask, rmask, ...
        getattr(lib, f"gru_forward_{sfx}").argtypes = [I, I, I] + [P] * 8 + [I, I] + [P] * 4
        getattr(lib, f"gru_backward_{sfx}").argtypes = [I, I, I] + [P] * 10 + [I, I] + [P] * 3
        getattr(lib, f"gru_rb_forward_{sfx}").argtypes = [I, I, I] + [P] * 6 + [I, I] + [P] * 4
        getattr(lib, f"gru_rb_backward_{sfx}").argtypes = [I, I, I] + [P] * 11 + [I, I] + [P] * 2
        getattr(lib, f"rnn_forward_{sfx}").argtypes = [I, I, I, ctypes.c_int] + [P] * 5 + [I, I] + [P] * 4
        getattr(lib, f"rnn_backward_{sfx}").argtypes = [I, I, I, ctypes.c_int] + [P] * 6 + [I, I] + [P] * 3
        for name in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "gru_rb_forward",
                     "gru_rb_backward", "rnn_forward", "rnn_backward"):
            getattr(lib, f"{name}_{sfx}").restype = None
    C = ctypes.c_int
    lib.lstm_backward_units_run_f32.argtypes = [I, I, I] + [P] * 12 + [C]
    lib.lstm_backward_units_run_f32.restype = C
    lib.lstm_forward_fused_run_f32.argtypes = [I, I, I, I, P, P, I] + [P] * 11 + [C, P, P, C, C, P]
    lib.lstm_forward_fused_run_f32.restype = C
    lib.lstm_fused_packed_size.argtypes, lib.lstm_fused_packed_size.restype = [I, I], I
    # the AVX2 variant's unit-split loops (lstm_units_avx2.c; stubs returning -1 elsewhere)
    lib.lstm_avx2_units_forward_f32.argtypes = [I, I, I, I, P, P, I] + [P] * 12 + [P, C]
    lib.lstm_avx2_units_forward_f32.restype = C
    lib.lstm_avx2_fused_forward_f32.argtypes = [I, I, I, I, P, P, I] + [P] * 11 + [C, P, P, C, P]  # lstm_fused_avx2.c
    lib.lstm_avx2_units_packed_size.argtypes, lib.lstm_avx2_units_packed_size.restype = [I, P, C], I
    lib.gru_forward_fused_run_f32.argtypes = [I, I, I, I, P, P, I] + [P] * 12 + [C, C, P, P]  # gru_avx512.c
    lib.gru_forward_fused_run_f32.restype = C
    lib.gru_fused_packed_size.argtypes, lib.gru_fused_packed_size.restype = [I, I], I
    lib.lk_sgemm_available.argtypes, lib.lk_sgemm_available.restype = [], ctypes.c_int
    lib.lk_sgemm.argtypes = [ctypes.c_int, ctypes.c_int, I, I, I, P, I, P, I, ctypes.c_float, P, I]
    lib.lk_sgemm.restype = ctypes.c_int
    lib.lk_sgemm_packed_size.argtypes, lib.lk_sgemm_packed_size.restype = [I, I], I
    lib.lk_sgemm_pack.argtypes, lib.lk_sgemm_pack.restype = [ctypes.c_int, I, I, P, I, P], None
    lib.lk_sgemm_prepacked_steps.argtypes = [I, I, I, I, P, I, I, P, ctypes.c_float, P, I, I]
    lib.lk_sgemm_prepacked_steps.restype = None
    KERNELS = lib
    ISA, ISA_REASON = isa, why
    OWN_GEMM = bool(lib.lk_sgemm_available()) and os.environ.get("LSTMLAB_SGEMM", "1") != "0"
    SGEMM = OWN_GEMM and isa == "avx512"  # the engines are compiled only where __AVX512F__ is (the x86-64-v4 build)


_load()
