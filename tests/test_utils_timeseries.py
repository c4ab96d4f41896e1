"""timeseries_dataset_from_array against windows computed by hand.

Keras 3's version returns a tf.data.Dataset and raises ImportError without TensorFlow (its other
format, "grain", needs the grain package); neither is installed with the torch backend, so the
oracle here is Keras's documented examples plus a brute-force loop written from the definition.
"""
import itertools
import math

import numpy as np
import pytest

from lstmlab.backend import set_random_seed
from lstmlab.utils import PyDataset, timeseries_dataset_from_array
from lstmlab.utils.timeseries import TimeseriesDataset


def brute_force_windows(data, targets, L, stride, rate, start, end):
    """Every admissible window by walking the series: x = data[i], data[i+r], ...; y = targets[i - start]."""
    start = 0 if start is None else start
    end = len(data) if end is None else end
    xs, ys, i = [], [], start
    while i + (L - 1) * rate < end and (targets is None or i < len(targets)):
        xs.append(np.stack([data[i + j * rate] for j in range(L)]))
        if targets is not None:
            ys.append(targets[i])  # the target of the window starting at data[i]
        i += stride
    return xs, ys


def unbatch(ds):
    xs, ys = [], []
    for batch in ds:
        x, y = batch if isinstance(batch, tuple) else (batch, None)
        xs.extend(list(x))
        if y is not None:
            ys.extend(list(y))
    return xs, ys


def test_keras_docstring_example_1():
    ds = timeseries_dataset_from_array(np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3,
                                       batch_size=4)
    assert isinstance(ds, PyDataset)
    windows = np.concatenate(list(ds))  # (27, 10)
    np.testing.assert_array_equal(windows[0], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
    np.testing.assert_array_equal(windows[1], [3, 5, 7, 9, 11, 13, 15, 17, 19, 21])
    np.testing.assert_array_equal(windows[2], [6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
    np.testing.assert_array_equal(windows[-1], [78, 80, 82, 84, 86, 88, 90, 92, 94, 96])
    assert windows.shape == (27, 10) and len(ds) == 7  # ceil(27 / 4)


def test_keras_docstring_example_2_regression():
    data = np.random.default_rng(0).normal(size=50)
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)
    inputs, targets = ds[0]
    np.testing.assert_array_equal(inputs[0], data[:10])
    assert targets[0] == data[10]
    assert inputs.shape == (31, 10) and targets.shape == (31,)
    np.testing.assert_array_equal(inputs[-1], data[30:40])
    assert targets[-1] == data[40]


def test_keras_docstring_example_3_many_to_many():
    X = np.arange(100)
    Y = X * 2
    kw = dict(targets=None, sequence_length=20, sequence_stride=20, batch_size=2)
    for inputs, targets in zip(timeseries_dataset_from_array(X, **kw), timeseries_dataset_from_array(Y, **kw)):
        np.testing.assert_array_equal(inputs[0], X[:20])
        np.testing.assert_array_equal(targets[1], Y[20:40])
        break


@pytest.mark.parametrize("L, stride, rate, start, end, batch", [
    (5, 1, 1, None, None, 8),
    (3, 2, 3, 4, 37, 5),
    (7, 4, 2, None, 45, 3),
    (1, 1, 1, 10, None, 128),
    (4, 5, 1, 0, 20, 1),
    (6, 3, 2, 7, 48, None),
])
@pytest.mark.parametrize("with_targets", [True, False])
def test_windows_equal_brute_force(L, stride, rate, start, end, batch, with_targets):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(50, 3)).astype(np.float32)  # (T, features)
    targets = rng.integers(0, 9, size=(44, 2)) if with_targets else None  # shorter than data: it limits the windows
    ds = timeseries_dataset_from_array(data, targets, L, sequence_stride=stride, sampling_rate=rate,
                                       batch_size=batch, start_index=start, end_index=end)
    want_x, want_y = brute_force_windows(data, targets, L, stride, rate, start, end)
    if batch is None:
        got = list(ds)
        got_x = [item[0] if with_targets else item for item in got]
        got_y = [item[1] for item in got] if with_targets else []
        assert len(ds) == len(want_x)
    else:
        got_x, got_y = unbatch(ds)
        assert len(ds) == math.ceil(len(want_x) / batch)
        first = ds[0][0] if with_targets else ds[0]
        assert first.shape == (min(batch, len(want_x)), L, 3) and first.dtype == np.float32
    assert len(got_x) == len(want_x) > 0
    np.testing.assert_array_equal(np.stack(got_x), np.stack(want_x))
    if with_targets:
        np.testing.assert_array_equal(np.stack(got_y), np.stack(want_y))


def test_last_batch_is_short_and_indexing():
    ds = timeseries_dataset_from_array(np.arange(12), np.arange(12) * 10, sequence_length=3, batch_size=4)
    assert len(ds) == ds.num_batches == 3  # 10 windows
    assert [len(x) for x, _ in ds] == [4, 4, 2]
    x, y = ds[-1]
    np.testing.assert_array_equal(x, [[8, 9, 10], [9, 10, 11]])
    np.testing.assert_array_equal(y, [80, 90])
    with pytest.raises(IndexError, match=r"index: expected a batch number in \[0, 3\), got 3"):
        ds[3]


def test_re_iterable_every_epoch():
    ds = timeseries_dataset_from_array(np.arange(30.0), None, sequence_length=4, batch_size=5)
    first, second = [b.copy() for b in ds], [b.copy() for b in ds]
    assert len(first) == len(ds) == 6
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_shuffle_is_a_seeded_permutation_with_a_new_order_each_epoch():
    data = np.arange(40)
    plain = np.concatenate(list(timeseries_dataset_from_array(data, None, 3, batch_size=4)))[:, 0]  # window starts
    a = timeseries_dataset_from_array(data, data, 3, batch_size=4, shuffle=True, seed=7)
    b = timeseries_dataset_from_array(data, data, 3, batch_size=4, shuffle=True, seed=7)
    other = timeseries_dataset_from_array(data, data, 3, batch_size=4, shuffle=True, seed=8)

    epoch1 = np.concatenate([x for x, _ in a])[:, 0]
    assert sorted(epoch1) == sorted(plain) and not np.array_equal(epoch1, plain)  # every window once, reordered
    starts = np.arange(38)
    np.random.RandomState(7).shuffle(starts)  # Keras's first shuffle stage, with the same seed
    np.testing.assert_array_equal(np.concatenate([x for x, _ in a])[:, 0], starts)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, xa[:, 0])  # targets travel with their windows
    assert [x[0, 0] for x, _ in other] != [x[0, 0] for x, _ in a]

    a.on_epoch_end()
    b.on_epoch_end()
    epoch2 = np.concatenate([x for x, _ in a])[:, 0]
    assert sorted(epoch2.tolist()) == list(range(38)) and not np.array_equal(epoch2, starts)
    np.testing.assert_array_equal(epoch2, np.concatenate([x for x, _ in b])[:, 0])  # still reproducible


