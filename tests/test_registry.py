"""The registries: every name round-trips, only registered names resolve, a user's class can be registered."""
import importlib
import json
import sys
import textwrap

import numpy as np
import pytest

import lstmlab
from lstmlab import layers as L
from lstmlab.io import ModelFileError
from lstmlab.layers import initializers as I
from lstmlab.layers import regularizers as R
from lstmlab.registry import Registry
from lstmlab.training import losses as Ls
from lstmlab.training import metrics as M
from lstmlab.training import optimizers as O

# Kinds whose every name builds an object with default arguments.
BY_NAME = [I.INITIALIZERS, R.REGULARIZERS, Ls.LOSSES, O.OPTIMIZERS]

LAYER_EXAMPLES = {
    "Dense": lambda: L.Dense(3, activation="relu", kernel_regularizer="l2"),
    "Dropout": lambda: L.Dropout(0.3),
    "Embedding": lambda: L.Embedding(5, 2, mask_zero=True),
    "Masking": lambda: L.Masking(-1.0),
    "LSTM": lambda: L.LSTM(3, go_backwards=True, kernel_initializer=I.Orthogonal(gain=0.5, seed=2)),
    "GRU": lambda: L.GRU(2, return_state=True),
    "SimpleRNN": lambda: L.SimpleRNN(4, activation="relu", bias_regularizer=R.l1_l2(0.1, 0.2)),
    "RNN": lambda: L.RNN(L.GRUCell(3), return_sequences=True),
    "LSTMCell": lambda: L.LSTMCell(3, unit_forget_bias=False),
    "GRUCell": lambda: L.GRUCell(2),
    "SimpleRNNCell": lambda: L.SimpleRNNCell(2, recurrent_initializer="glorot_normal"),
    "PeepholeLSTMCell": lambda: L.PeepholeLSTMCell(3, peephole_initializer="ones"),
    "LayerNormLSTMCell": lambda: L.LayerNormLSTMCell(2, norm_epsilon=1e-2),
    "StackedRNNCells": lambda: L.StackedRNNCells([L.LSTMCell(2), L.SimpleRNNCell(3)]),
    "Bidirectional": lambda: L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="sum"),
    "TimeDistributed": lambda: L.TimeDistributed(L.Dense(2)),
    "Add": L.Add, "Subtract": L.Subtract, "Average": L.Average, "Multiply": L.Multiply,
    "Maximum": L.Maximum, "Minimum": L.Minimum, "Concatenate": lambda: L.Concatenate(axis=1),
    "LayerNormalization": lambda: L.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False),
    "BatchNormalization": lambda: L.BatchNormalization(momentum=0.9, moving_variance_initializer="zeros"),
    "Attention": lambda: L.Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=3),
    "AdditiveAttention": lambda: L.AdditiveAttention(use_scale=False, dropout=0.2),
    "Conv1D": lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
    "MaxPooling1D": lambda: L.MaxPooling1D(3, strides=2, padding="same"),
    "GlobalAveragePooling1D": lambda: L.GlobalAveragePooling1D(keepdims=True),
    "GlobalMaxPooling1D": L.GlobalMaxPooling1D, "Flatten": L.Flatten,
    "Reshape": lambda: L.Reshape((-1, 2)), "RepeatVector": lambda: L.RepeatVector(3),
    "Activation": lambda: L.Activation("tanh"), "SpatialDropout1D": lambda: L.SpatialDropout1D(0.3),
    "InputLayer": lambda: L.InputLayer(shape=(None, 3), batch_size=4, dtype="int32"),
    "Model": lambda: _functional_example(),
    "Sequential": lambda: lstmlab.Sequential([L.LSTM(2), L.Dense(1)], name="seq_example"),
}


def _functional_example():
    x = L.Input((None, 3), name="in_example")
    h, state_h, _ = L.LSTM(2, return_state=True, name="lstm_example")(x)
    shared = L.Dense(2, name="shared_example")
    return lstmlab.Model(x, [shared(h), shared(state_h)], name="functional_example")
