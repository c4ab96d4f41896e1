"""Crafted model files: each one breaks one rule, and each must be refused with one ModelFileError
whose message names the file and the field (issue 13, items 1-3 and 9).

Each test starts from a small valid file (tests/model_files.py) and changes one thing.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import lstmlab
from lstmlab.io import ModelFileError, atomic_write, load_file, save_file
from model_files import BATCH, VOCAB, join, save_valid, split, tensor_bytes, with_config, with_meta


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    return save_valid(tmp_path_factory.mktemp("valid") / "model.safetensors")


def write(tmp_path, data: bytes, name: str = "crafted.safetensors") -> str:
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def refused(path, *fields, load=lstmlab.load_model) -> ModelFileError:
    """Loading ``path`` raises ModelFileError (exactly that kind) naming the file and every one of ``fields``."""
    with pytest.raises(Exception) as info:
        load(path)
    exc = info.value
    assert isinstance(exc, ModelFileError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert repr(os.fspath(path)) in message, message
    for field in fields:
        assert field in message, f"{field!r} not in {message!r}"
    return exc


def layer_config(config, class_name):
    return next(spec["config"] for spec in config["layers"] if spec["class_name"] == class_name)


def test_the_valid_file_loads_and_predicts(tmp_path, valid):
    model, metadata = lstmlab.models.load_model_with_metadata(write(tmp_path, valid))
    out = model.predict(np.zeros((BATCH, 3), np.int64), batch_size=BATCH)
    assert out.shape == (BATCH, 3, len(VOCAB)) and np.all(np.isfinite(out))
    assert metadata["vocab"] == VOCAB and model.optimizer.iterations == 1


# -- 1. a config that implies huge weights is refused before anything is allocated -----------------
@pytest.mark.parametrize("units", [6000, 20000, 10**9])
def test_huge_units_refused_fast_without_allocating(tmp_path, valid, units):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "LSTM").update(units=units)))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        exc = refused(path, "weights/lstm_1/kernel", str(4 * units))
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 0.5, f"took {elapsed:.2f} s"
    assert peak < 20 * 2**20, f"peak allocation {peak / 2**20:.1f} MB"
    assert "shape" in str(exc)


def test_huge_units_with_matching_header_shapes_refused_by_byte_size(tmp_path, valid):
    """The header claims the big shape too, but the bytes are not there."""
    header, body = split(valid)
    config = json.loads(header["__metadata__"]["config"])
    layer_config(config, "LSTM")["units"] = 20000
    header["__metadata__"]["config"] = json.dumps(config)
    header["weights/lstm_1/kernel"]["shape"] = [6, 80000]
    refused(write(tmp_path, join(header, body)), "weights/lstm_1/kernel", "data_offsets")


def test_embedding_rows_changed_refused(tmp_path, valid):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "Embedding").update(input_dim=10**6)))
    refused(path, "weights/embedding/embeddings")


def test_huge_fixed_batch_is_checked_against_the_saved_states(tmp_path, valid):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "Embedding").update(
        batch_input_shape=[10**9, None])))
    refused(path, "states/lstm_1/0")


# -- 2. malformed metadata: missing keys and wrong JSON types ----------------------------------------
@pytest.mark.parametrize("key", ["weight_order", "train_seed", "optimizer_iterations", "config", "compile"])
def test_missing_metadata_key(tmp_path, valid, key):
    if key == "compile":  # a file without compile is valid (saved with include_optimizer=False) ...
        model = lstmlab.load_model(write(tmp_path, with_meta(valid, compile=None)))
        assert not model.compiled
        return
    refused(write(tmp_path, with_meta(valid, **{key: None})), key)


@pytest.mark.parametrize("key,value", [
    ("extra", "[1, 2]"), ("extra", "\"text\""), ("config", "[]"), ("config", "{\"layers\": 5}"),
    ("config", "{\"layers\": [5]}"), ("config", "{\"layers\": [{\"class_name\": \"LSTM\", \"config\": []}]}"),
    ("weight_order", "{}"), ("weight_order", "[1, 2]"), ("compile", "[]"), ("compile", "{\"optimizer\": []}"),
    ("optimizer_iterations", "-1"), ("optimizer_iterations", "1.5"), ("optimizer_iterations", "9" * 5000),
    ("train_seed", "seed"), ("extra", "{\"a\": 1"), ("config", "{\"layers\": [], \"name\": 5}"),
])
def test_wrong_json_in_metadata(tmp_path, valid, key, value):
    refused(write(tmp_path, with_meta(valid, **{key: value})), key)


@pytest.mark.parametrize("metadata", [[1, 2], "text", {"format": 1}])
def test_metadata_not_a_map_of_strings(tmp_path, valid, metadata):
    header, body = split(valid)
    header["__metadata__"] = metadata
    refused(write(tmp_path, join(header, body)), "__metadata__")


@pytest.mark.parametrize("entry", [[1, 2], {"dtype": "F32"}, {"dtype": "F32", "shape": 3, "data_offsets": [0, 4]},
                                   {"dtype": 5, "shape": [1], "data_offsets": [0, 4]},
                                   {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "more": 1}])
def test_malformed_tensor_entry(tmp_path, valid, entry):
    header, body = split(valid)
    header["weights/logits/bias"] = entry
    refused(write(tmp_path, join(header, body)), "weights/logits/bias")


def test_header_not_json_or_not_an_object(tmp_path, valid):
    _, body = split(valid)
    refused(write(tmp_path, join(None, body, raw_header=b"[1, 2, 3]")), "header")
    refused(write(tmp_path, join(None, body, raw_header=b"{\"a\": \xff}")), "header")
    refused(write(tmp_path, join(None, body, raw_header=b"{\"a\": 1, \"a\": 2}")), "header", "'a'")


# -- 2. bad optimizer / loss configs and unknown keyword arguments -----------------------------------
def edit_compile(data, edit):
    header, _ = split(data)
    cc = json.loads(header["__metadata__"]["compile"])
    edit(cc)
    return with_meta(data, compile=json.dumps(cc))


@pytest.mark.parametrize("edit,field", [
    (lambda cc: cc["optimizer"]["config"].update(learning_rate=-1), "learning_rate"),
    (lambda cc: cc["optimizer"]["config"].update(beta_3=0.5), "beta_3"),
    (lambda cc: cc["optimizer"].update(class_name="adadelta"), "adadelta"),
    (lambda cc: cc["optimizer"]["config"].update(learning_rate={"class_name": "Nope", "config": {}}), "Nope"),
    (lambda cc: cc["optimizer"]["config"].update(learning_rate={"class_name": "ExponentialDecay",
                                                                "config": {"decay_steps": 3}}), "initial_learning_rate"),
    (lambda cc: cc["optimizer"].update(config=[1]), "compile.optimizer"),
    (lambda cc: cc["loss"]["config"].update(from_logit=True), "from_logit"),
    (lambda cc: cc.update(loss={"class_name": "hinge", "config": {}}), "hinge"),
    (lambda cc: cc.update(metrics=["accuracy", "nope"]), "nope"),
    (lambda cc: cc.update(metrics="accuracy"), "metrics"),
    (lambda cc: cc.pop("loss"), "loss"),
])
def test_bad_compile_config(tmp_path, valid, edit, field):
    refused(write(tmp_path, edit_compile(valid, edit)), "compile", field)


@pytest.mark.parametrize("class_name,key", [("LSTM", "unitz"), ("Dense", "activaton"), ("Embedding", "mask_zeros")])
def test_unknown_layer_argument(tmp_path, valid, class_name, key):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, class_name).update({key: 1})))
    refused(path, "config.layers[", key)


@pytest.mark.parametrize("class_name,key,value", [
    ("LSTM", "units", -3), ("LSTM", "units", "10"), ("LSTM", "activation", [1]), ("LSTM", "dropout", 2.0),
    ("Dense", "kernel_initializer", {"class_name": "glorot_uniform", "config": {"seed": 1, "gain": 2}}),
    ("Dense", "kernel_regularizer", {"class_name": "L1L2", "config": {"l3": 1}}),
    ("Embedding", "dtype", "int32"), ("Embedding", "dtype", ["f4", "f4"]), ("Embedding", "name", 5),
    ("LSTM", "trainable", "yes"), ("Embedding", "batch_input_shape", [4, -1]),
    ("Embedding", "batch_input_shape", "44"), ("LSTM", "name", "a/b"),
])
def test_bad_layer_argument_value(tmp_path, valid, class_name, key, value):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, class_name).update({key: value})))
    refused(path, "config.layers[", key)


def test_two_layers_with_one_name(tmp_path, valid):
    """The LSTM renamed 'logits' would claim the Dense layer's tensors: refused at the first that disagrees."""
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "LSTM").update(name="logits")))
    refused(path, "weights/logits/kernel", "shape")


