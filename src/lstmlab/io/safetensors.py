"""A dependency-free reader and writer of the safetensors format.

Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an
optional ``"__metadata__"`` map of strings), then the raw little-endian bytes.
Files written here open with the ``safetensors`` package and vice versa.
Reading parses JSON and copies bytes, so a file from a stranger cannot run
code (unlike pickle).
"""
from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class CorruptFileError(ValueError):
    """The file is not a complete, well-formed safetensors file."""


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in _CODES:
            raise ValueError(f"tensors[{name!r}]: dtype {arr.dtype} cannot be stored; expected one of "
                             f"{', '.join(sorted(str(np.dtype(d)) for d in _DTYPES.values()))}")
        raw = arr.astype(np.dtype(_DTYPES[_CODES[arr.dtype]]), copy=False).tobytes()
        header[name] = {"dtype": _CODES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # align the data to 8 bytes
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def save_file(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> ndarray) and string ``metadata`` to ``path`` atomically."""
    atomic_write(path, to_bytes(tensors, metadata))


def load_file(path) -> tuple[dict, dict]:
    """Read a safetensors file; returns ``(tensors, metadata)``.

    Raises
    ------
    CorruptFileError
        For a truncated file, a bad header or offsets outside the data.
    """
    with open(path, "rb") as f:
        data = f.read()
    where = os.fspath(path)
    if len(data) < 8:
        raise CorruptFileError(f"{where}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise CorruptFileError(f"{where}: truncated or not a safetensors file (header of {n} bytes, file of {len(data)})")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{where}: corrupted header ({exc})") from None
    if not isinstance(header, dict):
        raise CorruptFileError(f"{where}: corrupted header (not a JSON object)")
    metadata = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n :]
    tensors = {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CorruptFileError(f"{where}: corrupted entry for tensor {name!r}") from None
        size = int(np.prod(shape)) * dtype.itemsize
        if not 0 <= begin <= end <= len(body) or end - begin != size:
            raise CorruptFileError(f"{where}: truncated or corrupted data for tensor {name!r}")
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return tensors, metadata
