"""The GRU's fast path (``reset_after=True``, Keras's default): :func:`gru_forward` and :func:`gru_backward`,
the reference's contract with the time loop in C.

Same arguments and results as :mod:`lstmlab.functional.gru`. Covered calls
(see :func:`.recurrent.covered`: kernels built, float32 or float64, tanh and
sigmoid) run ``gru_forward_f32`` / ``_f64`` and ``gru_backward_*`` of
``gru_loops.c``, masks and recurrent dropout included; anything else runs the
reference. The ``reset_after=False`` variant is :mod:`.gru_reset_before`.

* the float32 forward with lstmlab's own GEMM (AVX-512, at least
  ``PACK_MIN_STEPS`` steps) is one C call, ``gru_forward_fused_run_f32``
  (``gru_avx512.c``): the input projection and the cell fused into the
  recurrent product's register tiles, as the LSTM's; ``FUSED = False`` turns
  it off;
* elsewhere the input projection of all steps is one GEMM per batch chunk
  before the loop, each step one recurrent GEMM (the kernel packed once per
  call on the own GEMM) and one fused pass over the units; the weight
  gradients are GEMMs over all rows after the loop (with a mask, the valid
  rows only);
* the batch is split across the cores, each thread running the whole time
  loop for its rows (see :mod:`.parallel`);
* masks: the rows are sorted by length (:func:`.recurrent.padded_rows`), so
  each step's product runs on the rows still running only; padded steps carry
  h through and get a zero gradient, as the reference;
* recurrent dropout (one (B, H) mask per sequence): the loop keeps
  ``h_t * recurrent_mask`` (``hr``) beside ``h_t`` for the recurrent product
  and multiplies the recurrent path of BPTT by the same mask.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import _fast
from ..functional import gru as ref_gru
from ..functional._validate import check_recurrent_mask, recurrent_args
from .gemm import PACK_MIN_STEPS, matmul, own_gemm, packed_for_steps, row_major
from .lstm import unit_parts  # the LSTM's rule for when the units are split
from .parallel import run, split
from .recurrent import backward_upstream, count_call, c_loop, chunk_weight_grads, covered, padded_rows, ptr, sum_chunks
from .workspace import scratch

# Calls that ran in C, by kind ("forward", "forward_mask", "forward_dropout", "backward", ...; the
# reset_after=False loops count as "reset_before_forward", ...): what tests read to know the fast path really
# ran (a fallback to the reference counts nothing).
CALLS: collections.Counter = collections.Counter()
FUSED = True  # the float32 forward fused into its register tiles when the own GEMM runs (see gru_avx512.c)



def loop_order(x, h0, recurrent_mask, mask, B: int, T: int, H: int):
    """The inputs in the C loops' row order: ``(x, h0, rmask, valid, order)``, all C-contiguous.

    ``valid`` (B, T) uint8 and ``order`` (B,) as :func:`.recurrent.padded_rows` (None when nothing is padded
    or the order is unchanged); ``rmask`` (B, H) or None. Shared with :mod:`.gru_reset_before` and
    :mod:`.rnn`.
    """
    valid, order = padded_rows(mask, B, T, split(B))  # (B, T) uint8 in the loops' order
    rmask = check_recurrent_mask(recurrent_mask, B, H, x.dtype)  # (B, H)
    if order is not None:  # a copy, as ascontiguousarray would make for go_backwards
        x, h0 = x[order], h0[order]
        rmask = None if rmask is None else rmask[order]
    rmask = None if rmask is None else np.ascontiguousarray(rmask)
    return np.ascontiguousarray(x), np.ascontiguousarray(h0), rmask, valid, order


def dropout_inputs(hs, h0, rmask, need_cache: bool):
    """``(hr, hr0)``: what the recurrent products read, h_t and h0 times the recurrent mask (hs and h0
    themselves without dropout). hr is filled by the loop; a reused buffer when no backward follows."""
    if rmask is None:
        return hs, h0
    hr = np.empty(hs.shape, hs.dtype) if need_cache else scratch("hr", hs.shape, hs.dtype)  # (B, T, H)
    return hr, h0 * rmask  # (B, H)


def in_caller_order(order, *arrays):
    """The arrays (rows first) back in the caller's row order."""
    if order is None:
        return arrays
    inverse = np.argsort(order)
    return tuple(a[inverse] for a in arrays)


def gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None, *, activation="tanh",
                recurrent_activation="sigmoid", mask=None, recurrent_mask=None, need_cache=True):
    """Same contract as :func:`lstmlab.functional.gru.gru_forward`; ``need_cache=False`` (inference) returns
    None for the cache and keeps the per-step gates in this thread's reused buffers."""
    x, kernel, recurrent_kernel, bias, states, (B, T, D, H) = recurrent_args(
        x, kernel, recurrent_kernel, bias, {"h0": h0}, gates=3, bias_rows=2)
    if not covered(activation, recurrent_activation, mask, recurrent_mask, x.dtype, masks_in_c=True):
        hs, h, cache = ref_gru.gru_forward(x, kernel, recurrent_kernel, bias, states["h0"], activation=activation,
                                           recurrent_activation=recurrent_activation, mask=mask,
                                           recurrent_mask=recurrent_mask)
        return hs, h, cache if need_cache else None
    dtype = x.dtype
    x, h0c, rmask, valid, order = loop_order(x, states["h0"], recurrent_mask, mask, B, T, H)
    rbias = None if bias is None else np.ascontiguousarray(bias[1])
    ibias = None if bias is None else bias[0]
    U = np.ascontiguousarray(recurrent_kernel)
    fused = FUSED and own_gemm(dtype) and T >= PACK_MIN_STEPS
    if need_cache:
        a = np.empty((B, T, 3 * H), dtype)  # (B, T, 3H) input projection, then the gates z, r, hh
        uh = np.empty((B, T, H), dtype)  # (B, T, H)
    elif fused:  # inference in the fused loop stores neither
        a = uh = None
    else:
        a, uh = scratch("gates", (B, T, 3 * H), dtype), scratch("uh", (B, T, H), dtype)
    hs = np.empty((B, T, H), dtype)  # (B, T, H)
    hr, hr0 = dropout_inputs(hs, h0c, rmask, need_cache)
    if fused:
        by_units = _gru_forward_fused(x, kernel, U, bias, h0c, a, uh, hs, valid, rmask, hr, hr0)
        CALLS["forward_fused"] += 1
        CALLS["forward_fused_units"] += by_units
    else:
        u = np.empty((B, 3 * H), dtype)  # (B, 3H) per-step scratch, rows owned by their thread
        kern = c_loop("gru_forward", dtype)
        packed = packed_for_steps(U, False, T)

        def job(b0, b1):
            matmul(x[b0:b1].reshape(-1, D), kernel, out=a[b0:b1].reshape(-1, 3 * H))  # (b*T, 3H)
            if ibias is not None:
                a[b0:b1] += ibias
            kern(T, B, H, ptr(a), ptr(U), ptr(packed), ptr(rbias), ptr(h0c), ptr(hs), ptr(uh), ptr(u), b0, b1,
                 ptr(valid), ptr(rmask), ptr(hr), ptr(hr0))

        run(job, B)
    count_call(CALLS, "forward", valid, rmask)
    cache = dict(fast="gru", x=x, gates=a, uh=uh, hs=hs, h0=h0c, kernel=kernel, recurrent_kernel=U,
                 has_bias=bias is not None, valid=valid, order=order, rmask=rmask, hr=hr,
                 hr0=hr0) if need_cache else None
    hs, h_T = in_caller_order(order, hs, hs[:, -1].copy())  # h_T (B, H): after each row's last valid step
    return hs, h_T, cache


