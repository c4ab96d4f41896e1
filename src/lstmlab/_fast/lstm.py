"""The LSTM's fast path: :func:`lstm_forward` and :func:`lstm_backward`, the reference's contract with the
time loop in C.

Same arguments and results as :mod:`lstmlab.functional.lstm`. When the C
kernels are available and the call is one they cover (default ``tanh`` /
``sigmoid`` activations, float32 or float64), the time loop runs in C, masks
and recurrent dropout included; anything else falls through to the
reference, so these functions are always safe to call. The reference stays the oracle; tests hold the two equal.

* the float32 forward with lstmlab's own GEMM is one C call
  (``lstm_forward_fused_run_f32``, ``lstm_avx512.c``): each register tile of
  ``[x_t, h_{t-1}] @ [kernel; recurrent_kernel]`` holds the four gates of 16
  units (the kernels' columns regrouped when packed), and the cell runs on it
  in registers with lstmlab's own exp, sigmoid and tanh, so neither product is
  stored and read back; it runs on lstmlab's C worker threads (``pool.c``),
  which start a call's parts within microseconds. The AVX2 variant has the
  same fused forward in 8-float vectors (``lstm_avx2_fused_forward_f32``,
  ``lstm_fused_avx2.c``: gates regrouped by 8 units, a 3-row tile) for calls
  split by sequences (``FUSED_AVX2`` turns it off);
* elsewhere (backward, float64, calls shorter than ``PACK_MIN_STEPS``, the
  generic variant) the input projection of all steps is one GEMM
  before the loop, and each step one GEMM and one fused pass over the units
  (``lstm_forward_f32`` / ``_f64``, ``lstm_backward_*`` in ``cells_generic.c``;
  the float32 cell step in AVX-512 registers, ``lstm_avx512.c``, or AVX2 ones,
  ``lstm_avx2.c``; the step's product on the own GEMM with the recurrent kernel
  packed once per call where :func:`.gemm.packed_for_steps` says so);
* the batch is split across the cores (see :mod:`.parallel`): each thread
  runs the whole time loop for its rows, so there is no per-step barrier; a
  batch too small to split (B < 8) is split by hidden units instead, the parts
  meeting once per step (on the C worker threads; forward: ``lstm_avx512.c``
  or ``lstm_units_avx2.c``, backward: ``lstm_units_backward.c``);
* the weight gradients are GEMMs over all T*B rows (with a mask, the valid
  ones only), after the loop;
* masks: the rows are sorted by length (see :func:`.recurrent.padded_rows`)
  and each step runs the products on the rows still running only; padded
  steps carry h and c through and get a zero gradient, as the reference;
* recurrent dropout (one (B, H) mask per sequence): the loops keep
  ``h_t * recurrent_mask`` (``hr``) beside ``h_t`` for the recurrent product
  and multiply the hidden-state path of BPTT by the same mask;
* temporaries live in per-thread buffers reused between calls (see
  :mod:`.workspace`), and inference (``need_cache=False``, what layers pass
  when not training) keeps no cache.
"""
from __future__ import annotations

import collections
import ctypes

import numpy as np

from .. import _fast
from ..functional import lstm as ref_lstm
from ..functional._validate import check_recurrent_mask, recurrent_args
from .gemm import PACK_MIN_STEPS, matmul, own_gemm, pack, packed_for_steps, parallel_matmul, row_major
from .parallel import MIN_ROWS_PER_THREAD, run, split, threads
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, covered, padded_rows, ptr, sum_chunks
from .workspace import aligned_empty, scratch

# -- the time loop split by hidden units (see lstm_avx512.c) ----------------------------------------------
UNIT_SPLIT = "auto"  # "auto", "always" (whenever possible) or "never": how the LSTM's time loop is split
_NO_THREADS = "lstmlab's C kernels could not start their worker threads"
# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...): what tests read
# to know the fast path really ran (a fallback to the reference counts nothing).
CALLS: collections.Counter = collections.Counter()
# The AVX2 variant's float32 forward split by sequences, fused (lstm_fused_avx2.c); False: cells_generic.c's
# loop (input projection ahead, per step the own GEMM and the cell), as before
FUSED_AVX2 = True



