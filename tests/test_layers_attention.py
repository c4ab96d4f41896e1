"""Attention and AdditiveAttention: finite differences in float64 and Keras 3 (torch backend) as the oracle:
outputs, attention scores, the gradients of query, value, key and every weight (torch autograd through the
Keras layer), and the output mask, with query and value masks, the causal mask and a separate key."""
import json

import numpy as np
import pytest

from lstmlab import layers as L
from lstmlab.gradcheck import check_layer, gradcheck

from helpers import assert_close
from test_layers_merging import assert_same, keras_run, ours_run

QMASK = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1]], bool)
VMASK = np.array([[1, 1, 0, 1, 0], [1, 0, 1, 1, 1], [0, 0, 1, 1, 1]], bool)
# with the causal mask query 0 sees key 0 only: it stays valid here, since a row with no valid key is Keras's
# degenerate case (every score shifted by 1e9, so float rounding decides the weights)
VMASK_CAUSAL = np.array([[1, 1, 0, 1, 0], [1, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)

KINDS = {
    "dot": lambda keras, **kw: (keras.layers if keras else L).Attention(**kw),
    "dot-scaled": lambda keras, **kw: (keras.layers if keras else L).Attention(use_scale=True, **kw),
    "concat": lambda keras, **kw: (keras.layers if keras else L).Attention(score_mode="concat", **kw),
    "concat-scaled": lambda keras, **kw: (keras.layers if keras else L).Attention(score_mode="concat", use_scale=True,
                                                                                  **kw),
    "additive": lambda keras, **kw: (keras.layers if keras else L).AdditiveAttention(**kw),
    "additive-unscaled": lambda keras, **kw: (keras.layers if keras else L).AdditiveAttention(use_scale=False, **kw),
}


def problem(rng, with_key):
    q, v = rng.normal(size=(3, 4, 6)), rng.normal(size=(3, 5, 2))
    xs = [q, v, rng.normal(size=(3, 5, 6))] if with_key else [q, rng.normal(size=(3, 5, 6))]
    return [0.7 * a for a in xs]


def random_weights(layer, rng):
    return [rng.uniform(0.6, 1.2, size=w.shape) * rng.choice([-1, 1], size=w.shape) for w in layer.weights]


@pytest.mark.parametrize("setting", ["plain", "key+masks", "causal+scores", "scores-only"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_attention_equals_keras(kind, setting):
    import keras
    rng = np.random.default_rng(len(kind) + len(setting))
    xs = problem(rng, with_key=setting != "plain")
    ours_layer = KINDS[kind](None)
    ours_layer.build([(None,) + a.shape[1:] for a in xs])
    weights = random_weights(ours_layer, rng)
    mask = [QMASK, VMASK] if setting in ("key+masks", "scores-only") else None
    call = dict(return_attention_scores=setting in ("causal+scores", "scores-only"),
                use_causal_mask=setting == "causal+scores")
    if setting == "causal+scores":  # the causal mask needs Tq == Tv
        xs = [rng.normal(size=(3, 5, 6)), xs[1], xs[2]]
        mask = [None, VMASK_CAUSAL]
    ours_layer.set_weights(weights)
    shape_out = (3, xs[0].shape[1], xs[1].shape[2])
    dys = [rng.normal(size=shape_out)]
    if call["return_attention_scores"]:
        dys.append(rng.normal(size=(3, xs[0].shape[1], 5)))
    if setting == "scores-only":
        dys[0] = None
    theirs = keras_run(KINDS[kind](keras), xs, dys, mask=mask, weights=[w.astype(np.float32) for w in weights], **call)
    ours = ours_run(ours_layer, xs, dys, mask=mask, **call)
    if setting == "scores-only":  # Keras's output took no part in the loss; compare its value only
        assert_close("output", ours[0][0], theirs[0][0], 1e-5)
    assert_same(ours, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_attention_gradients_by_finite_differences(kind):
    rng = np.random.default_rng(30 + len(kind))
    for with_key, mask, call in [(False, None, {}),
                                 (True, [QMASK, VMASK], {"return_attention_scores": True}),
                                 (True, [None, VMASK_CAUSAL], {"use_causal_mask": True})]:
        xs = problem(rng, with_key)
        layer = KINDS[kind](None, dtype="float64")
        layer.build([(None,) + a.shape[1:] for a in xs])
        layer.set_weights(random_weights(layer, rng))
        report = check_layer(layer, xs, mask=mask, call_kwargs=call, seed=2)
        assert report.ok, report
        assert [t.name for t in report.tensors][-len(xs):] == [f"x[{k}]" for k in range(len(xs))]


def test_weights_have_kerass_names_shapes_and_initial_values():
    import keras
    shapes = [(None, 4, 6), (None, 5, 6)]
    for kind in KINDS:
        ours, theirs = KINDS[kind](None), KINDS[kind](keras)
        ours.build(shapes)
        theirs.build(shapes)
        assert [(w.name, w.shape) for w in ours.weights] == [(w.name, tuple(w.shape)) for w in theirs.weights], kind
        if kind.startswith(("dot-", "concat")):
            assert all(np.all(w == 1.0) for w in ours.get_weights())
    scale = L.AdditiveAttention(dtype="float64")
    scale.build(shapes)
    limit = np.sqrt(6.0 / 12)  # Glorot uniform of a (6,) vector: fan_in = fan_out = 6
    assert np.all(np.abs(scale.get_weights()[0]) <= limit) and np.std(scale.get_weights()[0]) > 0


def test_dropout_drops_attention_weights_in_training_only():
    rng = np.random.default_rng(4)
    xs = problem(rng, with_key=False)
    layer = L.Attention(dropout=0.5, dtype="float64")
    out, scores = layer(xs, return_attention_scores=True)
    assert np.allclose(scores.sum(axis=-1), 1.0)
    layer.rng = np.random.default_rng(0)
    out_t, scores_t = layer(xs, training=True, return_attention_scores=True)
    dropped = scores_t == 0
    assert 0.25 < dropped.mean() < 0.75
    np.testing.assert_allclose(scores_t[~dropped], 2.0 * scores[~dropped])  # kept ones scaled by 1/(1 - rate)
    np.testing.assert_allclose(out_t, scores_t @ xs[1])

    # the backward of a dropout call, with the same draws for every perturbed call
    upstream = rng.normal(size=out.shape)

    def loss():
        layer.rng = np.random.default_rng(0)
        return float(np.sum(upstream * layer(xs, training=True)))

    loss()
    dx = layer.backward(upstream)
    report = gradcheck(loss, xs, dx)
    assert report.ok, report


def test_masks_as_keras_query_mask_zeroes_rows_value_mask_hides_keys():
    rng = np.random.default_rng(5)
    q, v = rng.normal(size=(3, 4, 6)), rng.normal(size=(3, 5, 6))
    layer = L.Attention()
    out, scores = layer([q, v], mask=[QMASK, VMASK], return_attention_scores=True)
    assert np.all(out[~QMASK] == 0.0)
    assert np.all(scores.transpose(0, 2, 1)[~VMASK] < 1e-30)
    assert isinstance(layer.output_mask, list) and layer.output_mask[1] is None
    np.testing.assert_array_equal(layer.output_mask[0], QMASK)
    layer([q, v], mask=[None, VMASK])
    assert layer.output_mask is None
    assert layer.compute_output_shape([(None, 4, 6), (None, 5, 3)]) == (None, 4, 3)


def test_config_round_trips_with_kerass_arguments():
    import keras
    for ours, theirs in [(L.Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=3, name="att"),
                          keras.layers.Attention()),
                         (L.AdditiveAttention(use_scale=False, dropout=0.2, name="add_att"),
                          keras.layers.AdditiveAttention())]:
        again = L.deserialize(json.loads(json.dumps(L.serialize(ours))))
        assert type(again) is type(ours) and again.get_config() == ours.get_config()
        assert set(ours.get_config()) - {"batch_input_shape"} == set(theirs.get_config())


def test_bad_calls_name_the_argument():
    q, v = np.ones((2, 4, 3)), np.ones((2, 5, 3))
    with pytest.raises(ValueError, match="score_mode: expected 'dot' or 'concat', got 'general'"):
        L.Attention(score_mode="general")
    with pytest.raises(ValueError, match=r"dropout: expected a rate in \[0, 1\), got 1.0"):
        L.AdditiveAttention(dropout=1.0)
    with pytest.raises(ValueError, match="x: layer .* expects 2 to 3 inputs, got 1"):
        L.Attention()([q])
    with pytest.raises(ValueError, match="x: layer .* expects a list of inputs"):
        L.Attention()(q)
    with pytest.raises(ValueError, match="x: query and key need the same last size"):
        L.Attention()([q, np.ones((2, 5, 4))])
    with pytest.raises(ValueError, match="x: key and value need the same number of steps"):
        L.Attention()([q, v, np.ones((2, 6, 3))])
    with pytest.raises(ValueError, match="x: layer .* expects 3-D query"):
        L.Attention()([np.ones((2, 3)), v])
    with pytest.raises(ValueError, match=r"mask\[1\]: expected shape \(2, 5\), got \(2, 4\)"):
        L.Attention()([q, v], mask=[None, np.ones((2, 4), bool)])
    with pytest.raises(ValueError, match="mask: layer .* expects a list of 2 or 3 masks, got 1"):
        L.Attention()([q, v], mask=[None])
    layer = L.AdditiveAttention()
    layer([q, v])
    with pytest.raises(ValueError, match="x: layer .* was built for query size 3"):
        layer([np.ones((2, 4, 4)), np.ones((2, 5, 4))])
