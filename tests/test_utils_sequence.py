"""pad_sequences and to_categorical against Keras 3 (keras.utils, torch backend), plus the module layout."""
import numpy as np
import pytest

import keras

import lstmlab
from lstmlab.preprocessing.sequence import pad_sequences as pad_from_preprocessing
from lstmlab.utils import pad_sequences, set_random_seed, to_categorical

RAGGED = [[3, 1, 4, 1, 5], [9], [], [2, 6, 5, 3], [5, 8, 9, 7, 9, 3, 2]]


def test_module_layout():
    import importlib

    assert importlib.import_module("lstmlab.utils") is lstmlab.utils  # `import lstmlab.utils` and the attribute agree
    assert importlib.import_module("lstmlab.preprocessing.sequence") is lstmlab.preprocessing.sequence
    assert pad_from_preprocessing is pad_sequences is lstmlab.preprocessing.sequence.pad_sequences
    assert set_random_seed is lstmlab.backend.set_random_seed
    for name in ("pad_sequences", "to_categorical", "timeseries_dataset_from_array", "get_file", "PyDataset",
                 "set_random_seed"):
        assert hasattr(lstmlab.utils, name), name


@pytest.mark.parametrize("maxlen", [None, 1, 3, 5, 9])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("value", [0.0, -1, 7])
def test_pad_sequences_matches_keras_on_ragged_input(maxlen, padding, truncating, value):
    ours = pad_sequences(RAGGED, maxlen=maxlen, padding=padding, truncating=truncating, value=value)
    theirs = keras.utils.pad_sequences(RAGGED, maxlen=maxlen, padding=padding, truncating=truncating, value=value)
    assert ours.dtype == theirs.dtype == np.int32
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_keras_docstring_examples():
    seqs = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(seqs), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8"])
def test_pad_sequences_dtype_and_vector_steps(dtype):
    rng = np.random.default_rng(0)
    seqs = [np.abs(rng.normal(size=(n, 3))) * 10 for n in (4, 1, 6, 2)]  # steps are 3-vectors, cast to dtype
    kw = dict(maxlen=5, dtype=dtype, padding="post", truncating="pre", value=2.5)
    ours = pad_sequences(seqs, **kw)
    theirs = keras.utils.pad_sequences(seqs, **kw)
    assert ours.shape == (4, 5, 3) and ours.dtype == theirs.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_strings():
    words = [["the", "cat"], ["a"], ["sat", "on", "the", "mat"]]
    for kw in (dict(dtype=object, value="<pad>"), dict(dtype="<U5", value="_", padding="post", maxlen=3)):
        ours = pad_sequences(words, **kw)
        theirs = keras.utils.pad_sequences(words, **kw)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(pad_sequences(words, dtype=object, value="."),
                                  [[".", ".", "the", "cat"], [".", ".", ".", "a"], ["sat", "on", "the", "mat"]])


def test_pad_sequences_numpy_arrays_and_tuples_and_zero_maxlen():
    seqs = (np.array([1, 2, 3]), (4, 5), np.array([], dtype=int))
    np.testing.assert_array_equal(pad_sequences(seqs), keras.utils.pad_sequences(seqs))
    assert pad_sequences(seqs, maxlen=0).shape == (3, 0)  # Keras fails to broadcast here; we give the empty rows
    assert pad_sequences([[], []], maxlen=2).tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize("kw, match", [
    (dict(padding="middle"), r"padding: expected 'pre' or 'post', got 'middle'"),
    (dict(truncating="both"), r"truncating: expected 'pre' or 'post', got 'both'"),
    (dict(truncating=None), r"truncating: expected 'pre' or 'post', got None"),
    (dict(maxlen=-1), r"maxlen: expected None or a non-negative integer, got -1"),
    (dict(maxlen=2.5), r"maxlen: expected None or a non-negative integer, got 2.5"),
    (dict(value="x"), r"value: a string \('x'\) needs dtype=object or a text dtype, got dtype='int32'"),
])
def test_pad_sequences_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences([[1, 2], [3]], **kw)


def test_pad_sequences_errors_on_input():
    with pytest.raises(ValueError, match=r"sequences: expected a list of sequences, got a non-sequence 5 at position 1"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match=r"sequences: expected a list of sequences \(something with a length\)"):
        pad_sequences(x for x in [[1]])
    with pytest.raises(ValueError, match=r"sequences: expected at least one sequence when maxlen is None"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"position 1 have shape \(3,\), expected \(2,\)"):
        pad_sequences([np.ones((2, 2)), np.ones((1, 3))])


@pytest.mark.parametrize("labels, num_classes", [
    ([0, 2, 1, 3], None),
    ([0, 2, 1, 3], 6),
    (np.array([[1], [0], [2]]), None),          # (N, 1): the trailing 1 is squeezed -> (N, C)
    (np.array([[0, 1], [2, 2]]), 4),           # (N, T) -> (N, T, C)
    (np.zeros((2, 1, 1), dtype=int), 2),        # only the last 1 goes: (2, 1, 2)
    (np.array([1]), None),                      # (1,) is not squeezed: one label -> (1, C)
    (np.array(3), 5),                           # a scalar label -> (C,)
    (np.array([2.0, 0.0, 1.0]), None),          # float labels are cast to int64 as in Keras
])
def test_to_categorical_matches_keras(labels, num_classes):
    ours = to_categorical(labels, num_classes)
    theirs = keras.utils.to_categorical(labels, num_classes)
    assert ours.dtype == np.float32  # Keras's NumPy path gives float64 with the same values
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"x: expected class labels >= 0, got -1"):
        to_categorical([0, -1, 2])  # Keras silently wraps -1 to the last class
    with pytest.raises(ValueError, match=r"x: expected class labels < num_classes=3, got 3"):
        to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match=r"num_classes: expected None or a positive integer, got 0"):
        to_categorical([0, 1], num_classes=0)
    with pytest.raises(ValueError, match=r"num_classes: cannot infer the number of classes from empty labels"):
        to_categorical([])
    assert to_categorical([], num_classes=3).shape == (0, 3)


def test_padded_one_hot_feeds_a_model():
    """The two helpers together, as in a Keras tutorial: padded token ids in, one-hot classes out of a model."""
    set_random_seed(0)
    x = pad_sequences([[1, 2, 3], [4, 5], [6], [7, 8, 9, 1]], maxlen=4)[..., None].astype(np.float32)  # (4, 4, 1)
    y = to_categorical([0, 1, 2, 1], 3)  # (4, 3)
    model = lstmlab.Sequential([lstmlab.layers.LSTM(4), lstmlab.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and model.predict(x, verbose=0).shape == (4, 3)
