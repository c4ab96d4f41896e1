"""The compact form of a :class:`~.data.Trace` inside the page, and its decoding (for tests and tools).

Every per-step array becomes integer codes on a linear scale, ``value ~ lo + code * (hi - lo) / levels``,
so the error is at most half a step ``(hi - lo) / levels / 2``:

* the gates i, f, o (sigmoid, in [0, 1]) and g, h (tanh, in [-1, 1]) as uint8 on their fixed range;
* the cell c (unbounded) as uint8 on each unit's own [min, max] over the text;
* tanh(c) is not stored: the page computes it from c (tanh' <= 1 keeps it within c's half step);
* the predictions as uint16: token ids, probabilities on [0, 1], surprisal on [0, its maximum];
* a classifier's per-step class probabilities as uint16 on [0, 1], (T, C).

Each (layer, quantity) array is stored unit-major, (H, Tp) with Tp = T rounded up to a multiple of 3, so
that one unit's row is a whole number of base64 quanta (3 bytes = 4 characters): the page decodes a single
unit without decoding the layer. Blobs sit in ``<script type="application/octet-stream">`` elements (not
parsed as JavaScript), the rest in one JSON document.
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np

from .data import QUANTITIES, Trace

STORED = ("i", "f", "g", "c", "o", "h")  # tanh(c) is derived from c in the page
FIXED = {"i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "g": (-1.0, 1.0), "h": (-1.0, 1.0)}
LEVELS8, LEVELS16 = 255, 65535


def _codes(v, lo, hi, levels, dtype):
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant array: every code 0 decodes to lo
    return np.clip(np.rint((v - lo) / span * levels), 0, levels).astype(dtype)


def padded_length(T: int) -> int:
    return -(-T // 3) * 3


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).decode()


def encode(trace: Trace, extra: dict | None = None) -> tuple[dict, dict]:
    """``(meta, blobs)``: the JSON-able description and ``{blob id: base64 text}``."""
    T = len(trace.tokens)
    Tp = padded_length(T)
    blobs, layers = {}, []
    for k, lt in enumerate(trace.layers):
        ranges = {}
        for q in STORED:
            v = lt.values[q].T  # (H, T) unit-major
            if q in FIXED:
                lo, hi = FIXED[q]
                ranges[q] = {"lo": lo, "hi": hi, "levels": LEVELS8}
                lo_a, hi_a = np.float64(lo), np.float64(hi)
            else:  # the cell state: each unit on its own range
                lo_a, hi_a = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)  # (H, 1)
                ranges[q] = {"lo": lo_a[:, 0].tolist(), "hi": hi_a[:, 0].tolist(), "levels": LEVELS8}
            codes = np.zeros((lt.units, Tp), np.uint8)  # (H, Tp) padding steps stay 0
            codes[:, :T] = _codes(v, lo_a, hi_a, LEVELS8, np.uint8)
            blobs[f"q-{k}-{q}"] = _b64(codes)
        layers.append({"name": lt.name, "units": lt.units, "ranges": ranges})
    meta = {"format": "lstmlab-inspect/1", "T": T, "Tp": Tp, "tokens": trace.tokens, "vocab": trace.vocab,
            "layers": layers, "predictions": None,
            "final_output": None if trace.final_output is None else trace.final_output.tolist(),
            "starts": [int(t) for t in trace.starts], "classes": None, "targets": trace.targets,
            "token_kind": trace.token_kind}
    if trace.class_probs is not None:
        blobs["p-classes"] = _b64(_codes(trace.class_probs, 0.0, 1.0, LEVELS16, np.uint16))  # (T, C)
        meta["classes"] = {"names": list(trace.classes), "levels": LEVELS16}
    if trace.top_ids is not None:
        s = trace.surprisal[:-1]  # the last step has no next token
        s_hi = float(s.max()) if len(s) else 1.0
        blobs["p-ids"] = _b64(trace.top_ids.astype(np.uint16))  # (T, k)
        blobs["p-probs"] = _b64(_codes(trace.top_probs, 0.0, 1.0, LEVELS16, np.uint16))  # (T, k)
        blobs["p-surprisal"] = _b64(_codes(s, 0.0, s_hi, LEVELS16, np.uint16))  # (T-1,)
        meta["predictions"] = {"k": int(trace.top_ids.shape[1]), "levels": LEVELS16, "surprisal_hi": s_hi}
    meta.update(extra or {})
    return meta, blobs


def script_json(obj) -> str:
    """JSON safe inside a <script> element: no '<' can end it or open a comment."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


# -- decoding (the page does the same in page.js) ------------------------------------------------------
_BLOB = re.compile(r'<script type="application/octet-stream" id="([\w-]+)">([A-Za-z0-9+/=]*)</script>')
_META = re.compile(r'<script type="application/json" id="meta">(.*?)</script>', re.S)


def _dequantize(codes, lo, hi, levels):
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return lo + codes.astype(np.float64) * (np.where(hi > lo, hi - lo, 1.0) / levels)


def read_page(html: str) -> tuple[dict, dict]:
    """``(meta, blobs)`` embedded in a page written by :func:`~.page.render`."""
    m = _META.search(html)
    if m is None:
        raise ValueError("page: no lstmlab inspect data found")
    return json.loads(m.group(1)), {k: base64.b64decode(v) for k, v in _BLOB.findall(html)}


def decode(meta: dict, blobs: dict) -> dict:
    """The page's values: ``{"layers": [{q: (T, H) float64 for q in QUANTITIES}], "steps": {q: half step}}``
    plus the predictions (``top_ids``, ``top_probs``, ``surprisal``) or a classifier's ``class_probs`` (T, C)
    when the page has them."""
    T, Tp = meta["T"], meta["Tp"]
    out = {"layers": [], "steps": []}
    for k, layer in enumerate(meta["layers"]):
        H, values, steps = layer["units"], {}, {}
        for q in STORED:
            r = layer["ranges"][q]
            codes = np.frombuffer(blobs[f"q-{k}-{q}"], np.uint8).reshape(H, Tp)[:, :T]  # (H, T)
            lo, hi = np.asarray(r["lo"], np.float64), np.asarray(r["hi"], np.float64)
            if lo.ndim:
                lo, hi = lo[:, None], hi[:, None]  # (H, 1) per-unit range
            values[q] = _dequantize(codes, lo, hi, r["levels"]).T  # (T, H)
            steps[q] = np.broadcast_to((hi - lo) / r["levels"], (H, 1))[:, 0]  # (H,) one step per unit
        values["tc"] = np.tanh(values["c"])
        steps["tc"] = steps["c"]
        out["layers"].append({q: values[q] for q in QUANTITIES})
        out["steps"].append(steps)
    p = meta.get("predictions")
    if p:
        k, levels = p["k"], p["levels"]
        out["top_ids"] = np.frombuffer(blobs["p-ids"], "<u2").reshape(T, k).astype(np.int64)
        out["top_probs"] = np.frombuffer(blobs["p-probs"], "<u2").reshape(T, k) / levels
        out["surprisal"] = np.frombuffer(blobs["p-surprisal"], "<u2") * (p["surprisal_hi"] / levels)
    c = meta.get("classes")
    if c:
        out["class_probs"] = np.frombuffer(blobs["p-classes"], "<u2").reshape(T, len(c["names"])) / c["levels"]
    return out
