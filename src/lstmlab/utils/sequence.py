"""``pad_sequences``: a ragged list of sequences -> one rectangular array (Keras's semantics).

Every sequence is first cut to ``maxlen`` steps (``truncating`` says which end loses steps), then
placed at the start (``padding="post"``) or the end (``padding="pre"``) of a row filled with ``value``::

    sequences = [[1], [2, 3], [4, 5, 6]], maxlen=2
    pre/pre   ->  [[0, 1], [2, 3], [5, 6]]
    post/post ->  [[1, 0], [2, 3], [4, 5]]

Steps may themselves be arrays (e.g. feature vectors): the output is then ``(N, maxlen) + step_shape``,
the step shape taken from the first non-empty sequence, as Keras does.
"""
from __future__ import annotations

import numpy as np

_ENDS = ("pre", "post")


def _is_string_dtype(dtype) -> bool:
    """True for NumPy's fixed-width text dtypes (``"<U5"``, ``"S3"``, ``str``); ``object`` is not one."""
    try:
        return np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    except TypeError:
        return False


def _check_end(name: str, value) -> None:
    if not isinstance(value, str) or value not in _ENDS:
        raise ValueError(f"{name}: expected 'pre' or 'post', got {value!r}")


def _check_maxlen(maxlen):
    if maxlen is None:
        return None
    if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"maxlen: expected None or a non-negative integer, got {maxlen!r}")
    return int(maxlen)


def _lengths_and_step_shape(sequences) -> tuple[list[int], tuple]:
    """Length of every sequence and the shape of one step (``()`` for scalars) from the first non-empty one."""
    lengths, step_shape, found = [], (), False
    for idx, seq in enumerate(sequences):
        try:
            n = len(seq)
        except TypeError:
            raise ValueError(f"sequences: expected a list of sequences, got a non-sequence {seq!r} "
                             f"at position {idx}") from None
        lengths.append(n)
        if not found and n:
            step_shape = np.asarray(seq).shape[1:]
            found = True
    return lengths, step_shape


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (and cut) sequences of different lengths to one array, as ``keras.utils.pad_sequences``.

    Parameters
    ----------
    sequences : list of N sequences (lists, tuples or arrays), each of shape ``(T_n,) + step_shape``
        May be ragged: the ``T_n`` differ. Empty sequences become rows of ``value``.
    maxlen : int or None
        Length of every output row; ``None`` uses the longest sequence.
    dtype : str or dtype, default ``"int32"``
        Output type. Use ``object`` (or a text dtype such as ``"<U10"``) for strings.
    padding : ``"pre"`` or ``"post"``
        Put the padding before (default) or after each sequence.
    truncating : ``"pre"`` or ``"post"``
        Drop the extra steps of a too-long sequence from its beginning (default) or its end.
    value : float or str, default 0.0
        The padding value (cast to ``dtype``).

    Returns
    -------
    np.ndarray of shape ``(N, maxlen) + step_shape`` and type ``dtype``.

    Raises
    ------
    ValueError
        For a bad ``padding``/``truncating``/``maxlen``, a string ``value`` with a numeric ``dtype``,
        an element that is not a sequence, or steps whose shapes differ between sequences.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"sequences: expected a list of sequences (something with a length), "
                         f"got {type(sequences).__name__}")
    _check_end("padding", padding)
    _check_end("truncating", truncating)
    maxlen = _check_maxlen(maxlen)
    if isinstance(value, str) and dtype is not object and not _is_string_dtype(dtype):
        raise ValueError(f"value: a string ({value!r}) needs dtype=object or a text dtype, got dtype={dtype!r}")

    lengths, step_shape = _lengths_and_step_shape(sequences)
    if maxlen is None:
        if not lengths:
            raise ValueError("sequences: expected at least one sequence when maxlen is None, got an empty list")
        maxlen = max(lengths)

    out = np.full((len(lengths), maxlen) + step_shape, value, dtype=dtype)  # (N, maxlen) + step_shape
    if maxlen == 0:
        return out
    for idx, (seq, n) in enumerate(zip(sequences, lengths)):
        if n == 0:
            continue  # an empty sequence is all padding
        # Slice the sequence itself (not an array of it) so a ragged nested list is only converted once cut.
        kept = seq[max(n - maxlen, 0):] if truncating == "pre" else seq[:maxlen]
        kept = np.asarray(kept, dtype=dtype)  # (min(T_n, maxlen),) + step_shape
        if kept.shape[1:] != step_shape:
            raise ValueError(f"sequences: the steps of the sequence at position {idx} have shape {kept.shape[1:]}, "
                             f"expected {step_shape} (the shape of the first non-empty sequence's steps)")
        if padding == "post":
            out[idx, : len(kept)] = kept
        else:
            out[idx, maxlen - len(kept):] = kept
    return out