def test_missing_required_layer_argument(tmp_path, valid):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "LSTM").pop("units")))
    refused(path, "config.layers[1]", "units")


def test_unknown_layer_class(tmp_path, valid):
    def edit(c):
        c["layers"][1]["class_name"] = "os.system"
    refused(write(tmp_path, with_config(valid, edit)), "config.layers[1]", "os.system")


# -- 2. numbers: 1e999, NaN, huge, negative ------------------------------------------------------------
@pytest.mark.parametrize("shape", ["[1e999]", "[NaN]", "[-12]", "[12.0]", "[true]", "[" + "9" * 5000 + "]",
                                   "[" + ", ".join(["1"] * 100) + ", 12]"])
def test_bad_numbers_in_a_tensor_shape(tmp_path, valid, shape):
    header, body = split(valid)
    raw = json.dumps(header).replace('"shape": [12]', '"shape": ' + shape, 1).encode()
    assert raw != json.dumps(header).encode()
    refused(write(tmp_path, join(None, body, raw_header=raw)), "header" if "9999" in shape or "e999" in shape
            or "NaN" in shape else "shape")


@pytest.mark.parametrize("value", ["1e999", "-1e999", "NaN", "Infinity", "1" * 5000])
def test_bad_numbers_in_the_config(tmp_path, valid, value):
    header, _ = split(valid)
    config = header["__metadata__"]["config"].replace('"units": 10', '"units": ' + value, 1)
    refused(write(tmp_path, with_meta(valid, config=config)), "config")


