"""bfloat16 inference of the LSTM, in NumPy: the reference of ``LSTM(units, dtype="bfloat16")``.

bfloat16 keeps float32's 8 exponent bits and the top 7 of its 23 mantissa
bits: a float32 with its low 16 bits rounded away (round to nearest, ties to
even). NumPy has no bf16 type, so :func:`to_bfloat16` returns float32 arrays
whose values are exactly representable in bf16.

The bf16 LSTM rounds the two operands of each product to bf16 and does
everything else in float32 (sums, bias, the cell). With the equations of
:mod:`lstmlab.functional.lstm`::

    z_t = bf16(x_t) @ bf16(kernel) + bf16(h_{t-1}) @ bf16(recurrent_kernel) + bias     (float32 sums)
    (1)-(6) unchanged, in float32; h_t stays float32 for the output and the next step's cell,
    and enters the next product as bf16(h_t)

A product of two bf16 numbers has at most 16 significant bits, so it is exact
in float32: this forward and the C one (``_fast/lstm_bf16.c``, what
:mod:`lstmlab._fast.lstm_bf16` runs on a CPU with AVX512_BF16) differ only by
the order of their float32 sums. Where the C path cannot run (no AVX512_BF16,
or ``LSTMLAB_ISA=avx2`` / ``generic``) this is what runs, so a bf16 model
gives the same numbers on every machine up to that order.

Inference only: there is no backward (train in float32, then load the weights
into a model built with ``dtype="bfloat16"``).
"""
from __future__ import annotations

import numpy as np

from ._validate import check_mask
from .activations import sigmoid


def to_bfloat16(a) -> np.ndarray:
    """``a`` rounded to bfloat16 (nearest, ties to even), as float32 values exactly representable in bf16.

    Parameters
    ----------
    a : array_like
        Converted to float32 first.

    Returns
    -------
    ndarray of float32, shape of ``a``
        Infinities stay infinite, NaN stays NaN; a value beyond bf16's largest (about 3.39e38) becomes
        infinite, as the hardware's conversion does.
    """
    a = np.asarray(a, np.float32)
    u = a.view(np.uint32).astype(np.uint64)  # uint64: the rounding carry of a NaN's all-ones bits must not wrap
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    nan = np.isnan(a)
    if nan.any():  # a NaN whose payload sits in the low bits would round to infinity: keep it a (quiet) NaN
        rounded = np.where(nan, (a.view(np.uint32) & 0xFFFF0000) | 0x00400000, rounded).astype(np.uint32)
    return rounded.view(np.float32).reshape(a.shape)


def lstm_bf16_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *, mask=None):
    """The LSTM over a whole sequence with bf16 products (inference; tanh and sigmoid).

    Parameters
    ----------
    x : ndarray, (B, T, D)
    kernel : (D, 4H); recurrent_kernel : (H, 4H); bias : (4H,) or None — float32 master weights, gate
        blocks i, f, c, o (the layout of :mod:`lstmlab.functional.lstm`)
    h0, c0 : ndarray, (B, H), or None (zeros)
    mask : array of bool, (B, T), optional
        Padded steps (False) carry h and c through unchanged.

    Returns
    -------
    hs : ndarray of float32, (B, T, H)
    (h_T, c_T) : ndarray of float32, (B, H) each, after each row's last valid step
    """
    x = np.asarray(x, np.float32)
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    h = np.zeros((B, H), np.float32) if h0 is None else np.array(h0, np.float32)  # (B, H)
    c = np.zeros((B, H), np.float32) if c0 is None else np.array(c0, np.float32)  # (B, H)
    valid = check_mask(mask, B, T)  # (B, T) bool or None
    W, U = to_bfloat16(kernel), to_bfloat16(recurrent_kernel)  # (D, 4H), (H, 4H)
    zx = to_bfloat16(x).reshape(B * T, D) @ W  # (B*T, 4H) the input products of all steps, float32 sums
    if bias is not None:
        zx += np.asarray(bias, np.float32)
    zx = zx.reshape(B, T, 4 * H)  # (B, T, 4H)
    hs = np.empty((B, T, H), np.float32)  # (B, T, H)
    for t in range(T):
        z = zx[:, t] + to_bfloat16(h) @ U  # (B, 4H)
        i, f = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H])  # (2) input gate, (1) forget gate
        g, o = np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])  # (3) candidate, (5) output gate
        c_next = f * c + i * g  # (4) (B, H)
        h_next = o * np.tanh(c_next)  # (6) (B, H)
        if valid is not None:  # padded steps carry h and c
            keep = valid[:, t, None]  # (B, 1)
            c_next, h_next = np.where(keep, c_next, c), np.where(keep, h_next, h)
        h, c = h_next.astype(np.float32), c_next.astype(np.float32)
        hs[:, t] = h
    return hs, (h.copy(), c)
