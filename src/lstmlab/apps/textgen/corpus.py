"""Corpora, the character vocabulary, and the contiguous streams char-rnn trains on.

The vocabulary is the sorted set of Unicode code points of the text, so any
UTF-8 text works, Chinese included (a novel has a few thousand distinct
characters). Text becomes one int32 id per character.
"""
from __future__ import annotations

import os
import stat

import numpy as np


class CorpusError(ValueError):
    """A corpus that cannot be trained on; the message names the file and the problem."""


def builtin_corpus() -> str:
    """The Python Language Reference topics that ship with CPython (``pydoc_data.topics``)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


MAX_CORPUS_BYTES = 1 << 30  # 1 GiB: the ids alone take 4 bytes per character, the streams as much again


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_corpus(path, max_bytes: int = MAX_CORPUS_BYTES) -> str:
    """Read a UTF-8 text file, refusing missing, empty, binary and non-UTF-8 files with a clear message.

    Only regular files are read (a device such as /dev/zero never ends, a FIFO can block forever), and only
    up to ``max_bytes``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CorpusError(f"corpus: no such file {path!r}")
    if os.path.isdir(path):
        raise CorpusError(f"corpus: {path!r} is a directory; expected a UTF-8 text file")
    limit = f"{max_bytes / (1 << 30):g} GiB" if max_bytes >= 1 << 30 else f"{max_bytes:,} bytes"

    def check_regular(mode):
        if not stat.S_ISREG(mode):
            raise CorpusError(f"corpus: {path!r} is {_file_kind(mode)}; expected a regular file")

    check_regular(os.stat(path).st_mode)  # before opening: opening a device can have effects of its own
    # O_NONBLOCK: should the path become a FIFO after the check, opening it does not wait for a writer.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        check_regular(info.st_mode)
        if info.st_size > max_bytes:
            raise CorpusError(f"corpus: {path!r} is {info.st_size:,} bytes, larger than the {limit} limit")
        raw = f.read(max_bytes + 1)  # a file that grows while we read still stops at the limit
    if len(raw) > max_bytes:
        raise CorpusError(f"corpus: {path!r} is larger than the {limit} limit")
    if not raw:
        raise CorpusError(f"corpus: {path!r} is empty; expected UTF-8 text")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"corpus: {path!r} looks binary (NUL byte at offset {nul}); expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus: {path!r} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "expected UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark is not part of the text
    if not text.strip():
        raise CorpusError(f"corpus: {path!r} holds only whitespace; expected text")
    return text


class Vocabulary:
    """Characters <-> ids; ``chars`` is the sorted string of distinct characters."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: k for k, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, *, argument: str = "text") -> np.ndarray:
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as exc:
            c = exc.args[0]
            raise CorpusError(f"{argument}: character {c!r} (U+{ord(c):04X}) is not in the model's vocabulary "
                              f"of {len(self)} characters") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_ids(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The last ``val_fraction`` of the text is held out for validation (never seen in training)."""
    n_val = int(round(len(ids) * val_fraction))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


def streams(ids: np.ndarray, n_streams: int, offset: int = 0) -> np.ndarray:
    """Cut the text (from ``offset``) into ``n_streams`` contiguous rows of equal length.

    Row b continues where its previous window ended, so a stateful model can
    carry its state from one window to the next (truncated BPTT).
    """
    ids = ids[offset:]
    per = len(ids) // n_streams
    return ids[: per * n_streams].reshape(n_streams, per)  # (B, L)


def windows(rows: np.ndarray, seq_len: int):
    """Yield ``(x, y)`` windows ``(B, seq_len)``: y is x shifted by one character."""
    for k in range(n_windows(rows.shape[1], seq_len)):
        start = k * seq_len
        yield rows[:, start : start + seq_len], rows[:, start + 1 : start + seq_len + 1]


def n_windows(rows_len: int, seq_len: int) -> int:
    return (rows_len - 1) // seq_len