def test_shape_product_that_overflows(tmp_path, valid):
    header, body = split(valid)
    header["weights/logits/bias"]["shape"] = [2**40, 2**40, 2**40]
    exc = refused(write(tmp_path, join(header, body)), "weights/logits/bias", "shape")
    assert "reshape" not in str(exc)


# -- 2. deep nesting ---------------------------------------------------------------------------------
def test_header_nested_200000_deep(tmp_path, valid):
    header, body = split(valid)
    raw = json.dumps(header)[:-1] + ', "deep": ' + "[" * 200_000 + "]" * 200_000 + "}"
    refused(write(tmp_path, join(None, body, raw_header=raw.encode())), "header")


@pytest.mark.parametrize("key", ["config", "extra", "compile"])
def test_metadata_nested_200000_deep(tmp_path, valid, key):
    refused(write(tmp_path, with_meta(valid, **{key: "[" * 200_000 + "]" * 200_000})), key)


def test_400_nested_time_distributed(tmp_path, valid):
    def edit(c):
        spec = c["layers"][2]
        for _ in range(400):
            spec = {"class_name": "TimeDistributed", "config": {"name": None, "layer": spec}}
        c["layers"][2] = spec
    refused(write(tmp_path, with_config(valid, edit)), "config", "nested")


# -- 3. byte ranges and dtypes -------------------------------------------------------------------------
def test_overlapping_data_offsets(tmp_path, valid):
    header, body = split(valid)
    a, b = header["weights/logits/bias"], header["weights/lstm_1/bias"]
    a["shape"], a["dtype"] = b["shape"], b["dtype"]  # same size: would load if overlaps were allowed
    a["data_offsets"] = b["data_offsets"]
    a["shape"] = [len(VOCAB)]
    a["data_offsets"] = [b["data_offsets"][0], b["data_offsets"][0] + 4 * len(VOCAB)]
    refused(write(tmp_path, join(header, body)), "overlap")


@pytest.mark.parametrize("offsets", [[0, 10**12], [-4, 44], [48, 0]])
def test_data_offsets_out_of_bounds(tmp_path, valid, offsets):
    header, body = split(valid)
    header["weights/logits/bias"]["data_offsets"] = offsets
    refused(write(tmp_path, join(header, body)), "weights/logits/bias", "data_offsets")


def test_truncated_file(tmp_path, valid):
    refused(write(tmp_path, valid[:-100]), "data_offsets")


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float64, np.uint8])
def test_wrong_dtype_for_a_float_weight(tmp_path, valid, dtype):
    tensors, meta = load_file(write(tmp_path, valid, "orig.safetensors"))
    tensors["weights/logits/bias"] = np.ones(len(VOCAB), dtype)
    save_file(tensors, tmp_path / "dtype.safetensors", meta)
    refused(str(tmp_path / "dtype.safetensors"), "weights/logits/bias", "float32")


@pytest.mark.parametrize("name,value", [("weights/lstm_1/kernel", np.inf), ("weights/logits/bias", np.nan),
                                        ("optimizer/m/lstm_1/kernel", -np.inf), ("states/lstm_1/1", np.nan)])
def test_non_finite_values_refused_naming_the_tensor(tmp_path, valid, name, value):
    begin, _ = tensor_bytes(valid, name)
    data = bytearray(valid)
    data[begin : begin + 4] = np.float32(value).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before any arithmetic on it: no RuntimeWarning
        refused(write(tmp_path, bytes(data)), name, "finite")


