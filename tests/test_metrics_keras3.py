"""AUC, Precision, Recall and the top-k accuracies against Keras 3 (torch backend) on the same data:
several update calls, then result, equal to 1e-6; plus counts by hand, names, masks and errors."""
import numpy as np
import pytest

import lstmlab
from lstmlab import metrics as M
from lstmlab.training.metrics import METRICS

keras = pytest.importorskip("keras")


def batches(shape, n=3, seed=0, logits=False, classes=None):
    """``n`` (y, p) batches: binary or one-hot targets and scores spread over [0, 1] (or logits)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if classes:
            y = np.eye(classes)[rng.integers(0, classes, shape[0])].astype(np.float32)
            p = rng.random((shape[0], classes)).astype(np.float32)
        else:
            y = (rng.random(shape) < 0.4).astype(np.float32)
            p = (rng.standard_normal(shape) * 2 if logits else rng.random(shape)).astype(np.float32)
            p[0, 0] = 0.0 if not logits else p[0, 0]  # an exact 0 sits on the first bucket's edge
        out.append((y, p))
    return out


def keras_result(kmetric, data, weights=None):
    for k, (y, p) in enumerate(data):
        kmetric.update_state(y, p, sample_weight=None if weights is None else weights[k])
    return np.asarray(keras.ops.convert_to_numpy(kmetric.result()), dtype=float)


def our_result(metric, data, masks=None):
    for k, (y, p) in enumerate(data):
        metric.update(y, p, None if masks is None else masks[k])
    return np.asarray(metric.result(), dtype=float)


AUC_CASES = [
    dict(),
    dict(curve="PR"),
    dict(curve="PR", summation_method="minoring"),
    dict(curve="ROC", summation_method="majoring", num_thresholds=17),
    dict(num_thresholds=50, from_logits=True),
    dict(thresholds=[0.1, 0.35, 0.5, 0.8]),  # not evenly spaced: counted by comparisons
    dict(thresholds=[0.25, 0.5, 0.75], curve="PR"),  # evenly spaced after adding 0 and 1: by buckets
    dict(curve="PRGAIN"),
    dict(multi_label=True),
    dict(multi_label=True, curve="PR", label_weights=[0.2, 1.0, 0.5]),
    dict(label_weights=[0.2, 1.0, 0.5]),
]


@pytest.mark.parametrize("kwargs", AUC_CASES, ids=[str(k) for k in AUC_CASES])
def test_auc_matches_keras(kwargs):
    data = batches((40, 3), logits=kwargs.get("from_logits", False))
    ours = our_result(M.AUC(**kwargs), data)
    theirs = keras_result(keras.metrics.AUC(**kwargs), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    if kwargs.get("curve") != "PRGAIN":  # PR-gain areas of a random ranking are near 0
        assert 0.2 < float(ours) < 0.9  # a real, non-degenerate area


def test_auc_with_a_time_mask_matches_keras_sample_weights():
    rng = np.random.default_rng(4)
    data = [((rng.random((6, 5, 1)) < 0.5).astype(np.float32), rng.random((6, 5, 1)).astype(np.float32))
            for _ in range(2)]
    masks = [(rng.random((6, 5)) < 0.7).astype(np.float32) for _ in range(2)]
    for kwargs in (dict(), dict(curve="PR")):
        ours = our_result(M.AUC(**kwargs), data, masks)
        theirs = keras_result(keras.metrics.AUC(**kwargs), data, [m[..., None] for m in masks])
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_auc_perfect_and_reversed_rankings_by_hand():
    y = np.array([[0.0], [0.0], [1.0], [1.0]])
    auc = M.AUC()
    auc.update(y, np.array([[0.1], [0.4], [0.6], [0.9]]))
    assert auc.result() == pytest.approx(1.0)
    auc.reset()
    auc.update(y, np.array([[0.9], [0.6], [0.4], [0.1]]))
    assert auc.result() == pytest.approx(0.0, abs=1e-12)
    # One positive below one negative of four pairs: ROC AUC = 3/4 (scores far from the thresholds).
    auc.reset()
    auc.update(y, np.array([[0.1], [0.6], [0.4], [0.9]]))
    assert auc.result() == pytest.approx(0.75)


PR_CASES = [
    dict(),
    dict(thresholds=[0.3, 0.5, 0.9]),
    dict(thresholds=[0.0, 0.5, 1.0]),  # evenly spaced: by buckets
    dict(top_k=2),
    dict(class_id=1),
    dict(top_k=2, class_id=2),
    dict(thresholds=0.7, class_id=0),
]


@pytest.mark.parametrize("cls", ["Precision", "Recall"])
@pytest.mark.parametrize("kwargs", PR_CASES, ids=[str(k) for k in PR_CASES])
def test_precision_recall_match_keras(cls, kwargs):
    data = batches((30, 4), seed=2)
    masks = [(np.random.default_rng(k).random(30) < 0.8).astype(np.float32) for k in range(3)]
    ours = our_result(getattr(M, cls)(**kwargs), data, masks)
    theirs = keras_result(getattr(keras.metrics, cls)(**kwargs), data, masks)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert np.any((ours > 0) & (ours < 1))  # not all counts empty or perfect


def test_precision_recall_by_hand():
    y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.8], [0.3], [0.6], [0.1]])  # at 0.5: TP 2, FP 1, FN 1
    precision, recall = M.Precision(), M.Recall()
    precision.update(y, p)
    recall.update(y, p)
    assert precision.result() == pytest.approx(2 / 3) and recall.result() == pytest.approx(2 / 3)
    recall.update(np.array([[1.0]]), np.array([[0.2]]))  # one more miss
    assert recall.result() == pytest.approx(2 / 4)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_categorical_accuracy_matches_keras(k):
    data = batches((25, 6), seed=5, classes=6)
    data[0][1][:3] = 0.5  # ties: every class scores the same, so every target is "in the top k"
    ours = our_result(M.TopKCategoricalAccuracy(k=k), data)
    theirs = keras_result(keras.metrics.TopKCategoricalAccuracy(k=k), data)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
def test_sparse_top_k_matches_keras_with_masks(k):
    rng = np.random.default_rng(6)
    data = [(rng.integers(0, 5, (8, 3)), rng.random((8, 3, 5)).astype(np.float32)) for _ in range(3)]
    masks = [(rng.random((8, 3)) < 0.6).astype(np.float32) for _ in range(3)]
    ours = our_result(M.SparseTopKCategoricalAccuracy(k=k), data, masks)
    theirs = keras_result(keras.metrics.SparseTopKCategoricalAccuracy(k=k), data, masks)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_sparse_top_k_from_sorted_ids_by_hand():
    m = M.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    m.update(np.array([3, 1, 0]), np.array([[3, 0, 1], [2, 0, 1], [4, 0, 2]]))
    assert m.result() == pytest.approx(2 / 3)


def test_names_registry_and_defaults_as_keras():
    for name, cls in (("auc", M.AUC), ("precision", M.Precision), ("recall", M.Recall),
                      ("top_k_categorical_accuracy", M.TopKCategoricalAccuracy),
                      ("sparse_top_k_categorical_accuracy", M.SparseTopKCategoricalAccuracy)):
        made = METRICS.lookup(name)()
        assert type(made) is cls and made.name == name  # Keras's default names (it adds _1, _2 to repeats)
    for cls in ("AUC", "Precision", "Recall", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy"):
        ours, theirs = getattr(M, cls)(name="m").get_config(), getattr(keras.metrics, cls)(name="m").get_config()
        assert {k: ours[k] for k in theirs if k != "dtype"} == {k: v for k, v in theirs.items() if k != "dtype"}, cls
    back = METRICS.deserialize(METRICS.serialize(M.AUC(num_thresholds=7, curve="PR")))
    assert back.get_config() == M.AUC(num_thresholds=7, curve="PR").get_config()


def test_compiled_by_name_in_fit_logs_match_keras_metrics_on_the_same_predictions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = (x[:, :1] + 0.5 * rng.standard_normal((40, 1)) > 0).astype(np.float32)
    lstmlab.set_random_seed(0)
    model = lstmlab.Sequential([lstmlab.layers.Dense(1, activation="sigmoid", input_shape=(5,))])
    model.compile("adam", "binary_crossentropy", metrics=["auc", "precision", "recall", M.AUC(curve="PR", name="pr")])
    logs = model.evaluate(x, y, batch_size=16, return_dict=True)
    p = model.predict(x, verbose=0)
    for key, kmetric in (("auc", keras.metrics.AUC()), ("precision", keras.metrics.Precision()),
                         ("recall", keras.metrics.Recall()), ("pr", keras.metrics.AUC(curve="PR"))):
        kmetric.update_state(y, p)
        assert logs[key] == pytest.approx(float(kmetric.result()), rel=1e-6, abs=1e-6), key
    # An instance is reset between uses, as Keras resets metrics: evaluating twice gives the same numbers.
    assert model.evaluate(x, y, batch_size=16, return_dict=True) == pytest.approx(logs)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^num_thresholds: expected an integer > 1, got 1$"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match=r"^curve: expected 'ROC', 'PR' or 'PRGAIN', got 'XY'$"):
        M.AUC(curve="XY")
    with pytest.raises(ValueError, match=r"^summation_method: expected 'interpolation', 'minoring' or 'majoring'"):
        M.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError, match=r"^thresholds: expected numbers in \[0, 1\], got \[0.5, 1.5\]$"):
        M.Precision(thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match=r"^top_k: expected a positive integer or None, got 0$"):
        M.Recall(top_k=0)
    with pytest.raises(ValueError, match=r"^k: expected a positive integer, got 0$"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match=r"^class_id: expected a class in \[0, 2\), got 3$"):
        M.Precision(class_id=3).update(np.zeros((2, 2)), np.zeros((2, 2)))
