"""The weight gradients of a recurrent layer: the GEMMs that follow the time loop of BPTT.

Once the loop has produced the gradient of every step's pre-activations,
nothing is sequential any more: with every (step, sequence) pair as one row,

    dx                 = da @ kernel.T               the error sent to the layer below
    dkernel            = sum_rows x.T @ da            all steps in one GEMM
    drecurrent_kernel  = sum_rows h_{t-1}.T @ du
    dbias              = sum_rows da   (the GRU adds a second row: sum_rows du)

``da`` is the gradient reaching the input-side pre-activations and ``du`` the
recurrent side; they are the same array for the LSTM and the simple RNN and
differ for the GRU, whose reset gate multiplies the recurrent term. Shared by
the reference (time-major rows) and the fast path (batch-first rows).
"""
from __future__ import annotations

import numpy as np


def weight_grads(x, da, du, h_prev, kernel, has_bias: bool, bias_rows: bool = False, matmul=np.matmul,
                 dx_out=None):
    """``(dx, dkernel, drecurrent_kernel, dbias)`` from per-row arrays.

    Parameters
    ----------
    x : ndarray, (..., D)
    da, du : ndarray, (..., gH)
    h_prev : ndarray, (..., H)
        h_{t-1} of every row (after recurrent dropout, if any).
        The leading axes are the same for all four, in either order.
    kernel : ndarray, (D, gH)
    has_bias : bool
    bias_rows : bool
        The GRU's bias of shape (2, gH): input row, recurrent row.
    matmul : callable
        ``matmul(a, b, out=None)`` for 2-D operands (the fast path passes its own float32 GEMM).
    dx_out : ndarray, (..., D), optional
        Where to write dx (C-contiguous); a new array otherwise.
    """
    lead = da.shape[:-1]
    n = int(np.prod(lead))
    # explicit widths, not -1: N may be 0 (a batch chunk whose steps are all padded gathers no rows)
    da2, du2 = da.reshape(n, da.shape[-1]), du.reshape(n, du.shape[-1])  # (N, gH)
    if dx_out is None:
        dx = matmul(da2, kernel.T).reshape(*lead, kernel.shape[0])  # (..., D)
    else:
        dx = dx_out
        matmul(da2, kernel.T, out=dx_out.reshape(n, kernel.shape[0]))  # (N, D), written in place
    dkernel = matmul(x.reshape(n, x.shape[-1]).T, da2)  # (D, gH)
    drecurrent_kernel = matmul(h_prev.reshape(n, h_prev.shape[-1]).T, du2)  # (H, gH)
    if not has_bias:
        dbias = None
    elif bias_rows:
        dbias = np.stack([da2.sum(axis=0), du2.sum(axis=0)])  # (2, gH)
    else:
        dbias = da2.sum(axis=0)  # (gH,)
    return dx, dkernel, drecurrent_kernel, dbias