def unit_parts(B: int, T: int, H: int, dtype):
    """The unit ranges ``[(u0, u1), ...]`` of the parts when the LSTM loop is split by units, else None.

    Measured on 2 cores, H = 256 (min of 40 calls, forward / backward ms): B = 1, T = 500: by units
    2.3 / 3.9, by sequences 4.6 / 6.9 (one core idle); B = 4: 1.3 / 2.6 against 1.8 / 3.5; from B = 8 on,
    splitting the sequences is as fast or faster (B = 64: 15.8 / 29.6 against 16.5 / 32.4), as it needs
    no barrier. So "auto" splits by units only when the batch is too small to split. (Measured before the
    forward's cell was fused into its GEMM.)
    """
    if UNIT_SPLIT == "never" or not _units_in_c(dtype) or T < PACK_MIN_STEPS or H < 32:
        return None
    if UNIT_SPLIT == "auto" and B >= 2 * MIN_ROWS_PER_THREAD:
        return None
    n = min(threads(), H // 16)
    if n < 2:  # one allowed core: parts that meet at a barrier every step would take turns on it
        return None
    edges = [int(round(i * (H // 16) / n)) * 16 for i in range(n + 1)]
    edges[-1] = H
    return list(zip(edges[:-1], edges[1:]))


def _units_in_c(dtype) -> bool:
    """True when the loops split by units exist for ``dtype``: float32 on the own GEMM, in the AVX-512 variant
    (``lstm_avx512.c``) or the AVX2 one (``lstm_units_avx2.c``)."""
    return own_gemm(dtype) or (_fast.OWN_GEMM and _fast.ISA == "avx2" and dtype == np.float32)


def _packed_rows_transposed(U, parts):
    """Per part of the backward, its rows of the recurrent kernel packed transposed: (4H, n)."""
    H = U.shape[0]
    # rows u0..u1: (n, 4H), read as (4H, n)
    return [pack(f"packed{p}", U[u0:u1], True, 4 * H, u1 - u0) for p, (u0, u1) in enumerate(parts)]


def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *, activation="tanh",
                 recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.lstm.lstm_forward`.

    ``need_cache=False`` (inference: no backward will follow) returns ``None`` for the cache and keeps the
    per-step gates and cell states in this thread's reused buffers instead of fresh arrays (measured at
    (128, 50, 512, 512): fresh 52 MB arrays cost 4 ms of page faults per call, 5% of the forward).
    """
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0, "c0": c0}, gates=4)
    if not covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype, masks_in_c=True):
        hs, final, cache = ref_lstm.lstm_forward(x, kernel, recurrent_kernel, bias, states["h0"], states["c0"],
                                                 activation=activation, recurrent_activation=recurrent_activation,
                                                 mask=mask, recurrent_mask=recurrent_mask)
        return hs, final, cache if need_cache else None
    dtype = x.dtype
    fused = own_gemm(dtype) and T >= PACK_MIN_STEPS
    parts = unit_parts(B, T, H, dtype)  # None unless the loops split by units exist (AVX-512, AVX2 variants)
    fused_avx2 = not fused and not parts and _fused_avx2(dtype, T)  # the AVX2 variant split by sequences
    valid, order = padded_rows(mask, B, T, [(0, B)] if parts else split(B))  # (B, T) uint8 in the loops' order
    rmask = check_recurrent_mask(recurrent_mask, B, H, dtype)  # (B, H)
    h0c, c0c = states["h0"], states["c0"]
    if order is not None:  # the loops' row order (a copy, as ascontiguousarray would make for go_backwards)
        x, h0c, c0c = x[order], h0c[order], c0c[order]
        rmask = None if rmask is None else rmask[order]
    x = np.ascontiguousarray(x)
    U = np.ascontiguousarray(recurrent_kernel)
    bias_c = None if bias is None else np.ascontiguousarray(bias)
    h0c, c0c = np.ascontiguousarray(h0c), np.ascontiguousarray(c0c)
    rmask = None if rmask is None else np.ascontiguousarray(rmask)
    if need_cache:
        z = aligned_empty((B, T, 4 * H), dtype)  # (B, T, 4H) the activated gates (and before, x @ kernel)
        cs = np.empty((B, T, H), dtype)  # (B, T, H)
    else:  # inference: the fused loop split by sequences never stores x @ kernel or the gates
        z = scratch("gates", (B, T, 4 * H), dtype) if not (fused or fused_avx2) or parts else None
        cs = scratch("cs", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    # what the recurrent product reads: h_{t-1}, or h_{t-1} * recurrent_mask with recurrent dropout
    hr0 = h0c if rmask is None else h0c * rmask  # (B, H)
    if rmask is None:
        hr = hs
    else:
        hr = np.empty((B, T, H), dtype) if need_cache else scratch("hr", (B, T, H), dtype)  # (B, T, H)
    if fused:
        _lstm_forward_fused(x, kernel, U, bias_c, h0c, c0c, z, hs, cs, parts, keep_gates=need_cache,
                            valid=valid, rmask=rmask, hr=hr, hr0=hr0)
    elif fused_avx2:
        _lstm_forward_fused_avx2(x, kernel, U, bias_c, h0c, c0c, z, hs, cs, need_cache, valid, rmask, hr, hr0)
    elif parts:  # the AVX2 variant, a batch too small to split: the loop by units (lstm_units_avx2.c)
        _lstm_forward_units_avx2(x, kernel, U, bias_c, h0c, c0c, z, hs, cs, parts, valid, rmask, hr, hr0)
    else:
        kern = c_loop("lstm_forward", dtype)
        rows = max(b1 - b0 for b0, b1 in split(B))  # per thread and step
        packed = packed_for_steps(U, False, T, rows)  # the AVX2 variant's own GEMM, else None: BLAS at every step

        def job(b0, b1):
            # input projection of all steps: one GEMM per chunk, (b*T, D) @ (D, 4H)
            matmul(x[b0:b1].reshape(-1, D), kernel, out=z[b0:b1].reshape(-1, 4 * H))
            kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(bias_c), ptr(h0c), ptr(c0c), ptr(hs), ptr(cs), b0, b1,
                 ptr(valid), ptr(rmask), ptr(hr), ptr(hr0))

        run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(fast="lstm", x=x, gates=z, hs=hs, cs=cs, h0=h0c, c0=c0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    final = (hs[:, -1].copy(), cs[:, -1].copy())  # (B, H) each: after each row's last valid step
    if order is not None:  # back to the caller's row order
        inverse = np.argsort(order)
        hs, final = hs[inverse], (final[0][inverse], final[1][inverse])
    return hs, final, cache


def _lstm_forward_fused(x, kernel, U, bias, h0, c0, z, hs, cs, parts, keep_gates, valid, rmask, hr, hr0):
    """The float32 forward in one C call (``lstm_forward_fused_run_f32``): the input projection and the cell
    fused into the recurrent GEMM's register tiles, both kernels packed once with their gate columns
    regrouped by 16 units; the batch split across lstmlab's C worker threads (``pool.c``), or the units by
    ``parts`` when the batch is too small (see :func:`unit_parts`; z is then needed for x @ kernel). Fills
    hs, cs and, with keep_gates, z (the gates); valid, rmask, hr and hr0 as the loops of ``cells_generic.c``."""
    B, T, D = x.shape
    H = U.shape[0]
    lk = _fast.KERNELS
    kernel, ld = row_major(kernel)  # the packing reads the kernel's rows
    packed_kernel = scratch("packed_kernel", (int(lk.lstm_fused_packed_size(D, H)),), np.float32)
    packed = scratch("packed", (int(lk.lstm_fused_packed_size(H, H)),), np.float32)
    if parts:  # unit blocks of 16; the last one partial when 16 does not divide H
        edges = [u0 // 16 for u0, _ in parts] + [-(-H // 16)]
    else:
        edges = [b0 for b0, _ in split(B)] + [B]
    edges = np.array(edges, np.int64)
    if lk.lstm_forward_fused_run_f32(T, B, D, H, ptr(x), ptr(kernel), ld, ptr(U), ptr(bias), ptr(h0),
                                     ptr(c0), ptr(z), ptr(hs), ptr(cs), ptr(valid), ptr(rmask), ptr(hr), ptr(hr0),
                                     int(keep_gates), ptr(packed_kernel), ptr(packed), len(edges) - 1,
                                     int(bool(parts)), ptr(edges)) != 0:
        raise RuntimeError(_NO_THREADS)


def _fused_avx2(dtype, T) -> bool:
    """True when the float32 forward split by sequences runs fused in the AVX2 variant (``lstm_fused_avx2.c``):
    float32, the AVX2 variant's own GEMM on, T >= PACK_MIN_STEPS (shorter calls would pack the kernels for
    few steps), and not turned off (``FUSED_AVX2``)."""
    return FUSED_AVX2 and _fast.OWN_GEMM and _fast.ISA == "avx2" and dtype == np.float32 and T >= PACK_MIN_STEPS


def _lstm_forward_fused_avx2(x, kernel, U, bias, h0, c0, z, hs, cs, keep_gates, valid, rmask, hr, hr0):
    """The float32 forward split by sequences in the AVX2 variant, one C call (``lstm_avx2_fused_forward_f32``):
    as :func:`_lstm_forward_fused` (input projection and cell inside the recurrent product's register tiles),
    with the gate columns regrouped by 8 units; the batch split across the C worker threads at the edges of
    :func:`.parallel.split`. Arguments as :func:`_lstm_forward_fused`."""
    B, T, D = x.shape
    H = U.shape[0]
    kernel, ld = row_major(kernel)  # the packing reads the kernel's rows
    blocks = -(-H // 8)  # panels of 8 units: k rows of 4 gates x 8 floats each
    packed_kernel = scratch("packed_kernel8", (D * 32 * blocks,), np.float32)
    packed = scratch("packed8", (H * 32 * blocks,), np.float32)
    edges = np.array([b0 for b0, _ in split(B)] + [B], np.int64)
    if _fast.KERNELS.lstm_avx2_fused_forward_f32(T, B, D, H, ptr(x), ptr(kernel), ld, ptr(U), ptr(bias),
                                                 ptr(h0), ptr(c0), ptr(z), ptr(hs), ptr(cs), ptr(valid),
                                                 ptr(rmask), ptr(hr), ptr(hr0), int(keep_gates),
                                                 ptr(packed_kernel), ptr(packed), len(edges) - 1, ptr(edges)) != 0:
        raise RuntimeError(_NO_THREADS)


def _lstm_forward_units_avx2(x, kernel, U, bias, h0, c0, z, hs, cs, parts, valid, rmask, hr, hr0):
    """The float32 forward split by units in the AVX2 variant, one C call (``lstm_avx2_units_forward_f32``):
    x @ kernel of all steps into z, then the time loop, each part with its units' columns of the recurrent
    kernel packed for the own GEMM. Arguments as :func:`_lstm_forward_fused`."""
    B, T, D = x.shape
    H = U.shape[0]
    lk = _fast.KERNELS
    kernel, ld = row_major(kernel)  # the packing reads the kernel's rows
    edges = np.array([u0 for u0, _ in parts] + [H], np.int64)
    packed = scratch("packed_units", (int(lk.lstm_avx2_units_packed_size(H, ptr(edges), len(parts))),), np.float32)
    status = lk.lstm_avx2_units_forward_f32(T, B, D, H, ptr(x), ptr(kernel), ld, ptr(z), ptr(U), ptr(packed),
                                            ptr(bias), ptr(h0), ptr(c0), ptr(hs), ptr(cs), ptr(valid), ptr(rmask),
                                            ptr(hr), ptr(hr0), ptr(edges), len(parts))
    if status == -2:
        raise MemoryError("lstmlab's GEMM could not allocate its packing buffer")
    if status != 0:
        raise RuntimeError(_NO_THREADS)


def lstm_backward(dhs, dh_T, dc_T, cache):
    """Same contract as :func:`lstmlab.functional.lstm.lstm_backward`; accepts either path's cache."""
    if cache.get("fast") != "lstm":
        return ref_lstm.lstm_backward(dhs, dh_T, dc_T, cache)
    z, hs, cs, kernel, U = cache["gates"], cache["hs"], cache["cs"], cache["kernel"], cache["recurrent_kernel"]
    valid, order, rmask = cache["valid"], cache["order"], cache["rmask"]
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs, (dh, dc) = backward_upstream(dhs, {"dh_T": dh_T, "dc_T": dc_T}, hs, order)  # dh, dc: in dh_T, out dh0
    dz = scratch("dz", z.shape, dtype)  # (B, T, 4H)
    carry = scratch("carry", (B, H), dtype) if valid is not None else None  # (B, H) padded rows' dh
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D), each chunk writes its rows
    parts = unit_parts(B, T, H, dtype)
    if parts:
        packs = _packed_rows_transposed(U, parts)
        pointers = (ctypes.c_void_p * len(packs))(*[ptr(a) for a in packs])
        edges = np.array([u0 for u0, _ in parts] + [H], np.int64)
        units_run = _fast.KERNELS.lstm_backward_units_run_f32  # lstm_units_backward.c, both variants
        if units_run(T, B, H, ptr(z), pointers, ptr(cache["c0"]), ptr(cs), ptr(dhs), ptr(dh), ptr(dc), ptr(dz),
                     ptr(valid), ptr(rmask), ptr(carry), ptr(edges), len(parts)) != 0:
            raise RuntimeError(_NO_THREADS)
        dkernel, drecurrent_kernel, dbias = _weight_grads_all_rows(cache, dz, dx)
    else:
        kern = c_loop("lstm_backward", dtype)
        packed = packed_for_steps(U, True, T, max(b1 - b0 for b0, b1 in split(B)))
        hr, hr0 = cache["hr"], cache["hr0"]

        def job(b0, b1):
            kern(T, B, H, ptr(z), ptr(U), ptr(packed), ptr(cache["c0"]), ptr(cs), ptr(dhs), ptr(dh), ptr(dc),
                 ptr(dz), b0, b1, ptr(valid), ptr(rmask), ptr(carry))
            return chunk_weight_grads(cache["x"][b0:b1], dz[b0:b1], dz[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                      cache["has_bias"], dx_out=dx[b0:b1],
                                      valid=None if valid is None else valid[b0:b1])

        dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    count_call(CALLS, "backward", valid, rmask)
    if order is not None:  # back to the caller's row order
        inverse = np.argsort(order)
        dx, dh, dc = dx[inverse], dh[inverse], dc[inverse]
    return ref_lstm.LSTMGrads(dx, dh, dc, dkernel, drecurrent_kernel, dbias)


def _weight_grads_all_rows(cache, dz, dx):
    """After a unit-split loop: the gradient GEMMs over all B*T rows, each on both cores."""
    x, hs, kernel = cache["x"], cache["hr"], cache["kernel"]  # hr: h_t, times the recurrent mask if any
    B, T, H = hs.shape
    h_prev = scratch("h_prev", hs.shape, hs.dtype)  # (B, T, H) h_{t-1} for every step
    h_prev[:, 0], h_prev[:, 1:] = cache["hr0"], hs[:, :-1]
    dz2, dx2 = dz.reshape(B * T, -1), dx.reshape(B * T, -1)  # (N, 4H), (N, D)
    run(lambda lo, hi: matmul(dz2[lo:hi], kernel.T, out=dx2[lo:hi]), B * T)
    dkernel = parallel_matmul(x.reshape(B * T, -1).T, dz2)  # (D, 4H)
    drecurrent_kernel = parallel_matmul(h_prev.reshape(B * T, H).T, dz2)  # (H, 4H)
    return dkernel, drecurrent_kernel, (dz2.sum(axis=0) if cache["has_bias"] else None)