BUILT_IN_LAYERS = [name for name, cls in L.LAYERS.items() if cls.__module__.startswith("lstmlab.")]


@pytest.mark.parametrize("registry", BY_NAME, ids=lambda r: r.kind)
def test_every_name_round_trips(registry):
    for name, _ in list(registry.items()):
        obj = registry.get(name)
        spec = registry.serialize(obj)
        assert json.loads(json.dumps(spec)) == spec, name  # plain JSON, as a file holds it
        again = registry.get(spec)
        assert type(again) is type(obj) and registry.serialize(again) == spec, name


@pytest.mark.parametrize("name", BUILT_IN_LAYERS)
def test_every_built_in_layer_round_trips(name):
    assert name in LAYER_EXAMPLES, f"add an example of {name} to LAYER_EXAMPLES"
    layer = LAYER_EXAMPLES[name]()
    spec = L.serialize(layer)
    assert spec["class_name"] == name
    clone = L.deserialize(json.loads(json.dumps(spec)))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def test_every_schedule_and_metric_name_resolves():
    examples = {"PiecewiseConstantDecay": ([10, 20], [0.1, 0.05, 0.01])}
    for name, cls in O.SCHEDULES.items():
        schedule = cls(*examples.get(cls.__name__, (0.1, 10, 0.5)))
        opt = O.get({"class_name": "SGD", "config": {"learning_rate": O.SCHEDULES.serialize(schedule)}})
        assert type(opt.learning_rate) is cls
        assert O.get(O.serialize(opt)).get_config() == opt.get_config()
    for name, _ in M.METRICS.items():
        assert isinstance(M.get(name, Ls.SparseCategoricalCrossentropy(), 4), M.Metric)


def test_keras_names_and_aliases():
    assert type(I.get("glorot_uniform")) is type(I.get("GlorotUniform")) is I.GlorotUniform
    assert type(I.get("uniform")) is I.RandomUniform
    assert I.serialize(I.get("uniform"))["class_name"] == "random_uniform"
    assert {type(Ls.get(n)) for n in ("mse", "mean_squared_error", "MeanSquaredError")} == {Ls.MeanSquaredError}
    assert {type(O.get(n)) for n in ("adam", "Adam", "ADAM")} == {O.Adam}
    assert type(O.get({"class_name": "RMSprop", "config": {"rho": 0.8}})) is O.RMSprop
    assert R.get({"class_name": "L2", "config": {"l2": 0.5}}).get_config() == {"l1": 0.0, "l2": 0.5}  # Keras 3's
    assert R.get(None) is None and R.serialize(None) is None
    # what files written before the registries hold still reads
    assert Ls.serialize(Ls.get("mse")) == {"class_name": "mean_squared_error", "config": {}}
    assert O.serialize(O.get("adam"))["class_name"] == "adam"
    assert R.serialize(R.get("l2")) == {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}}


@pytest.mark.parametrize("registry,name", [
    (L.LAYERS, "os.system"), (L.LAYERS, "lstmlab.layers.Dense"), (L.LAYERS, "__builtins__"), (L.LAYERS, "Layer"),
    (Ls.LOSSES, "lstmlab.training.losses.MeanSquaredError"), (Ls.LOSSES, "Loss"), (O.OPTIMIZERS, "Optimizer"),
    (I.INITIALIZERS, "numpy.ones"), (R.REGULARIZERS, "np.sum"), (O.SCHEDULES, "LearningRateSchedule"),
])
def test_only_registered_names_resolve(registry, name):
    for spec in ({"class_name": name, "config": {}}, {"module": "os", "class_name": name, "config": {}}):
        with pytest.raises(ValueError, match=rf"^{registry.kind}: unknown {registry.kind} '{name}'; expected one of "):
            registry.get(spec)


