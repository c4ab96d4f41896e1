"""``lstmlab export RUN_DIR --format onnx``: a text-generation run as an ONNX model and its vocabulary.

The sampling model is the run's model (embedding, recurrent layers, dropout, logits) with every recurrent
layer's states as graph inputs and outputs (:mod:`lstmlab.interop.onnx_export`, ``states=True``): a caller
feeds one character id of shape (1, 1) and the states of the previous step, and gets the next character's
logits and the new states, which is what :class:`~lstmlab.apps.textgen.CharSampler` does in lstmlab.
``examples/onnx_sampler.py`` is such a caller, in ONNX Runtime alone.

Next to ``model.onnx`` goes ``model.vocab.json``, everything a sampler needs besides the graph::

    {"format": "lstmlab-textgen-onnx", "chars": "\\n abc...", "default_prime": "\\n",
     "input": "input", "logits": "logits",
     "states": [{"input": "lstm_1/initial_h", "output": "lstm_1/final_h", "size": 256}, ...]}
"""
from __future__ import annotations

import json
import os

from ...interop.onnx_export import export_onnx
from ...io.safetensors import atomic_write
from ..runs import run_checkpoint  # the checkpoint lstmlab generate RUN_DIR samples from
from .trainer import load_checkpoint

FORMAT = "lstmlab-textgen-onnx"


def vocab_path(onnx_path: str) -> str:
    """``model.onnx`` -> ``model.vocab.json``."""
    return os.path.splitext(onnx_path)[0] + ".vocab.json"


def export_run(run: str, out: str | None = None) -> tuple[str, str]:
    """Export the sampling model of ``run`` (a run directory or a checkpoint) to ``out`` (default
    ``RUN_DIR/model.onnx``) and its vocabulary to :func:`vocab_path`; returns both paths."""
    path = run_checkpoint(run)
    if out is None:
        out = os.path.join(os.path.dirname(path), "model.onnx")
    if not out.endswith(".onnx") or os.path.isdir(out):
        raise ValueError(f"out: expected a file path ending in .onnx, got {out!r}")
    model, vocab, *_ = load_checkpoint(path)
    interface = export_onnx(model, out, states=True)
    meta = {"format": FORMAT, "chars": vocab.chars,
            "default_prime": "\n" if "\n" in vocab.index else vocab.chars[0],  # as CharSampler primes
            "input": interface["inputs"][0], "logits": interface["outputs"][0], "states": interface["states"]}
    vpath = vocab_path(out)
    atomic_write(vpath, json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
    return out, vpath
