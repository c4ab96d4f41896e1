"""A small valid model file and the tools to take it apart: shared by the crafted-file and fuzz suites.

The model is a text generator in miniature (Embedding -> stateful LSTM -> Dense logits), trained one
step so the file holds optimizer slots and carried states, saved with an ``extra`` dict shaped like a
text-generation checkpoint's.
"""
from __future__ import annotations

import json
import struct

import numpy as np

VOCAB = "\n abcdefghij"  # 12 characters
BATCH = 4


METADATA = {"kind": "lstmlab.textgen", "vocab": VOCAB,
            "model_config": {"vocab_size": len(VOCAB), "layers": 1, "units": 10, "embedding": 6,
                             "dropout": 0.0, "cell": "lstm"},
            "train_config": {"seq_len": 8, "batch_size": BATCH},
            "progress": {"epoch": 0, "step_in_epoch": 1, "global_step": 1}}


def make_model():
    from lstmlab import layers as L
    from lstmlab.models import Sequential
    from lstmlab.training.losses import SparseCategoricalCrossentropy

    model = Sequential([L.Embedding(len(VOCAB), 6, batch_input_shape=(BATCH, None), name="embedding"),
                        L.LSTM(10, return_sequences=True, stateful=True, name="lstm_1"),
                        L.Dense(len(VOCAB), name="logits")], name="char_model")
    model.compile("adam", SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(VOCAB), (BATCH, 8))
    model.train_on_batch(ids, np.roll(ids, -1, axis=1))
    model.predict(ids, batch_size=BATCH)  # leaves carried states to save
    return model


def save_valid(path) -> bytes:
    make_model().save(path, metadata=METADATA)
    with open(path, "rb") as f:
        return f.read()


def split(data: bytes) -> tuple[dict, bytes]:
    """The JSON header and the data bytes of a safetensors file."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header, body: bytes, raw_header: bytes | None = None) -> bytes:
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + body


def with_meta(data: bytes, **changes) -> bytes:
    """The file with metadata entries replaced (a value of None removes the key)."""
    header, body = split(data)
    meta = header["__metadata__"]
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    return join(header, body)


def with_config(data: bytes, edit) -> bytes:
    """The file with ``edit(config)`` applied to the model config (``edit`` changes it in place)."""
    header, _ = split(data)
    config = json.loads(header["__metadata__"]["config"])
    edit(config)
    return with_meta(data, config=json.dumps(config))


def tensor_bytes(data: bytes, name: str) -> tuple[int, int]:
    """Absolute byte range of tensor ``name`` in the file."""
    (n,) = struct.unpack("<Q", data[:8])
    header, _ = split(data)
    begin, end = header[name]["data_offsets"]
    return 8 + n + begin, 8 + n + end
