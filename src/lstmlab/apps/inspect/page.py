"""The page: page.html with page.css and the scripts inlined, the encoded trace and the gate saturation.

One file, nothing fetched: the stylesheet and the script are inlined, the arrays are base64 inside the
page, and a Content-Security-Policy forbids every request. It opens from a file:// URL in any browser.
"""
from __future__ import annotations

import html as html_lib
from importlib import resources

from ...io.safetensors import atomic_write
from .data import Trace
from .encoding import encode, script_json
from .search import saturation

SCRIPTS = ("page_data.js", "page_search.js", "page.js")  # one scope, in this order (page.html wraps them)
GATES = ("i", "f", "o")  # the gates whose saturation the scatter shows (g is a tanh, not a gate)


def _asset(name: str) -> str:
    try:
        return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:  # a wheel built without the package data
        raise FileNotFoundError(f"lstmlab is installed without the page's {name} (package data of "
                                "lstmlab.apps.inspect); reinstall it from a build that includes *.html, *.js and "
                                "*.css") from None


def render(trace: Trace, title: str = "", source: str = "", model: str = "") -> str:
    """The HTML of the page for ``trace``; ``title``, ``source`` and ``model`` describe it in its header."""
    meta, blobs = encode(trace, {"title": title, "source": source, "model": model})
    for layer, lt in zip(meta["layers"], trace.layers):
        sat = {}
        for g in GATES:
            left, right = saturation(lt.values[g])  # (H,) each, from the exact values
            sat[g] = {"left": [round(float(x), 5) for x in left], "right": [round(float(x), 5) for x in right]}
        layer["saturation"] = sat
    page = _asset("page.html")
    # The assets first, the data last: no placeholder can appear inside base64 or escaped JSON anyway.
    script = "\n".join(_asset(name) for name in SCRIPTS)
    for marker, text in (("/*__CSS__*/", _asset("page.css")), ("/*__JS__*/", script),
                         ("__TITLE__", html_lib.escape(f"lstmlab inspect: {title}"))):
        page = page.replace(marker, text, 1)
    head, sep, tail = page.partition("__META__")
    tail_head, sep2, tail_rest = tail.partition("__BLOBS__")
    if not sep or not sep2:
        raise RuntimeError("page.html lost its __META__ / __BLOBS__ markers")
    parts = [head, script_json(meta), tail_head]
    for key, text in blobs.items():
        parts.append(f'<script type="application/octet-stream" id="{key}">{text}</script>\n')
    parts.append(tail_rest)
    return "".join(parts)


def write(path, page: str) -> None:
    """Write the page atomically (a reader never sees half a page)."""
    atomic_write(path, page.encode("utf-8"))