def test_unexpected_and_missing_tensors(tmp_path, valid):
    tensors, meta = load_file(write(tmp_path, valid, "orig.safetensors"))
    extra = dict(tensors, **{"weights/logits/extra": np.zeros(2, np.float32)})
    save_file(extra, tmp_path / "extra.safetensors", meta)
    refused(str(tmp_path / "extra.safetensors"), "weights/logits/extra")
    missing = {k: v for k, v in tensors.items() if k != "weights/lstm_1/recurrent_kernel"}
    save_file(missing, tmp_path / "missing.safetensors", meta)
    refused(str(tmp_path / "missing.safetensors"), "weights/lstm_1/recurrent_kernel")
    slot = dict(tensors, **{"optimizer/m/lstm_1/kernel": np.zeros((3, 3), np.float32)})
    save_file(slot, tmp_path / "slot.safetensors", meta)
    refused(str(tmp_path / "slot.safetensors"), "optimizer/m/lstm_1/kernel")
    state = dict(tensors, **{"states/lstm_1/0": np.zeros((BATCH, 3), np.float32)})
    save_file(state, tmp_path / "state.safetensors", meta)
    refused(str(tmp_path / "state.safetensors"), "states/lstm_1/0")


def test_load_weights_checks_the_same_way(tmp_path, valid):
    from model_files import make_model
    data = bytearray(valid)
    begin, _ = tensor_bytes(valid, "weights/logits/kernel")
    data[begin : begin + 4] = np.float32(np.inf).tobytes()
    path = write(tmp_path, bytes(data))
    model = make_model()
    refused(path, "weights/logits/kernel", "finite", load=model.load_weights)


# -- 2. a text-generation checkpoint whose vocabulary does not fit the model ------------------------
@pytest.mark.parametrize("vocab, problem", [
    (VOCAB[:5], "5 characters, but the model config says"), ("", "expected a non-empty string"),
    ("aab", "distinct characters"), (["a", "b"], "expected a JSON string, got list")])
def test_vocabulary_that_does_not_fit_the_model(tmp_path, valid, vocab, problem):
    from lstmlab.apps.textgen import CheckpointError, load_checkpoint
    from lstmlab.io import ModelFileError
    header, _ = split(valid)
    extra = json.loads(header["__metadata__"]["extra"])
    extra["vocab"] = vocab
    path = write(tmp_path, with_meta(valid, extra=json.dumps(extra)))
    with pytest.raises(CheckpointError, match="extra.vocab") as info:
        load_checkpoint(path)
    assert isinstance(info.value, ModelFileError) and problem in str(info.value)
    assert str(info.value).startswith(f"checkpoint: {path!r}: extra.vocab: ")


@pytest.mark.parametrize("field, value", [("global_step", -1), ("epoch", "3"), ("best_val", "low"),
                                          ("history", {"step": 1})])
def test_checkpoint_progress_of_the_wrong_type(tmp_path, valid, field, value):
    from lstmlab.apps.textgen import CheckpointError, load_checkpoint
    header, _ = split(valid)
    extra = json.loads(header["__metadata__"]["extra"])
    extra["progress"][field] = value
    with pytest.raises(CheckpointError, match=f"extra.progress.{field}"):
        load_checkpoint(write(tmp_path, with_meta(valid, extra=json.dumps(extra))))


# -- 3. an error inside a file is never reported as a command-line option ---------------------------
def test_cli_reports_a_file_error_as_the_file(tmp_path, valid):
    path = write(tmp_path, with_config(valid, lambda c: layer_config(c, "LSTM").update(units=-3)))
    proc = subprocess.run([sys.executable, "-m", "lstmlab", "generate", path, "--length", "5"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--units" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert path in proc.stderr and "units" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


# -- 9. files get the permissions the umask gives -----------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        target = tmp_path / "out.bin"
        atomic_write(target, b"first")
        assert stat.S_IMODE(os.stat(target).st_mode) == mode
        atomic_write(target, b"second")  # replacing keeps the umask's mode too
        assert stat.S_IMODE(os.stat(target).st_mode) == mode and target.read_bytes() == b"second"
        lstmlab.models.saving.save_model(lstmlab.load_model(write(tmp_path, save_valid(tmp_path / "m.safetensors"))),
                                         tmp_path / "model.safetensors")
        assert stat.S_IMODE(os.stat(tmp_path / "model.safetensors").st_mode) == mode
    finally:
        os.umask(old)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_load_weights_into_a_model_built_for_another_batch(tmp_path, valid):
    """A sampler built for batch 1 takes a training checkpoint's weights and its states' batch, as before."""
    from lstmlab import layers as L
    from lstmlab.models import Sequential
    model = Sequential([L.Embedding(len(VOCAB), 6, batch_input_shape=(1, None), name="embedding"),
                        L.LSTM(10, return_sequences=True, stateful=True, name="lstm_1"),
                        L.Dense(len(VOCAB), name="logits")])
    model.load_weights(write(tmp_path, valid))
    assert model.layers[1].states[0].shape == (BATCH, 10)