def _gru_forward_fused(x, kernel, U, bias, h0, gates, uh, hs, valid, rmask, hr, hr0):
    """The float32 forward in one C call (``gru_forward_fused_run_f32``, ``gru_avx512.c``): both kernels
    packed once with their gate columns regrouped by 16 units, the batch split across lstmlab's C worker
    threads (``pool.c``) at the same rows as :func:`.parallel.split` (the order :func:`loop_order` dealt the
    sorted rows to), or the units when the batch is too small to split (the LSTM's rule,
    :func:`.lstm.unit_parts`; measured at (1, 500, 64, 256) inference, full mode: 6.79 ms on one core, 3.15 ms
    split by units). Fills hs (and hr with rmask) and, for training, gates (z, r, hh) and uh."""
    B, T, D = x.shape
    H = U.shape[0]
    lk = _fast.KERNELS
    kernel, ld = row_major(kernel)  # the packing reads the kernel's rows
    parts = unit_parts(B, T, H, np.float32)
    if parts:  # unit blocks of 16; x @ kernel of all steps ahead, into the gates when training
        edges = [u0 // 16 for u0, _ in parts] + [-(-H // 16)]
        a = gates if gates is not None else scratch("gru_a", (B, T, 3 * H), np.float32)  # (B, T, 3H)
        size = lk.lk_sgemm_packed_size(D, 3 * H)
    else:
        edges, a = [b0 for b0, _ in split(B)] + [B], None
        size = lk.gru_fused_packed_size(D, H)
    packed_kernel = scratch("gru_packed_kernel", (int(size),), np.float32)
    packed = scratch("gru_packed", (int(lk.gru_fused_packed_size(H, H)),), np.float32)
    bias = None if bias is None else np.ascontiguousarray(bias)  # (2, 3H)
    edges = np.array(edges, np.int64)
    if lk.gru_forward_fused_run_f32(T, B, D, H, ptr(x), ptr(kernel), ld, ptr(U), ptr(bias), ptr(h0),
                                    ptr(gates), ptr(uh), ptr(hs), ptr(valid), ptr(rmask), ptr(hr), ptr(hr0),
                                    ptr(packed_kernel), ptr(packed), len(edges) - 1, int(bool(parts)), ptr(edges),
                                    ptr(a)) != 0:
        raise RuntimeError("lstmlab's C kernels could not start their worker threads")
    return bool(parts)


def gru_backward(dhs, dh_T, cache):
    """Same contract as :func:`lstmlab.functional.gru.gru_backward`; accepts either path's cache."""
    if cache.get("fast") != "gru":
        return ref_gru.gru_backward(dhs, dh_T, cache)
    gates, hs, kernel, U = cache["gates"], cache["hs"], cache["kernel"], cache["recurrent_kernel"]
    valid, order, rmask, hr, hr0 = (cache[k] for k in ("valid", "order", "rmask", "hr", "hr0"))
    B, T, H = hs.shape
    dtype = hs.dtype
    dhs, (dh,) = backward_upstream(dhs, {"dh_T": dh_T}, hs, order)  # dh: in dh_T, out dh0
    da, du = scratch("da", gates.shape, dtype), scratch("du", gates.shape, dtype)  # (B, T, 3H) each
    rec = None if rmask is None else np.empty((B, H), dtype)  # (B, H) the recurrent path, rows per thread
    dx = np.empty(cache["x"].shape, dtype)  # (B, T, D)
    kern = c_loop("gru_backward", dtype)
    packed = packed_for_steps(U, True, T)

    def job(b0, b1):
        kern(T, B, H, ptr(gates), ptr(cache["uh"]), ptr(hs), ptr(cache["h0"]), ptr(U), ptr(packed),
             ptr(dhs), ptr(dh), ptr(da), ptr(du), b0, b1, ptr(valid), ptr(rmask), ptr(rec))
        return chunk_weight_grads(cache["x"][b0:b1], da[b0:b1], du[b0:b1], hr0[b0:b1], hr[b0:b1], kernel,
                                  cache["has_bias"], bias_rows=True, dx_out=dx[b0:b1],
                                  valid=None if valid is None else valid[b0:b1])

    dkernel, drecurrent_kernel, dbias = sum_chunks(run(job, B))
    count_call(CALLS, "backward", valid, rmask)
    dx, dh = in_caller_order(order, dx, dh)
    return ref_gru.GRUGrads(dx, dh, dkernel, drecurrent_kernel, dbias)