def test_shuffle_without_seed_follows_set_random_seed():
    data = np.arange(40)
    set_random_seed(3)
    first = np.concatenate(list(timeseries_dataset_from_array(data, None, 3, shuffle=True)))
    set_random_seed(3)
    again = np.concatenate(list(timeseries_dataset_from_array(data, None, 3, shuffle=True)))
    np.testing.assert_array_equal(first, again)


def test_a_training_loop_consumes_it_for_several_epochs():
    """What fit does with a PyDataset: len() batches per epoch, then on_epoch_end()."""
    import lstmlab

    set_random_seed(0)
    series = np.sin(np.arange(120) * 0.3).astype(np.float32)[:, None]  # (T, 1)
    ds = timeseries_dataset_from_array(series[:-5], series[5:, 0], sequence_length=5, batch_size=16, shuffle=True,
                                       seed=0)
    model = lstmlab.Sequential([lstmlab.layers.LSTM(8), lstmlab.layers.Dense(1)])
    model.compile(lstmlab.optimizers.Adam(0.02), "mse")
    losses = []
    for _ in range(15):
        losses.append(np.mean([model.train_on_batch(x, y[:, None]) for x, y in ds]))
        ds.on_epoch_end()
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("kw, match", [
    (dict(sequence_length=0), r"sequence_length: expected a positive integer, got 0"),
    (dict(sequence_length=3, sampling_rate=0), r"sampling_rate: expected a positive integer, got 0"),
    (dict(sequence_length=3, sampling_rate=20), r"sampling_rate: expected less than 20 \(the length of data\), got 20"),
    (dict(sequence_length=3, sequence_stride=-1), r"sequence_stride: expected a positive integer, got -1"),
    (dict(sequence_length=3, sequence_stride=25), r"sequence_stride: expected less than 20"),
    (dict(sequence_length=3, batch_size=0), r"batch_size: expected a positive integer, got 0"),
    (dict(sequence_length=3, start_index=-2), r"start_index: expected 0 <= start_index < 20 .*got -2"),
    (dict(sequence_length=3, start_index=20), r"start_index: expected 0 <= start_index < 20 .*got 20"),
    (dict(sequence_length=3, end_index=20), r"end_index: expected 0 < end_index < 20 .*got 20"),
    (dict(sequence_length=3, start_index=5, end_index=5), r"end_index: expected more than start_index=5, got 5"),
    (dict(sequence_length=8, sampling_rate=3), r"sequence_length: a window of 8 steps at sampling_rate=3 spans 22 "
                                               r"steps, more than the 20 steps of data\[0:20\]"),
])
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        timeseries_dataset_from_array(np.arange(20), None, **kw)


def test_errors_on_data():
    with pytest.raises(ValueError, match=r"data: expected an array with a time axis first, got a scalar"):
        timeseries_dataset_from_array(3.0, None, 2)
    with pytest.raises(ValueError, match=r"targets: expected more than start_index=0 targets .*got 0"):
        timeseries_dataset_from_array(np.arange(10), [], 2)
    with pytest.raises(ValueError, match=r"targets: expected more than start_index=6 targets .*got 5"):
        timeseries_dataset_from_array(np.arange(10), np.arange(5), 2, start_index=6)


def test_is_a_pydataset_subclass_with_keras_defaults():
    ds = timeseries_dataset_from_array(np.arange(10), None, 2)
    assert isinstance(ds, TimeseriesDataset) and isinstance(ds, PyDataset)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (1, False, 10)
    assert list(itertools.islice(iter(ds), 5))[0].shape == (9, 2)
