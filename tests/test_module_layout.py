"""Keras's module layout: each of these is an importable module, holding the classes Keras code imports."""
import importlib

import pytest

LAYOUT = {
    "callbacks": ["EarlyStopping", "ModelCheckpoint", "CSVLogger", "ReduceLROnPlateau", "LambdaCallback",
                  "TerminateOnNaN", "History", "Callback", "LearningRateScheduler"],
    "optimizers": ["SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "Nadam", "Adamax", "Optimizer", "get",
                   "serialize"],
    "optimizers.schedules": ["ExponentialDecay", "StepDecay", "LearningRateSchedule", "CosineDecay",
                             "PiecewiseConstantDecay"],
    "losses": ["MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy",
               "SparseCategoricalCrossentropy", "get"],
    "metrics": ["BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "AUC", "Precision", "Recall",
                "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "get"],
    "initializers": ["GlorotUniform", "GlorotNormal", "Orthogonal", "RandomNormal", "RandomUniform", "Zeros",
                     "Ones", "get"],
    "regularizers": ["L1", "L2", "L1L2", "l1_l2", "get"],
    "saving": ["load_model", "save_model"],
    "models": ["Sequential", "Model", "load_model"],
    "layers": ["LSTM", "RNN", "LSTMCell", "Dense", "Embedding", "Input", "InputLayer", "Conv1D", "MaxPooling1D",
               "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten", "Reshape", "RepeatVector", "Activation",
               "SpatialDropout1D", "Concatenate", "Add", "Multiply", "Average", "LayerNormalization",
               "BatchNormalization", "Attention", "AdditiveAttention"],
    "utils": ["to_categorical", "pad_sequences", "timeseries_dataset_from_array", "get_file", "set_random_seed",
              "PyDataset"],
    "preprocessing.sequence": ["pad_sequences"],
}


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_keras_module_is_importable_with_its_names(name):
    module = importlib.import_module(f"lstmlab.{name}")
    missing = [n for n in LAYOUT[name] if not hasattr(module, n)]
    assert not missing, f"lstmlab.{name} lacks {missing}"


def test_top_level_names_keras_code_uses():
    import lstmlab
    assert lstmlab.Input is lstmlab.layers.Input and lstmlab.Model is lstmlab.models.Model
    assert issubclass(lstmlab.Sequential, lstmlab.Model)


def test_names_are_the_library_s_own_objects(tmp_path):
    import numpy as np

    import lstmlab
    from lstmlab.callbacks import EarlyStopping
    from lstmlab.optimizers import Adam
    from lstmlab.optimizers.schedules import ExponentialDecay
    from lstmlab.saving import load_model, save_model

    assert EarlyStopping is lstmlab.training.callbacks.EarlyStopping
    assert Adam is lstmlab.training.optimizers.Adam and lstmlab.optimizers.Adam is Adam
    model = lstmlab.Sequential([lstmlab.layers.LSTM(3), lstmlab.layers.Dense(1)])
    model.compile(Adam(ExponentialDecay(0.01, 10, 0.9)), "mse")
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
    model.fit(x, np.ones((4, 1)), epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="loss")])
    save_model(model, tmp_path / "m.safetensors")
    assert np.array_equal(load_model(tmp_path / "m.safetensors").predict(x), model.predict(x))
