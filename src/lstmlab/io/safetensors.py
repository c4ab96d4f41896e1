"""A dependency-free reader and writer of the safetensors format.

Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an
optional ``"__metadata__"`` map of strings), then the raw little-endian bytes.
Files written here open with the ``safetensors`` package and vice versa.
Reading parses JSON and copies bytes, so a file from a stranger cannot run
code (unlike pickle).

The reader is as strict as the reference implementation: every entry well
formed, every byte range inside the data, sized exactly for its shape and
dtype, and the ranges tiling the data without overlaps or holes. Shapes are
multiplied in Python integers, so no product can overflow; nothing is
allocated for a tensor until its whole entry has been checked.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import struct

import numpy as np

from .errors import ModelFileError

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024
_MAX_DIMS = 32  # numpy's own limit is 64; no weight has more than a handful


class CorruptFileError(ModelFileError):
    """The file is not a complete, well-formed safetensors file."""


# -- writing -------------------------------------------------------------------
def _create_temporary(folder: str, base: str) -> tuple[int, str]:
    """A new file next to the target, created with mode 0666 so the umask decides its permissions.

    (``tempfile.mkstemp`` would create it 0600, and the rename would keep that.)
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(4)}{base}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"path: could not create a temporary file in {folder!r}")


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one.

    The bytes are fsync'ed before the rename and the folder after it; the file gets the
    permissions the umask gives a new file (e.g. 0644 under umask 022).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temporary(folder, os.path.basename(path))
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
    _fsync_folder(folder)


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


# -- reading -------------------------------------------------------------------
def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice")
        out[k] = v
    return out


def _too_deep(obj, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def parse_json(text, max_depth: int | None = None):
    """Strict JSON: no NaN / Infinity / 1e999, no repeated keys, nesting at most ``max_depth``.

    Raises ValueError with the reason (the caller names the file and field).
    """
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except ValueError as exc:  # from the hooks, or an integer of more than 4300 digits
        raise ValueError(f"not acceptable JSON ({exc})") from None
    if max_depth is not None and _too_deep(value, max_depth):
        raise ValueError(f"nested more than {max_depth} levels deep")
    return value


def _natural(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _entry(where: str, name: str, info, body_size: int) -> tuple[np.dtype, tuple, int, int]:
    """``(dtype, shape, begin, end)`` of one header entry, every part checked."""
    field = f"tensor {name!r}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise CorruptFileError(where, field, "expected an object with exactly dtype, shape and data_offsets, got "
                               f"{info if not isinstance(info, dict) else sorted(info)!r}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in _DTYPES:
        raise CorruptFileError(where, f"{field}: dtype", f"expected one of {', '.join(_DTYPES)}, got {code!r}")
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS or not all(_natural(s) for s in shape):
        raise CorruptFileError(where, f"{field}: shape", f"expected a list of at most {_MAX_DIMS} non-negative "
                               f"integers, got {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_natural(v) for v in offsets):
        raise CorruptFileError(where, f"{field}: data_offsets", f"expected [begin, end], got {offsets!r}")
    begin, end = offsets
    dtype = np.dtype(_DTYPES[code])
    size = math.prod(shape) * dtype.itemsize  # Python integers: cannot overflow
    if not begin <= end <= body_size:
        raise CorruptFileError(where, f"{field}: data_offsets", f"truncated or corrupted data for tensor {name!r}: "
                               f"[{begin}, {end}] is not inside the {body_size} data bytes")
    if end - begin != size:
        raise CorruptFileError(where, f"{field}: data_offsets", f"truncated or corrupted data for tensor {name!r}: "
                               f"shape {shape} of {code} needs {size} bytes, data_offsets span {end - begin}")
    return dtype, tuple(shape), begin, end


def _check_tiling(where: str, spans: list, body_size: int) -> None:
    """The byte ranges must cover the data exactly once, as the reference reader requires."""
    spans.sort(key=lambda s: (s[1], s[2]))
    at, previous = 0, None
    for name, begin, end in spans:
        if begin < at:
            raise CorruptFileError(where, f"tensor {name!r}: data_offsets",
                                   f"bytes [{begin}, {end}] overlap those of tensor {previous!r}")
        if begin > at:
            raise CorruptFileError(where, f"tensor {name!r}: data_offsets",
                                   f"bytes [{at}, {begin}] before it belong to no tensor")
        at, previous = end, name
    if at != body_size:
        raise CorruptFileError(where, "data_offsets", f"the last {body_size - at} data bytes belong to no tensor")


def load_file(path, max_header: int = _MAX_HEADER) -> tuple[dict, dict]:
    """Read a safetensors file; returns ``(tensors, metadata)``.

    Raises
    ------
    CorruptFileError
        (a :class:`ModelFileError`) for a truncated file, a bad header, a malformed entry, byte
        ranges outside the data, overlapping or leaving holes, or a metadata map that is not strings.
    """
    where = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise CorruptFileError(where, None, f"not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > max_header or 8 + n > len(data):
        raise CorruptFileError(where, "header", f"truncated or not a safetensors file (header of {n} bytes, "
                               f"file of {len(data)})")
    try:
        header = parse_json(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(where, "header", f"corrupted header ({exc})") from None
    if not isinstance(header, dict):
        raise CorruptFileError(where, "header", f"expected a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptFileError(where, "__metadata__", "expected a map of strings to strings")
    body = memoryview(data)[8 + n :]
    entries = {name: _entry(where, name, info, len(body)) for name, info in header.items()}
    _check_tiling(where, [(name, e[2], e[3]) for name, e in entries.items()], len(body))
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return tensors, metadata
