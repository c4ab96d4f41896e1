"""Merge layers: finite differences in float64 and Keras 3 (torch backend) as the oracle.

Keras's merges take masks from the tensors (``_keras_mask``, set by an Embedding or Masking upstream),
so the oracle attaches each mask to its input; ours take ``mask=[...]``. Compared: outputs, every input's
gradient (torch autograd through the Keras layer) and the output mask.
"""
import json

import numpy as np
import pytest

from lstmlab import layers as L
from lstmlab.gradcheck import check_layer

from helpers import assert_close

MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]
MA = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1]], bool)
MB = np.array([[1, 0, 0, 1], [1, 1, 0, 0], [1, 1, 1, 0]], bool)


def keras_run(klayer, xs, dys, *, mask=None, attach_masks=False, weights=None, **call_kwargs):
    """Run a Keras layer on float32 torch tensors; returns (outputs, input grads, weight grads, output mask).

    ``attach_masks`` puts the masks on the inputs (how Keras's merges see them); otherwise they are the
    call's ``mask`` argument. ``dys`` is a list aligned with the outputs (None: that output feeds nothing).
    """
    import torch
    from keras.src import backend

    ts = [torch.tensor(np.asarray(a, np.float32), requires_grad=True) for a in xs]
    if attach_masks and mask is not None:
        for t, m in zip(ts, mask):
            if m is not None:
                backend.set_keras_mask(t, torch.tensor(m))
    elif mask is not None:
        call_kwargs["mask"] = [None if m is None else torch.tensor(m) for m in mask]
    if weights is not None:
        klayer.build([tuple(a.shape) for a in xs])
        klayer.set_weights(weights)
    out = klayer(ts if len(ts) > 1 or not attach_masks else ts[0], **call_kwargs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    loss = sum((o * torch.tensor(np.asarray(d, np.float32))).sum() for o, d in zip(outs, dys) if d is not None)
    loss.backward()
    out_mask = backend.get_keras_mask(outs[0])
    return ([o.detach().numpy() for o in outs], [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in ts],
            [w.value.grad.numpy() for w in klayer.trainable_weights],
            None if out_mask is None else out_mask.numpy())


def ours_run(layer, xs, dys, *, mask=None, **call_kwargs):
    """The same with our layer: (outputs, input grads, weight grads, output mask)."""
    out = layer([np.asarray(a, np.float32) for a in xs], training=True, mask=mask, **call_kwargs)
    outs = out if isinstance(out, list) else [out]
    dx = layer.backward(dys if isinstance(out, list) else dys[0])
    out_mask = layer.output_mask[0] if isinstance(out, list) else layer.output_mask
    return outs, dx, list(layer.grads), out_mask


def assert_same(ours, theirs, tol=1e-5):
    (o1, dx1, g1, m1), (o2, dx2, g2, m2) = ours, theirs
    assert len(o1) == len(o2) and len(dx1) == len(dx2) and len(g1) == len(g2)
    for k, (a, b) in enumerate(zip(o1, o2)):
        assert_close(f"output {k}", a, b, tol)
    for k, (a, b) in enumerate(zip(dx1, dx2)):
        assert_close(f"d x[{k}]", a, b, tol)
    for k, (a, b) in enumerate(zip(g1, g2)):
        assert_close(f"weight gradient {k}", a, b, tol)
    assert (m1 is None) == (m2 is None), f"output mask: ours {m1}, Keras {m2}"
    if m1 is not None:
        np.testing.assert_array_equal(m1, m2)


def inputs(rng, n=2, shape=(3, 4, 5)):
    return [rng.normal(0.3, 1.0, size=shape) for _ in range(n)]


@pytest.mark.parametrize("masks", ["none", "both", "first"])
@pytest.mark.parametrize("name", MERGES)
def test_merge_equals_keras(name, masks):
    import keras
    rng = np.random.default_rng(MERGES.index(name))
    n = 2 if name == "Subtract" else 3
    xs = inputs(rng, n)
    mask = {"none": None, "both": [MA, MB, MA | MB][:n], "first": [MA] + [None] * (n - 1)}[masks]
    ours_layer = getattr(L, name)()
    y = ours_layer([a.astype(np.float32) for a in xs])
    dy = rng.normal(size=y.shape)
    theirs = keras_run(getattr(keras.layers, name)(), xs, [dy], mask=mask, attach_masks=True)
    assert_same(ours_run(getattr(L, name)(), xs, [dy], mask=mask), theirs)


@pytest.mark.parametrize("name", MERGES)
def test_merge_gradients_by_finite_differences(name):
    rng = np.random.default_rng(10 + MERGES.index(name))
    n = 2 if name == "Subtract" else 3
    for mask in (None, [MA, MB, None][:n]):
        report = check_layer(getattr(L, name)(dtype="float64"), inputs(rng, n), mask=mask, seed=3)
        assert report.ok, report
        assert [t.name for t in report.tensors] == [f"x[{k}]" for k in range(n)]


@pytest.mark.parametrize("second", [(3, 1, 5), (3, 5), (3, 4, 1)], ids=["size-1-time", "lower-rank", "size-1-last"])
def test_broadcasting_merges_equal_keras(second):
    import keras
    rng = np.random.default_rng(7)
    xs = [rng.normal(size=(3, 4, 5)), rng.normal(size=second)]
    for name in ("Add", "Multiply", "Maximum"):
        y = getattr(L, name)()([a.astype(np.float32) for a in xs])
        assert y.shape == (3, 4, 5)
        dy = rng.normal(size=y.shape)
        assert_same(ours_run(getattr(L, name)(), xs, [dy]), keras_run(getattr(keras.layers, name)(), xs, [dy]))
        report = check_layer(getattr(L, name)(dtype="float64"), xs)
        assert report.ok, report


@pytest.mark.parametrize("axis", [1, -1, 2])
def test_concatenate_on_any_axis_equals_keras(axis):
    import keras
    rng = np.random.default_rng(axis + 5)
    a, b = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    if axis == 1:
        b = rng.normal(size=(3, 2, 5))
    mb = MB[:, : b.shape[1]]
    layer = L.Concatenate(axis=axis)
    y = layer([a.astype(np.float32), b.astype(np.float32)])
    dy = rng.normal(size=y.shape)
    theirs = keras_run(keras.layers.Concatenate(axis=axis), [a, b], [dy], mask=[MA, mb], attach_masks=True)
    ours = ours_run(L.Concatenate(axis=axis), [a, b], [dy], mask=[MA, mb])
    assert_same(ours, theirs)
    if axis == 1:  # on the time axis the masks are joined, not ORed
        np.testing.assert_array_equal(ours[3], np.concatenate([MA, mb], axis=1))
    assert L.Concatenate(axis=axis).compute_output_shape([(None, 4, 5), (None, b.shape[1], 5)]) == \
        keras.layers.Concatenate(axis=axis).compute_output_shape([(None, 4, 5), (None, b.shape[1], 5)])


def test_masks_change_values_only_where_keras_does():
    # Add ignores masks in its values; Multiply counts a masked position as 1, Maximum skips it
    a, b = np.full((1, 2, 1), 2.0), np.full((1, 2, 1), -3.0)
    ma, mb = np.array([[True, False]]), np.array([[False, False]])
    assert L.Add()([a, b], mask=[ma, mb]).ravel().tolist() == [-1.0, -1.0]
    assert L.Multiply()([a, b], mask=[ma, mb]).ravel().tolist() == [2.0, 0.0]
    assert L.Maximum()([a, b], mask=[ma, mb]).ravel().tolist() == [2.0, 2.0]
    layer = L.Minimum()
    layer([a, b], mask=[ma, mb])
    np.testing.assert_array_equal(layer.output_mask, [[True, False]])  # OR of the masks, as Keras 3
    layer([a, b], mask=[ma, None])
    assert layer.output_mask is None


def test_output_shapes_and_build_take_lists_of_shapes():
    assert L.Add().compute_output_shape([(None, 4, 5), (None, 4, 5)]) == (None, 4, 5)
    assert L.Add().compute_output_shape([(None, 4, 5), (None, 5)]) == (None, 4, 5)
    assert L.Concatenate().compute_output_shape([(None, 4, 5), (None, 4, 2)]) == (None, 4, 7)
    assert L.Concatenate(axis=1).compute_output_shape([(None, None, 5), (None, 4, 5)]) == (None, None, 5)
    layer = L.Multiply()
    layer.build([(None, 4, 5), (None, 4, 5)])
    assert layer.built and layer.weights == []


def test_bad_calls_name_the_argument():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="x: layer 'add.*' expects a list of inputs, got ndarray"):
        L.Add()(x)
    with pytest.raises(ValueError, match="x: layer .* expects exactly 2 inputs, got 3"):
        L.Subtract()([x, x, x])
    with pytest.raises(ValueError, match=r"x: layer .* needs inputs of one shape \(or broadcastable\)"):
        L.Add()([x, np.ones((2, 3, 5))])
    with pytest.raises(ValueError, match="different batch sizes"):
        L.Average()([x, np.ones((3, 3, 4))])
    with pytest.raises(ValueError, match="x: layer .* needs inputs of one shape except on axis -1"):
        L.Concatenate()([x, np.ones((2, 4, 4))])
    with pytest.raises(ValueError, match="axis: layer .* needs inputs of one rank and a non-batch axis"):
        L.Concatenate(axis=0)([x, x])
    with pytest.raises(ValueError, match="mask: layer .* expects a list of 2 masks, got 1"):
        L.Add()([x, x], mask=[np.ones((2, 3), bool)])
    with pytest.raises(ValueError, match=r"mask\[1\]: expected shape \(2, 3\)"):
        L.Multiply()([x, x], mask=[np.ones((2, 3), bool), np.ones((2, 4), bool)])
    with pytest.raises(ValueError, match=r"x\[1\]: expected a floating-point array"):
        L.Add()([x, np.ones((2, 3, 4), int)])
    with pytest.raises(ValueError, match="axis: expected an integer, got 'last'"):
        L.Concatenate(axis="last")


@pytest.mark.parametrize("name", MERGES)
def test_config_round_trips_with_kerass_arguments(name):
    import keras
    layer = getattr(L, name)(name=f"m_{name.lower()}", **({"axis": 1} if name == "Concatenate" else {}))
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    ours = set(layer.get_config()) - {"name", "dtype", "trainable", "batch_input_shape"}
    theirs = set(getattr(keras.layers, name)().get_config()) - {"name", "dtype", "trainable"}
    assert ours == theirs
