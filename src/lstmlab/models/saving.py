"""Model files: one safetensors file holding weights, optimizer state and JSON config (``.safetensors``).

The file name's ending picks the format (:func:`file_kind`): ``.safetensors`` is ours, ``.keras`` and
``.weights.h5`` are Keras 3's (:mod:`lstmlab.interop.keras_files`); any other ending is refused.

Tensors
    ``weights/<layer>/<weight>``          every weight, in model order
    ``optimizer/<slot>/<layer>/<weight>`` optimizer slots (moments, accumulators)
    ``states/<layer>/<k>``                carried state of stateful layers
Metadata (strings)
    ``format`` = ``lstmlab.model``, ``format_version``, ``config`` (the model's
    layers), ``compile`` (loss, metrics, optimizer config), ``optimizer_iterations``,
    ``train_seed``, ``weight_order``, and anything the caller adds under ``extra``
    (a text model's vocabulary, a training run's progress).

No pickle: the file is JSON plus raw numbers, so loading it cannot run code.
Writes are atomic (a temporary file renamed over the target).
"""
from __future__ import annotations

import json
import os

from ..io.errors import ModelFileError
from ..io.safetensors import load_file, save_file
from ..registry import Registry
from .model_file import ModelFile

FORMAT = "lstmlab.model"
FORMAT_VERSION = "1"
MODELS = Registry("model")  # the model classes a file can hold; each registers itself where it is defined
FILE_MODEL = "Sequential"  # the model class of files that do not name one (``model_class``)


def model_to_tensors(model, include_optimizer: bool = True) -> tuple[dict, dict]:
    tensors = {f"weights/{w.path}": w.value for w in model.weights}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.get_config()),
        "weight_order": json.dumps([w.path for w in model.weights]),
        "model_class": MODELS.serialize(model)["class_name"],
    }
    for layer in model.layers:
        for sub in getattr(layer, "_inner", lambda: [layer])():
            for k, s in enumerate(getattr(sub, "states", None) or []):
                tensors[f"states/{sub.name}/{k}"] = s
    if include_optimizer and model.compiled:
        meta["compile"] = json.dumps(model._compile_config())
        meta["train_seed"] = str(model._train_seed)
        opt = model.optimizer
        meta["optimizer_iterations"] = str(opt.iterations)
        for slot, arrays in opt.slots.items():
            for path, arr in arrays.items():
                tensors[f"optimizer/{slot}/{path}"] = arr
    return tensors, meta


def save_model(model, path, include_optimizer: bool = True, extra: dict | None = None) -> None:
    tensors, meta = model_to_tensors(model, include_optimizer)
    if extra:
        meta["extra"] = json.dumps(extra)
    save_file(tensors, path, meta)


def read_model_file(path):
    """Tensors and metadata of a model file, with a clear error for anything that is not one.

    Raises
    ------
    ModelFileError
        (a ValueError) for a file that is not a well-formed lstmlab model file; the message names
        the file and the field.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"path: no model file at {path!r}")
    tensors, meta = load_file(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(path, "format", f"this is a safetensors file but not an lstmlab model "
                                             f"(format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(path, "format_version", f"model format version {meta.get('format_version')!r}; "
                                                     f"this lstmlab reads version {FORMAT_VERSION}")
    return tensors, meta


def restore_into(model, tensors: dict, meta: dict, path: str) -> None:
    """Load a file's weights and carried states into ``model``, whose layers must match the file's."""
    file = ModelFile(os.fspath(path), tensors, meta)
    file.restore_weights(model)
    file.restore_states(model, keep_batch=False)


ENDINGS = {"keras": ".keras", "weights.h5": ".weights.h5", "safetensors": ".safetensors"}
_WHAT = {"keras": ".keras (a Keras 3 archive)", "weights.h5": ".weights.h5 (Keras 3 weights)",
         "safetensors": ".safetensors (lstmlab's own format)"}


def file_kind(path, accepted: tuple, action: str) -> str:
    """Which format ``path`` names by its ending (one of ``accepted``); anything else is refused, never guessed.

    >>> file_kind("m.keras", ("keras", "safetensors"), "save")
    'keras'
    """
    name = os.fspath(path)
    for kind in sorted(accepted, key=lambda k: -len(ENDINGS[k])):
        if str(name).endswith(ENDINGS[kind]):
            return kind
    hint = ""
    if str(name).endswith(".weights.h5"):
        hint = "; a .weights.h5 file holds weights only: use save_weights / load_weights"
    elif str(name).endswith(".h5"):
        hint = "; .h5 alone is Keras 2's legacy format, which lstmlab does not handle (use .keras)"
    raise ValueError(f"path: {action} expects a file name ending in {' or '.join(_WHAT[k] for k in accepted)}, "
                     f"got {name!r}{hint}")


def load_model(path, compile: bool = True):
    """Rebuild a saved model: ``.safetensors`` (ours: layers, weights and, with ``compile``, optimizer state) or
    ``.keras`` (a Keras 3 archive: layers and weights; see :mod:`lstmlab.interop.keras_files`).

    Every shape the config implies is checked against the file's tensors before any weight
    exists (see :mod:`lstmlab.models.model_file`); any problem raises one
    :class:`~lstmlab.io.ModelFileError` naming the file and the field.
    """
    return load_model_with_metadata(path, compile)[0]


def load_model_with_metadata(path, compile: bool = True):
    """``(model, metadata)``: :func:`load_model` and the dict saved with ``model.save(path, metadata=...)``
    (empty when none was), which the reader has checked to be a JSON object."""
    if file_kind(path, ("keras", "safetensors"), "load_model") == "keras":
        from ..interop import keras_files
        return keras_files.load_model_with_metadata(path, compile)
    path = os.fspath(path)
    file = ModelFile(path, *read_model_file(path))
    try:
        model_class = MODELS.lookup(file.meta.get("model_class", FILE_MODEL), argument="")
    except ValueError as exc:
        raise ModelFileError(path, "model_class", str(exc)) from None
    model = file.build(model_class)
    file.restore_states(model)
    if compile and "compile" in file.meta:
        file.compile(model)
    return model, file.extra()
