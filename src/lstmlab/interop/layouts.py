"""The gate layouts of the three ecosystems, stated once; every converter reorders through :func:`reorder`.

lstmlab keeps Keras's layouts (see :mod:`lstmlab.layers`): an LSTM's fused matrices hold the gates in the
order i, f, c~, o (we call c~ "g"), a GRU's in the order z, r, h~. The gate blocks of a fused matrix lie
along its last axis in Keras (``kernel (input_dim, 4*units)``) and along its first axis in PyTorch and
ONNX (``weight_ih_l0 (4*hidden, input)``, ONNX ``W [num_directions, 4*hidden, input]``).

=========  ================  ====================  =============================
cell       Keras / lstmlab   PyTorch               ONNX
=========  ================  ====================  =============================
LSTM       i, f, g, o        i, f, g, o            i, o, f, g   (peepholes P: i, o, f)
GRU        z, r, h           r, z, h (called n)    z, r, h
=========  ================  ====================  =============================

GRU biases: Keras ``reset_after=True`` keeps two rows, ``bias (2, 3*units)`` = [input bias, recurrent bias];
PyTorch's ``bias_ih`` / ``bias_hh`` are those two rows (reordered); ONNX's ``B`` is both rows concatenated
(``[Wb, Rb]``, 6*hidden) and ``linear_before_reset=1`` is ``reset_after=True``.
"""
from __future__ import annotations

import numpy as np

LSTM = {"keras": ("i", "f", "g", "o"), "torch": ("i", "f", "g", "o"), "onnx": ("i", "o", "f", "g")}
GRU = {"keras": ("z", "r", "h"), "torch": ("r", "z", "h"), "onnx": ("z", "r", "h")}
PEEPHOLE = {"keras": ("i", "f", "o"), "onnx": ("i", "o", "f")}  # lstmlab's PeepholeLSTMCell: one vector per gate


def reorder(w, src: tuple, dst: tuple, axis: int = -1) -> np.ndarray:
    """``w``'s gate blocks (equal parts along ``axis``) moved from the order ``src`` to the order ``dst``.

    >>> reorder(np.arange(4), LSTM["keras"], LSTM["onnx"])   # i f g o -> i o f g
    array([0, 3, 1, 2])
    """
    w = np.asarray(w)
    if sorted(src) != sorted(dst):
        raise ValueError(f"reorder: {src} and {dst} name different gates")
    if w.shape[axis] % len(src):
        raise ValueError(f"reorder: axis {axis} of shape {w.shape} does not split into {len(src)} gates")
    blocks = dict(zip(src, np.split(w, len(src), axis=axis)))
    return np.concatenate([blocks[g] for g in dst], axis=axis)
