"""The Dense layer's fast path: its GEMMs on all cores, and the fused output layer in float32.

:func:`dense_forward` / :func:`dense_backward` have the contract of
:mod:`lstmlab.functional.dense`, their products on :func:`.gemm.parallel_matmul`.

:func:`dense_softmax_xent` has the contract of
:func:`lstmlab.functional.output.dense_softmax_xent`. The rows are split
across the cores (each thread takes a contiguous range and walks it a block
at a time, with single-threaded GEMMs); within a block the logits are
computed into one per-thread buffer, turned into their own gradient in place,
and consumed by the two gradient products before the next block overwrites
them. So the only array of size rows x V is one block per thread. With
lstmlab's own GEMM the kernel is packed once per call, both ways (``W`` for
the logits, ``W^T`` for ``dx``), and every block of every thread multiplies
against the same packed copies; the per-thread ``dW`` and ``db`` are summed
at the end.
"""
from __future__ import annotations

import numpy as np

from .. import _fast
from ..functional import dense as ref_dense
from ..functional import output as ref
from .gemm import matmul, own_gemm, pack, parallel_matmul, prepacked
from .parallel import run
from .workspace import scratch


def dense_forward(x, kernel, bias=None, *, activation=None):
    """Same contract as :func:`lstmlab.functional.dense.dense_forward`, its GEMM on all cores."""
    return ref_dense.dense_forward(x, kernel, bias, activation=activation, matmul=parallel_matmul)


def dense_backward(dy, cache):
    """Same contract as :func:`lstmlab.functional.dense.dense_backward`, its GEMMs on all cores."""
    return ref_dense.dense_backward(dy, cache, matmul=parallel_matmul)


def dense_softmax_xent(x, kernel, bias, targets, weights=None, *, need_grads: bool = True) -> ref.OutputGrads:
    """:func:`lstmlab.functional.output.dense_softmax_xent`, float32 on all cores (other dtypes: the reference)."""
    x, kernel, bias, y, weights = ref.check_output_args(x, kernel, bias, targets, weights)
    if x.dtype != np.float32 or not _fast.available():
        return ref.dense_softmax_xent(x, kernel, bias, y, weights, need_grads=need_grads)
    x, W = np.ascontiguousarray(x), np.ascontiguousarray(kernel)
    (N, D), V = x.shape, W.shape[1]
    share = ref.row_shares(N, weights, np.float32)  # (N,)
    own = own_gemm(np.float32)
    packed_w = pack("output_w", W, False, D, V) if own else None  # W (D, V) for (O1)
    packed_wt = pack("output_wt", W, True, V, D) if own and need_grads else None  # W^T (V, D) for dx (O1')
    dx = np.empty_like(x) if need_grads else None  # (N, D)
    R = ref.block_rows(V, 4)

    def part(lo: int, hi: int):
        zbuf = scratch("output_z", (min(R, hi - lo), V), np.float32)  # this thread's one block of logits
        dW = np.zeros((D, V), np.float32) if need_grads else None  # (D, V) this part's sum
        db = np.zeros(V, np.float32) if need_grads and bias is not None else None  # (V,)
        loss = 0.0
        for a in range(lo, hi, R):
            b = min(hi, a + R)
            xb, z = x[a:b], zbuf[: b - a]  # (r, D), (r, V)
            if own:
                prepacked(xb, packed_w, V, z)  # (O1)
            else:
                np.matmul(xb, W, out=z)
            if bias is not None:
                z += bias
            loss += ref.softmax_xent_block(z, y[a:b], share[a:b], need_grads)  # (O2), z becomes dz (O2')
            if need_grads:  # (O1')
                matmul(xb.T, z, out=dW, accumulate=True)
                if db is not None:
                    db += z.sum(axis=0)
                if own:
                    prepacked(z, packed_wt, D, dx[a:b])
                else:
                    np.matmul(z, W.T, out=dx[a:b])
        return loss, dW, db

    parts = run(part, N) if N else [(0.0, np.zeros((D, V), np.float32) if need_grads else None,
                                     np.zeros(V, np.float32) if need_grads and bias is not None else None)]
    loss = sum(p[0] for p in parts)
    if not need_grads:
        return ref.OutputGrads(loss, None, None, None)
    dW, db = parts[0][1], parts[0][2]
    for _, dW_k, db_k in parts[1:]:
        dW += dW_k
        if db is not None:
            db += db_k
    return ref.OutputGrads(loss, dx, dW, db)
