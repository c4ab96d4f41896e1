"""``to_categorical``: integer class labels -> one-hot rows (Keras's semantics).

``to_categorical([2, 0], 3) == [[0, 0, 1], [1, 0, 0]]``. Labels of shape ``(..., 1)`` are first squeezed
to ``(...)`` (the column vectors ``model.predict`` and many loaders give), so ``(N, 1) -> (N, C)`` and
not ``(N, 1, C)``.
"""
from __future__ import annotations

import numpy as np


def to_categorical(x, num_classes=None):
    """One-hot encode class labels, as ``keras.utils.to_categorical``.

    Parameters
    ----------
    x : array-like of integers in ``[0, num_classes)``, shape ``S``
        Converted with ``np.array(x, dtype="int64")`` as Keras does (so ``2.0`` is class 2).
    num_classes : int or None
        Number of classes ``C``; ``None`` uses ``max(x) + 1``.

    Returns
    -------
    np.ndarray of float32 with shape ``S + (C,)``, or ``S[:-1] + (C,)`` when ``S`` ends in 1 and has
    at least two axes. (Keras's NumPy path returns float64 with the same values; float32 is the
    library's float type and what Keras's tensor path gives.)

    Raises
    ------
    ValueError
        For a negative label, a label ``>= num_classes``, or a ``num_classes`` that is not a positive integer.
    """
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ValueError(f"num_classes: expected None or a positive integer, got {num_classes!r}")
    labels = np.array(x, dtype="int64")
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]  # (..., 1) -> (...): a column of labels is one label per row
    flat = labels.reshape(-1)  # (M,)
    if flat.size and flat.min() < 0:
        raise ValueError(f"x: expected class labels >= 0, got {int(flat.min())}")
    if num_classes is None:
        if not flat.size:
            raise ValueError("num_classes: cannot infer the number of classes from empty labels; pass num_classes")
        num_classes = int(flat.max()) + 1
    elif flat.size and flat.max() >= num_classes:
        raise ValueError(f"x: expected class labels < num_classes={int(num_classes)}, got {int(flat.max())}")
    onehot = np.zeros((flat.size, int(num_classes)), dtype=np.float32)  # (M, C)
    onehot[np.arange(flat.size), flat] = 1.0
    return onehot.reshape(shape + (int(num_classes),))  # S + (C,)
