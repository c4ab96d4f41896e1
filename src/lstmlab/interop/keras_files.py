"""Keras 3 files written and read by lstmlab: ``.keras`` archives and ``.weights.h5`` weight files.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (see :mod:`.keras_config`) and
``model.weights.h5`` (see :mod:`.keras_h5`). ``keras.saving.load_model`` opens what :func:`save_model`
writes, and :func:`load_model` opens what Keras 3 writes, for every layer both libraries have.

Reading a file from a stranger is safe in the same way as our own format (:mod:`lstmlab.models.model_file`):
nothing in the file is imported or run; the zip's member count and sizes are capped before anything is
decompressed; the config is checked name by name; and each weight's shape, as the config implies it, is
compared with the HDF5 dataset's declared shape before the dataset is read. Every problem is one
:class:`~lstmlab.io.ModelFileError` (a ValueError) naming the file and what is wrong.

A compiled model's optimizer state and compile settings cross too (:mod:`.keras_optimizer`): saved with
``include_optimizer`` (the default), loaded with ``compile`` (the default), so training continues in the
other library exactly as it would have in this one. Not carried: lstmlab-only layers (a peephole or
layer-norm LSTM cell, a projection LSTM), and an optimizer, schedule, loss or metric the other library
lacks; each is refused by name (``compile=False`` loads the model without compile settings).
``h5py`` is an optional dependency: ``pip install 'lstmlab[h5]'``.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import struct
import zipfile
import zlib

from .._version import __version__
from ..io.errors import ModelFileError, about
from ..io.safetensors import atomic_write, parse_json
from ..layers.base import weights_from
from ..layers._config import check_shape_argument
from .keras_config import model_from_keras, model_to_keras
from .keras_h5 import WeightReader, keras_trainable_order, write_optimizer, write_weights
from .keras_optimizer import compile_from_keras, compile_to_keras, optimizer_variables, restore_optimizer

KERAS_LAYOUT = "3.15.1"  # the Keras version whose file layout these files follow (and are tested against)
MAX_MEMBERS = 64  # a Keras archive holds three files (and perhaps a few assets)
MAX_CONFIG_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 8 << 30
ZIP_MAX_EXPANSION, ZIP_BOMB_FLOOR = 1000, 1 << 20
MAX_DEPTH = 64  # JSON nesting; a real Keras config is about 15 deep


def h5py_module():
    """``h5py``, or an ImportError that says which extra installs it."""
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras files (.keras, .weights.h5) need h5py, an optional dependency of lstmlab: "
                          "pip install 'lstmlab[h5]'") from None
    return h5py


# -- writing -------------------------------------------------------------------------
def _weights_bytes(model, spec: dict, optimizer: bool = False) -> bytes:
    h5py = h5py_module()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        write_weights(h5, model, spec)
        if optimizer:
            values = optimizer_variables(model, keras_trainable_order(model, spec))
            write_optimizer(h5, model.optimizer.name, values)
    return buffer.getvalue()


def save_model(model, path, metadata: dict | None = None, include_optimizer: bool = True) -> None:
    """Write ``model`` as a Keras 3 archive at ``path`` (atomically); ``metadata`` goes into metadata.json.

    With ``include_optimizer`` a compiled model's compile settings and optimizer state are written as
    Keras writes them (an optimizer, loss or metric Keras lacks is refused, naming it).
    """
    spec, _ = model_to_keras(model)
    optimizer = include_optimizer and model.compiled
    if optimizer:
        spec["compile_config"] = compile_to_keras(model)
    weights = _weights_bytes(model, spec, optimizer)
    meta = {"keras_version": KERAS_LAYOUT, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "lstmlab_version": __version__}
    if metadata:
        meta["lstmlab_metadata"] = metadata
    if optimizer and model._train_seed is not None:
        meta["lstmlab_train_seed"] = model._train_seed  # dropout masks and shuffling continue as they would
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored, not deflated, as Keras writes it
        archive.writestr("metadata.json", json.dumps(meta))
        archive.writestr("config.json", json.dumps(spec))
        archive.writestr("model.weights.h5", weights)
    atomic_write(path, buffer.getvalue())


def save_weights(model, path) -> None:
    """Write ``model``'s weights to ``path`` in Keras 3's ``.weights.h5`` layout (atomically)."""
    spec, _ = model_to_keras(model)
    atomic_write(path, _weights_bytes(model, spec))


# -- reading -------------------------------------------------------------------------
def _looks_like_safetensors(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and struct.unpack("<Q", head[:8])[0] < (1 << 30) and head[8:9] == b"{"


def _read_member(path: str, archive, info, cap: int) -> bytes:
    """A zip member's bytes, after checking its stated size against ``cap`` and its compression ratio."""
    if info.file_size > cap:
        raise ModelFileError(path, info.filename, f"{info.file_size} bytes, more than the {cap} lstmlab reads")
    if info.file_size > ZIP_BOMB_FLOOR and info.file_size > ZIP_MAX_EXPANSION * max(info.compress_size, 1):
        raise ModelFileError(path, info.filename, f"declares {info.file_size} bytes but stores "
                                                  f"{info.compress_size}; refusing a decompression bomb")
    try:
        with archive.open(info) as f:
            data = f.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, RuntimeError, EOFError) as exc:
        raise ModelFileError(path, info.filename, f"cannot be read from the zip ({exc})") from None
    if len(data) > cap:
        raise ModelFileError(path, info.filename, f"more than the {cap} bytes lstmlab reads")
    return data


