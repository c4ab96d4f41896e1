"""Keras files from a stranger: each crafted archive gives one clear ModelFileError (a ValueError) naming the
file and what is wrong, and nothing in it is imported or run. Also: the missing-h5py message, wrong file
endings, and models a .keras file cannot hold."""
import io
import json
import sys
import zipfile

import numpy as np
import pytest

import lstmlab
from lstmlab import layers as L
from lstmlab.interop import keras_files
from lstmlab.io import ModelFileError

h5py = pytest.importorskip("h5py")


def valid_archive(tmp_path) -> dict:
    """The members of a real archive of a small model: {name: bytes}."""
    model = lstmlab.Sequential([L.Input((4, 3)), L.LSTM(2, name="lstm"), L.Dense(3, name="dense")], name="small")
    model.save(tmp_path / "valid.keras")
    with zipfile.ZipFile(tmp_path / "valid.keras") as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(tmp_path, members: dict, name="crafted.keras", compression=zipfile.ZIP_STORED) -> str:
    path = str(tmp_path / name)
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for n, data in members.items():
            z.writestr(n, data)
    return path


def with_config(members, edit) -> dict:
    config = json.loads(members["config.json"])
    edit(config)
    return {**members, "config.json": json.dumps(config).encode()}


def with_weights(members, edit) -> dict:
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "a") as f:
        edit(f)
    return {**members, "model.weights.h5": buffer.getvalue()}


def layer(config, k):
    return config["config"]["layers"][k]


def refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        lstmlab.load_model(path)
    assert path in str(info.value)  # the message names the file


def test_valid_archive_loads(tmp_path):
    model = lstmlab.load_model(write_zip(tmp_path, valid_archive(tmp_path)))
    assert [l.name for l in model.layers] == ["lstm", "dense"] and model.name == "small"


