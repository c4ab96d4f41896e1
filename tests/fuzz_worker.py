"""Runs seeded fuzz cases against the model loader in a process with bounded memory and time.

    python tests/fuzz_worker.py KIND SEED CASES FOLDER

KIND is ``bytes`` (random bytes changed, cut or added) or ``json`` (values inside the JSON header and
its JSON metadata changed: types, numbers, keys, nesting). Each case is a mutation of one valid saved
model (tests/model_files.py); its outcome must be ``loads`` (and predicts finite outputs) or
``refused`` (one ModelFileError naming the file). Anything else is printed as a failure.

Bounds: after a warm-up load the address space is limited (RLIMIT_AS) to what it is plus
``HEADROOM`` bytes, so an allocation beyond that fails inside the case; every case runs under
``alarm(CASE_SECONDS)``, whose default action kills the process, so even a hang in C is caught
(the parent reports the case that never finished). One JSON line per case goes to stdout.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HEADROOM = 300 * 2**20
CASE_SECONDS = 10
SENTINEL = "\u0000raw\u0000"
RAW_TEXTS = ["1e999", "-1e999", "9" * 5000, "NaN", "-Infinity", "[" * 100_000 + "]" * 100_000,
             "{\"a\":" * 50_000 + "1" + "}" * 50_000]
POOL = [None, True, False, 0, 1, -1, 2, 3, 2**31, 2**63, -(2**63), 10**9, 10**30, 0.5, -0.0, 1e308, 1e-320,
        "", "x", "LSTM", "Dense", "TimeDistributed", "Bidirectional", "adam", "float64", "int32", "F32", "I32",
        "BOOL", "lstm_1", [], [1], [None, None], {}, {"class_name": "LSTM", "config": {}}]
META_JSON = ("config", "compile", "extra", "weight_order")
SPECIAL_FLOATS = [np.inf, -np.inf, np.nan, 3e38, -3e38, 1e30, 1e-45, -0.0]


# -- bytes ---------------------------------------------------------------------
def bytes_case(valid: bytes, rng) -> tuple[str, bytes]:
    from model_files import split

    n = 8 + int.from_bytes(valid[:8], "little")
    header, _ = split(valid)
    data = bytearray(valid)
    how = rng.integers(5)
    if how == 4:  # cut or extend
        if rng.random() < 0.7:
            return "bytes: file cut short or extended", bytes(data[: int(rng.integers(0, len(data)))])
        return "bytes: file cut short or extended", bytes(data) + bytes(rng.integers(0, 256, int(rng.integers(1, 64)),
                                                                                     dtype=np.uint8))
    region = ("bytes: header length (first 8 bytes)", 0, 8) if how == 0 else (
        ("bytes: JSON header", 8, n) if how in (1, 2) else ("bytes: tensor data", n, len(data)))
    name, lo, hi = region
    for _ in range(int(rng.integers(1, 5))):
        at = int(rng.integers(lo, hi))
        if name == "bytes: JSON header" and rng.random() < 0.5:  # printable: keeps the JSON parseable more often
            data[at] = int(rng.choice(list(b'0123456789-.eE[]{}",:tfn ')))
        elif name == "bytes: tensor data" and rng.random() < 0.5:  # a whole special float32 (data is 4-aligned)
            at -= (at - lo) % 4
            data[at : at + 4] = np.float32(SPECIAL_FLOATS[int(rng.integers(len(SPECIAL_FLOATS)))]).tobytes()
        else:
            data[at] = int(rng.integers(0, 256))
    assert header is not None
    return name, bytes(data)


# -- JSON ------------------------------------------------------------------------
def _slots(node):
    """Every (container, key) in a JSON tree."""
    stack = [node]
    while stack:
        cur = stack.pop()
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in items:
            yield cur, k
            stack.append(v)


def _mutate(parent, key, rng) -> str:
    value = parent[key]
    how = int(rng.integers(7))
    if how == 0:
        parent[key] = POOL[int(rng.integers(len(POOL)))]
        return "type or value swapped"
    if how == 1 and isinstance(value, (int, float)) and not isinstance(value, bool):
        op = int(rng.integers(6))
        parent[key] = [value + 1, value - 1, -value, value * 1000, value * 10**12, 0][op]
        return "number changed"
    if how == 2:
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
        return "key or element removed"
    if how == 3:
        if isinstance(parent, dict):
            parent["unknown_" + str(int(rng.integers(100)))] = POOL[int(rng.integers(len(POOL)))]
        else:
            parent.append(parent[key])
        return "key or element added"
    if how == 4:
        parent[key] = [value] if rng.random() < 0.5 else {"layer": value, "class_name": "TimeDistributed"}
        return "nesting added"
    if how == 5:
        parent[key] = SENTINEL + RAW_TEXTS[int(rng.integers(len(RAW_TEXTS)))]
        return "raw number or deep nesting"
    if isinstance(value, str):
        parent[key] = value[: int(rng.integers(0, len(value) + 1))] + ("_" if rng.random() < 0.5 else "")
        return "string changed"
    parent[key] = None
    return "type or value swapped"


def _dumps(obj) -> str:
    text = json.dumps(obj)
    for raw in RAW_TEXTS:
        text = text.replace(json.dumps(SENTINEL + raw), raw)
    return text


def json_case(valid: bytes, rng) -> tuple[str, bytes]:
    from model_files import join, split

    header, body = split(valid)
    meta = header["__metadata__"]
    target = ["header entries", "config", "config", "config", "compile", "extra", "weight_order",
              "other metadata"][int(rng.integers(8))]
    if target in META_JSON:
        doc = json.loads(meta[target])
        slots = list(_slots(doc))
        if slots:
            _mutate(*slots[int(rng.integers(len(slots)))], rng)
        else:
            doc = POOL[int(rng.integers(len(POOL)))]
        meta[target] = _dumps(doc)
    elif target == "other metadata":
        keys = [k for k in meta if k not in META_JSON]
        _mutate(meta, keys[int(rng.integers(len(keys)))], rng)
    else:
        entries = {k: v for k, v in header.items() if k != "__metadata__"}
        slots = [(header, k) for k in entries] + [s for v in entries.values() for s in _slots(v)]
        _mutate(*slots[int(rng.integers(len(slots)))], rng)
    return f"json: {target}", join(None, body, raw_header=_dumps(header).encode())


# -- one case --------------------------------------------------------------------
def _input_for(model, rng):
    first = model.layers[0]
    shape = list(model._declared_input_shape or (None, None))
    shape = [(4 if k == 0 else 3) if s is None else s for k, s in enumerate(shape)]
    if int(np.prod(shape)) > 10**6:
        raise AssertionError(f"declared input {shape} too large to run")
    if type(first).__name__ == "Embedding":
        return rng.integers(0, first.input_dim, shape)
    return rng.standard_normal(shape).astype(np.float32)


def run_case(path: str, rng) -> dict:
    import lstmlab
    from lstmlab.io import ModelFileError

    try:
        model = lstmlab.load_model(path)
    except ModelFileError as exc:
        if repr(path) not in str(exc):
            return {"outcome": "failure", "detail": f"message does not name the file: {exc}"}
        return {"outcome": "refused", "detail": str(exc).replace(repr(path), "FILE")[:300]}
    except BaseException as exc:  # noqa: BLE001 - this is what the fuzzer looks for
        return {"outcome": "failure", "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}
    try:
        x = _input_for(model, rng)
        y = model.predict(x, batch_size=len(x))
        if not np.all(np.isfinite(y)):
            return {"outcome": "failure", "detail": "loaded, but predicts non-finite values"}
    except BaseException as exc:  # noqa: BLE001
        return {"outcome": "failure", "detail": f"loaded, but predict raised {type(exc).__name__}: {str(exc)[:300]}"}
    return {"outcome": "loads", "detail": ""}


def main(kind: str, seed: int, cases: int, folder: str) -> None:
    import warnings

    from model_files import save_valid

    warnings.simplefilter("ignore")  # a RuntimeWarning is not an outcome; non-finite outputs are checked
    valid = save_valid(os.path.join(folder, "valid.safetensors"))
    path = os.path.join(folder, "case.safetensors")
    rng = np.random.default_rng([seed, 0 if kind == "bytes" else 1])
    make = bytes_case if kind == "bytes" else json_case
    with open(path, "wb") as f:
        f.write(valid)
    assert run_case(path, rng)["outcome"] == "loads"  # warm up (imports, thread pools) before the limit
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + HEADROOM, resource.getrlimit(resource.RLIMIT_AS)[1]))
    print(json.dumps({"limit_mb": (size + HEADROOM) // 2**20}), flush=True)
    for k in range(cases):
        category, data = make(valid, rng)
        with open(path, "wb") as f:
            f.write(data)
        print(json.dumps({"case": k, "category": category, "started": True}), flush=True)
        signal.alarm(CASE_SECONDS)
        result = run_case(path, rng)
        signal.alarm(0)
        print(json.dumps({"case": k, "category": category, **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