def _open_archive(path: str) -> tuple[dict, dict, bytes]:
    """``(config, metadata, weights bytes)`` of a Keras archive, every size checked before reading."""
    if not os.path.isfile(path):
        raise ValueError(f"path: no model file at {path!r}")
    if not zipfile.is_zipfile(path):
        hint = (" It looks like an lstmlab safetensors model saved under a .keras name by an older lstmlab: "
                "rename it to .safetensors.") if _looks_like_safetensors(path) else ""
        raise ModelFileError(path, None, "not a Keras archive: a .keras file is a zip holding config.json, "
                                         f"metadata.json and model.weights.h5, and this is not a zip file.{hint}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(path, None, f"not a readable zip file ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(path, None, f"a zip of {len(infos)} members; a Keras archive holds at most "
                                             f"{MAX_MEMBERS}")
        members = {i.filename: i for i in infos}
        if "model.weights.npz" in members:
            raise ModelFileError(path, "model.weights.npz", "Keras's npz weight format is not read; save the "
                                                            "model with the default h5 weights")
        missing = [n for n in ("config.json", "model.weights.h5") if n not in members]
        if missing:
            raise ModelFileError(path, missing[0], "missing: not a Keras archive (it holds "
                                                   f"{', '.join(sorted(members)[:8]) or 'nothing'})")
        texts = {}
        for name in ("config.json", "metadata.json"):
            if name in members:
                raw = _read_member(path, archive, members[name], MAX_CONFIG_BYTES)
                with about(path, name):
                    try:
                        texts[name] = parse_json(raw.decode("utf-8"), MAX_DEPTH)
                    except UnicodeDecodeError as exc:
                        raise ValueError(f"not UTF-8 text ({exc})") from None
                    if not isinstance(texts[name], dict):
                        raise ValueError(f"expected a JSON object, got {type(texts[name]).__name__}")
        weights = _read_member(path, archive, members["model.weights.h5"], MAX_WEIGHTS_BYTES)
    return texts["config.json"], texts.get("metadata.json", {}), weights


def _open_h5(path: str, source, field: str | None):
    h5py = h5py_module()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, field, f"not a readable HDF5 file ({exc})") from None


def _build(path: str, kind: str, config: dict, reader: WeightReader):
    """Our model from our config, each weight taken from ``reader`` (checked, never initialized); the
    reader's check that every dataset was read is left to the caller."""
    from ..models.model import Model
    from ..models.sequential import Sequential
    with about(path, "config.json"), weights_from(reader.source):
        if kind == "Sequential":
            shape = config.get("build_input_shape")
            if shape is not None:
                check_shape_argument("build_input_shape", shape)
            model = Sequential.from_config(config)
            inputs = [s for s in config["layers"] if s.get("class_name") == "InputLayer"]
            if inputs:  # our Sequential keeps only the input's shape; its name goes back into the next file
                model._input_name = inputs[0]["config"].get("name")
        else:
            model = Model.from_config(config)
            model.trainable = config["trainable"]
    return model


def _compile(path: str, model, config: dict, meta: dict, reader: WeightReader) -> None:
    """Compile ``model`` as the file's ``compile_config`` says and restore the optimizer's variables."""
    with about(path, "config.json: compile_config"):
        model.compile(**compile_from_keras(config["compile_config"]))
    with about(path, "model.weights.h5: optimizer/vars"):
        restore_optimizer(model, keras_trainable_order(model, config), reader)
    seed = meta.get("lstmlab_train_seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63:
        model._train_seed = seed


def load_model_with_metadata(path, compile: bool = True) -> tuple:
    """``(model, metadata)`` from a Keras 3 archive; metadata is what lstmlab saved with ``metadata=`` (or {}).

    With ``compile`` a file's compile settings and optimizer state are restored (an optimizer, loss or metric
    lstmlab lacks is refused, naming it); without, the model comes back uncompiled, as in Keras.
    """
    path = os.fspath(path)
    config, meta, weights = _open_archive(path)
    with about(path, "config.json"):
        kind, ours = model_from_keras(config)
    compiled = compile and bool(config.get("compile_config"))  # Keras writes {} for an uncompiled model
    with _open_h5(path, io.BytesIO(weights), "model.weights.h5") as h5:
        reader = WeightReader(h5, path, config, "model.weights.h5: ")
        model = _build(path, kind, ours, reader)
        if compiled:
            _compile(path, model, config, meta, reader)
        reader.check_all_read(("layers", "vars", "optimizer") if compiled else ("layers", "vars"))
    extra = meta.get("lstmlab_metadata", {})
    return model, (extra if isinstance(extra, dict) else {})


def load_model(path, compile: bool = True):
    """The model of a Keras 3 archive (see the module docstring for what is checked and what is not carried)."""
    return load_model_with_metadata(path, compile)[0]


def load_weights(model, path) -> None:
    """Copy a ``.weights.h5`` file's weights into ``model`` (all checked before any is changed)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"path: no weights file at {path!r}")
    spec, _ = model_to_keras(model)
    with _open_h5(path, path, None) as h5:
        reader = WeightReader(h5, path, spec)
        values = [reader.source(w.layer, w.name, w.shape, w.value.dtype) for w in model.weights]
        reader.check_all_read()
    for w, value in zip(model.weights, values):
        w.value[...] = value