CONFIG_CASES = {
    "lambda": (lambda c: layer(c, 1).update(class_name="Lambda", config={"function": {"class_name": "__lambda__",
               "config": {"code": "4wEAAAAAAAAA"}}, "name": "lambda"}),
               r"config.layers\[1\].*a Lambda layer holds Python code from the file, which lstmlab never runs"),
    "unknown class": (lambda c: layer(c, 2).update(class_name="EvilLayer"),
                      r"unknown layer class 'EvilLayer'; lstmlab reads these Keras layers: Activation, Add"),
    "module path": (lambda c: layer(c, 2).update(module="os.path"),
                    r"module 'os.path': lstmlab reads only Keras's own classes .* never imports a module"),
    "custom registered name": (lambda c: layer(c, 2).update(registered_name="evil_pkg>Dense"),
                               r"registered_name 'evil_pkg>Dense': a custom \(registered\) class"),
    "initializer from elsewhere": (lambda c: layer(c, 2)["config"]["kernel_initializer"].update(module="subprocess"),
                                   r"kernel_initializer: module 'subprocess'"),
    "keras-only argument in use": (lambda c: layer(c, 2)["config"].update(
        kernel_constraint={"module": "keras.constraints", "class_name": "NonNeg", "config": {}}),
        r"kernel_constraint=.*lstmlab has no kernel_constraint"),
    "bad argument value": (lambda c: layer(c, 2)["config"].update(units=-3), r"units"),
    "bad dtype policy": (lambda c: layer(c, 2)["config"]["dtype"]["config"].update(name="mixed_float16"),
                         r"expected the dtype policy float32 or float64, got 'mixed_float16'"),
    "not a model": (lambda c: c.update(class_name="Dense"), r"unknown model class 'Dense'"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_hostile_configs(tmp_path, case):
    edit, match = CONFIG_CASES[case]
    refused(write_zip(tmp_path, with_config(valid_archive(tmp_path), edit)), match)


def test_dataset_bigger_than_its_config_says(tmp_path):
    def grow(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((200, 3), np.float32)

    refused(write_zip(tmp_path, with_weights(valid_archive(tmp_path), grow)),
            r"model.weights.h5: layers/dense/vars/0: weight dense/kernel: the config implies shape \(2, 3\), "
            r"the file holds \(200, 3\)")


@pytest.mark.parametrize("edit, match", [
    (lambda f: f.create_dataset("layers/dense/vars/2", data=np.ones(3, np.float32)),
     r"layers/dense/vars/2: not a weight of the model the config describes"),
    (lambda f: f.__delitem__("layers/lstm/cell/vars/2"), r"layers/lstm/cell/vars/2: missing"),
    (lambda f: f["layers/dense/vars/1"].__setitem__(0, np.nan), r"1 of 3 values are not finite"),
    (lambda f: (f.__delitem__("layers/dense/vars/1"),
                f.__setitem__("layers/dense/vars/1", h5py.ExternalLink("/etc/passwd", "/x"))),
     r"layers/dense/vars/1: a ExternalLink; lstmlab follows hard links only"),
    (lambda f: (f.__delitem__("layers/dense/vars/1"), f.__setitem__("layers/dense/vars/1", np.array(["abc"] * 3,
                                                                                                     dtype="S3"))),
     r"expected floating-point values"),
])
def test_hostile_weights(tmp_path, edit, match):
    refused(write_zip(tmp_path, with_weights(valid_archive(tmp_path), edit)), match)


def test_not_a_zip_and_not_hdf5(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"this is not a model")
    refused(str(path), r"not a Keras archive: a .keras file is a zip holding config.json, metadata.json and "
                       r"model.weights.h5, and this is not a zip file\.$")
    members = {**valid_archive(tmp_path), "model.weights.h5": b"not hdf5 at all"}
    refused(write_zip(tmp_path, members), r"model.weights.h5: not a readable HDF5 file")
    refused(write_zip(tmp_path, {"readme.txt": b"hi"}), r"config.json: missing: not a Keras archive")


def test_old_lstmlab_file_under_a_keras_name(tmp_path):
    model = lstmlab.Sequential([L.Input((4, 3)), L.Dense(2)])
    lstmlab.models.saving.save_model(model, tmp_path / "old.keras")  # what lstmlab wrote before Keras files
    refused(str(tmp_path / "old.keras"), r"not a zip file\. It looks like an lstmlab safetensors model saved under "
                                         r"a \.keras name by an older lstmlab: rename it to \.safetensors\.")


def test_zip_bombs_and_member_caps(tmp_path, monkeypatch):
    members = valid_archive(tmp_path)
    bomb = {**members, "config.json": members["config.json"] + b" " * (30 << 20)}  # 30 MB of blanks, deflated
    refused(write_zip(tmp_path, bomb, compression=zipfile.ZIP_DEFLATED), r"config.json: declares 3\d{7} bytes but "
                                                                         r"stores \d+; refusing a decompression bomb")
    many = {**members, **{f"assets/{k}.txt": b"x" for k in range(100)}}
    refused(write_zip(tmp_path, many, name="many.keras"), r"a zip of 103 members; a Keras archive holds at most 64")
    monkeypatch.setattr(keras_files, "MAX_WEIGHTS_BYTES", 1000)
    refused(write_zip(tmp_path, members, name="big.keras"), r"model.weights.h5: \d+ bytes, more than the 1000 lstmlab "
                                                            r"reads")


def test_missing_h5py_names_the_extra(tmp_path, monkeypatch):
    model = lstmlab.Sequential([L.Input((4, 3)), L.Dense(2)])
    path = write_zip(tmp_path, valid_archive(tmp_path))
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    for call in (lambda: model.save(tmp_path / "m.keras"), lambda: lstmlab.load_model(path),
                 lambda: model.save_weights(tmp_path / "w.weights.h5")):
        with pytest.raises(ImportError, match=r"^Keras files \(.keras, .weights.h5\) need h5py, an optional "
                                              r"dependency of lstmlab: pip install 'lstmlab\[h5\]'$"):
            call()
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("name", ["m.h5", "m.bin", "m", "m.KERAS", "m.weights.h5"])
def test_wrong_endings_are_refused(tmp_path, name):
    model = lstmlab.Sequential([L.Input((4, 3)), L.Dense(2)])
    path = str(tmp_path / name)
    accepted = r"\.keras \(a Keras 3 archive\) or \.safetensors \(lstmlab's own format\), got '.*'"
    with pytest.raises(ValueError, match=rf"^path: save expects a file name ending in {accepted}"):
        model.save(path)
    with pytest.raises(ValueError, match=rf"^path: load_model expects a file name ending in {accepted}"):
        lstmlab.load_model(path)
    if name != "m.weights.h5":
        weights = r"\.weights\.h5 \(Keras 3 weights\) or \.safetensors \(lstmlab's own format\)"
        with pytest.raises(ValueError, match=rf"^path: save_weights expects a file name ending in {weights}"):
            model.save_weights(path)
        with pytest.raises(ValueError, match=rf"^path: load_weights expects a file name ending in {weights}"):
            model.load_weights(path)
    assert not any(tmp_path.iterdir())  # nothing written under a wrong name


def test_wrong_ending_hints():
    model = lstmlab.Sequential([L.Input((4, 3)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"\.h5 alone is Keras 2's legacy format, which lstmlab does not handle"):
        model.save("m.h5")
    with pytest.raises(ValueError, match=r"a \.weights\.h5 file holds weights only: use save_weights"):
        model.save("m.weights.h5")


def test_models_a_keras_file_cannot_hold(tmp_path):
    peephole = lstmlab.Sequential([L.Input((4, 3)), L.RNN(L.PeepholeLSTMCell(2), name="peep")])
    with pytest.raises(ValueError, match=r"^layer 'peep': layer '\w+': PeepholeLSTMCell has no Keras 3 equivalent, "
                                         r"so a \.keras file cannot hold it; save the model as \.safetensors"):
        peephole.save(tmp_path / "p.keras")
    projection = lstmlab.Sequential([L.Input((4, 3)), L.LSTM(4, proj_size=2, name="proj")])
    with pytest.raises(ValueError, match=r"layer 'proj': proj_size=2 \(a projection LSTM\) has no Keras 3 equivalent"):
        projection.save(tmp_path / "q.keras")

    class Sub(lstmlab.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"a subclassed model's call\(\) is Python code, which a \.keras file cannot "
                                         r"hold"):
        sub.save(tmp_path / "s.keras")
    assert not list(tmp_path.glob("*.keras"))
