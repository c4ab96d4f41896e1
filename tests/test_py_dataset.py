"""PyDataset: the same subclass body behaves like Keras 3's keras.utils.PyDataset."""
import math
import warnings

import numpy as np
import pytest
import keras

import lstmlab
from lstmlab.utils import PyDataset


def make_dataset_class(base):
    """One subclass body, two bases: Keras's class and ours."""

    class Batches(base):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size
            self.epochs_ended = 0

        def __len__(self):
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, idx):
            lo = idx * self.batch_size
            hi = min(lo + self.batch_size, len(self.x))
            return self.x[lo:hi], self.y[lo:hi]

        def on_epoch_end(self):
            self.epochs_ended += 1
            order = np.random.default_rng(self.epochs_ended).permutation(len(self.x))
            self.x, self.y = self.x[order], self.y[order]

    return Batches


def test_same_batches_and_attributes_as_keras():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 4, 2)), rng.normal(size=(10, 1))
    ours = make_dataset_class(PyDataset)(x, y, 3, workers=4, use_multiprocessing=True, max_queue_size=7)
    theirs = make_dataset_class(keras.utils.PyDataset)(x, y, 3, workers=4, use_multiprocessing=True, max_queue_size=7)
    assert len(ours) == ours.num_batches == theirs.num_batches == 4
    assert (ours.workers, ours.use_multiprocessing, ours.max_queue_size) == \
           (theirs.workers, theirs.use_multiprocessing, theirs.max_queue_size) == (4, True, 7)
    for _ in range(2):  # two epochs: re-iterable, and on_epoch_end changes the next one the same way
        got, want = list(ours), list(theirs)
        assert [len(b[0]) for b in got] == [3, 3, 3, 1]
        assert len(got) == len(want)
        for (gx, gy), (wx, wy) in zip(got, want):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)
        ours.on_epoch_end()
        theirs.on_epoch_end()


def test_defaults_match_keras():
    ours, theirs = PyDataset(), keras.utils.PyDataset()
    assert (ours.workers, ours.use_multiprocessing, ours.max_queue_size) == \
           (theirs.workers, theirs.use_multiprocessing, theirs.max_queue_size) == (1, False, 10)
    ours.workers = 3
    assert ours.workers == 3
    assert ours.on_epoch_begin() is None and ours.on_epoch_end() is None


def test_missing_super_init_warns_like_keras_and_uses_defaults():
    class Forgetful(PyDataset):
        def __init__(self):
            pass  # no super().__init__()

        def __len__(self):
            return 1

        def __getitem__(self, index):
            return np.zeros(2)

    with pytest.warns(UserWarning, match=r"should call `super\(\).__init__\(\*\*kwargs\)`"):
        assert Forgetful().workers == 1
    d = Forgetful()
    with warnings.catch_warnings(record=True):
        d.workers
    assert (d.max_queue_size, d.use_multiprocessing) == (10, False)


def test_unimplemented_methods_say_what_to_write():
    with pytest.raises(NotImplementedError, match=r"PyDataset must implement __getitem__\(index\)"):
        PyDataset()[0]
    with pytest.raises(NotImplementedError, match=r"PyDataset must implement __len__ \(or the num_batches property\)"):
        PyDataset().num_batches


def test_endless_dataset_iterates_while_num_batches_is_none():
    class Endless(PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return np.full(2, index)

    it = iter(Endless())
    assert [next(it)[0] for _ in range(5)] == [0, 1, 2, 3, 4]


def test_a_training_loop_over_a_pydataset_learns():
    """What fit does with a PyDataset: every batch of an epoch, then on_epoch_end(); here by hand."""
    lstmlab.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6, 1)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32)  # (N, 1): the model must add up its input
    ds = make_dataset_class(PyDataset)(x, y, 16)
    model = lstmlab.Sequential([lstmlab.layers.LSTM(8), lstmlab.layers.Dense(1)])
    model.compile(lstmlab.optimizers.Adam(0.02), "mse")
    losses = []
    for _ in range(20):
        losses.append(np.mean([model.train_on_batch(bx, by) for bx, by in ds]))
        ds.on_epoch_end()
    assert ds.epochs_ended == 20 and losses[-1] < 0.3 * losses[0]