def test_a_dotted_path_in_a_model_file_is_refused(tmp_path):
    model = lstmlab.Sequential([L.Dense(2, input_shape=(3,))])
    model.compile("adam", "mse")
    path = tmp_path / "m.safetensors"
    model.save(path)
    from lstmlab.io.safetensors import load_file, save_file

    tensors, meta = load_file(path)
    for key, edit in (("config", lambda c: c["layers"][0].update(class_name="os.system")),
                      ("compile", lambda c: c.update(loss={"module": "lstmlab.training.losses",
                                                           "class_name": "lstmlab.training.losses.Loss",
                                                           "config": {}}))):
        value = json.loads(meta[key])
        edit(value)
        save_file(tensors, tmp_path / "bad.safetensors", {**meta, key: json.dumps(value)})
        with pytest.raises(ModelFileError, match=r"unknown (layer 'os.system'|loss 'lstmlab.training.losses.Loss')"):
            lstmlab.load_model(tmp_path / "bad.safetensors")


def test_arguments_are_checked_for_every_kind():
    cases = [(I.get, {"class_name": "zeros", "config": {"gain": 1}}, "initializer: gain: not an argument of Zeros"),
             (R.get, {"class_name": "l1", "config": {"l2": 1}}, "regularizer: l2: not an argument of L1"),
             (Ls.get, {"class_name": "mse", "config": {"from_logits": True}},
              "loss: from_logits: not an argument of MeanSquaredError"),
             (O.get, {"class_name": "adam", "config": {"beta_3": 1}}, "optimizer: beta_3: not an argument of Adam"),
             (O.get, {"class_name": "sgd", "config": {"learning_rate": {"class_name": "ExponentialDecay",
                                                                         "config": {"decay_steps": 3}}}},
              "learning_rate: decay_rate, initial_learning_rate: ExponentialDecay needs these arguments"),
             (L.deserialize, {"class_name": "Dense", "config": {"unitz": 3}}, "unitz: not an argument of Dense")]
    for get, spec, message in cases:
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
            get(spec)


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="^layer: the name 'Dense' is already registered for lstmlab.layers.core.Dense"):
        @L.LAYERS.register
        class Dense(L.Dense):
            pass
    with pytest.raises(ValueError, match="expected a name without dots"):
        Registry("thing").register("a.b")(type("A", (), {}))


def test_an_unregistered_layer_cannot_be_saved_by_name():
    class Unnamed(L.Dense):
        pass

    with pytest.raises(ValueError, match="^layer: Unnamed is not registered, so a file could not name it"):
        L.serialize(Unnamed(2))


USER_MODULE = '''
from lstmlab import layers

@layers.LAYERS.register
class HalvedRNNCell(layers.SimpleRNNCell):
    """A user's cell, registered where it is defined: the plain RNN, run by the generic loop."""

    def sequence(self, *args, **kwargs):
        return None
'''


def test_a_class_registered_in_a_user_module_is_found(tmp_path, monkeypatch):
    (tmp_path / "user_cells_for_registry_test.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("user_cells_for_registry_test")
    importlib.reload(module)  # defining the class again (a reload, a notebook cell run twice) is not a conflict
    assert L.cell_kinds()["halved_rnn"] is module.HalvedRNNCell  # the short name of a registered cell
    assert list(L.cell_kinds())[:3] == ["lstm", "gru", "rnn"]

    model = lstmlab.Sequential([L.recurrent_layer("halved_rnn", 3, input_shape=(4, 2)), L.Dense(1)])
    assert type(model.layers[0]) is L.RNN and type(model.layers[0].cell) is module.HalvedRNNCell
    model.compile("adam", "mse")
    x = np.random.default_rng(0).standard_normal((5, 4, 2)).astype(np.float32)
    path = tmp_path / "user.safetensors"
    model.save(path)
    loaded = lstmlab.load_model(path)
    assert type(loaded.layers[0].cell) is module.HalvedRNNCell
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    del sys.modules["user_cells_for_registry_test"]


def test_cell_kinds_build_their_own_layer():
    assert type(L.recurrent_layer("lstm", 3)) is L.LSTM
    assert type(L.recurrent_layer("rnn", 3)) is L.SimpleRNN
    with pytest.raises(ValueError, match=r"^cell: expected one of lstm, gru, rnn(, \w+)*, got 'transformer'$"):
        L.recurrent_layer("transformer", 3)
