"""The numbers of ``lstmlab classify``: scores against hand-computed values, the tf-idf features by hand, the
logistic-regression baseline against closed-form optima and finite differences, the split and the tokens."""
import math

import numpy as np
import pytest

from lstmlab.apps.classify.baseline import BagOfNgrams, Sparse, fit_logistic, ngrams, objective, predict_proba
from lstmlab.apps.classify.report import verdict
from lstmlab.apps.classify.scores import confusion_matrix, format_scores, scores
from lstmlab.apps.classify.split import label_ids, stratified_sample, stratified_split
from lstmlab.apps.classify.tokens import OOV, PAD, Tokenizer, split_tokens


# -- scores ----------------------------------------------------------------------------------------------------
def test_scores_match_hand_computed_values():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 0, 1, 2, 2, 2, 0, 1]
    # rows = truth: class 0 -> (2, 1, 0); class 1 -> (0, 1, 1); class 2 -> (1, 1, 2)
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[2, 1, 0], [0, 1, 1], [1, 1, 2]]
    s = scores(y_true, y_pred, 3)
    # precision = diagonal / column sums (3, 3, 3); recall = diagonal / row sums (3, 2, 4)
    assert s["precision"] == pytest.approx([2 / 3, 1 / 3, 2 / 3], abs=1e-12)
    assert s["recall"] == pytest.approx([2 / 3, 1 / 2, 1 / 2], abs=1e-12)
    f1 = [2 / 3, 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), 2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2)]
    assert f1 == pytest.approx([2 / 3, 2 / 5, 4 / 7])
    assert s["f1"] == pytest.approx(f1, abs=1e-12)
    assert s["accuracy"] == pytest.approx(5 / 9, abs=1e-12)
    assert s["macro_f1"] == pytest.approx(sum(f1) / 3, abs=1e-12)
    assert s["support"] == [3, 2, 4]


def test_a_class_never_predicted_scores_zero_not_nan():
    s = scores([0, 0, 1, 1], [0, 0, 0, 0], 2)
    assert s["precision"] == [0.5, 0.0] and s["recall"] == [1.0, 0.0]
    assert s["f1"] == pytest.approx([2 / 3, 0.0])
    assert s["confusion"] == [[2, 0], [2, 0]]
    text = format_scores(s, ["neg", "pos"])
    assert "accuracy 0.5000" in text and "rows: true class" in text
    assert text.splitlines()[-1].split() == ["pos", "2", "0"]


def test_verdict_names_the_winner_plainly():
    base = {"macro_f1": 0.83, "accuracy": 0.84}
    assert verdict({"macro_f1": 0.71, "accuracy": 0.72}, base).startswith("The bag-of-words baseline wins")
    assert verdict({"macro_f1": 0.90, "accuracy": 0.91}, base).startswith("The recurrent model wins")
    assert "tie" in verdict(dict(base), base)


# -- features ----------------------------------------------------------------------------------------------------
def test_ngrams_and_tokens():
    assert ngrams(["x", "y", "z"]) == ["x", "y", "z", "x y", "y z"]
    assert split_tokens("Great film, isn't it?", "word") == ["great", "film", ",", "isn", "'", "t", "it", "?"]
    assert split_tokens("好书!", "char") == ["好", "书", "!"]


def test_tfidf_features_by_hand():
    docs = ["a a b", "b c", "a"]
    f = BagOfNgrams("word", min_df=1, n_max=1).fit(docs)
    assert f.columns == {"a": 0, "b": 1, "c": 2}  # by document frequency (2, 2, 1), ties alphabetical
    idf_ab, idf_c = math.log(4 / 3) + 1, math.log(4 / 2) + 1  # ln((1 + n) / (1 + df)) + 1 with n = 3
    assert f.idf == pytest.approx([idf_ab, idf_ab, idf_c])
    x = f.transform(docs + ["z"])  # "z" was never seen: an empty row
    dense = np.zeros(x.shape)
    for i in range(x.shape[0]):
        sl = slice(x.indptr[i], x.indptr[i + 1])
        dense[i, x.indices[sl]] = x.data[sl]
    row0 = np.array([(1 + math.log(2)) * idf_ab, idf_ab, 0.0])  # tf of "a" is 2: sublinear 1 + ln 2
    row1 = np.array([0.0, idf_ab, idf_c])
    expected = np.array([row0 / np.linalg.norm(row0), row1 / np.linalg.norm(row1), [1.0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(dense, expected, rtol=1e-12)
    rng = np.random.default_rng(0)
    w, g = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    np.testing.assert_allclose(x.matmul(w), dense @ w, rtol=1e-12)
    np.testing.assert_allclose(x.rmatmul(g), dense.T @ g, rtol=1e-12)


def test_bigrams_need_two_documents():
    f = BagOfNgrams("word").fit(["good film", "good film indeed", "bad film"])
    assert set(f.columns) == {"film", "good", "good film"}  # min_df = 2 drops the rest


# -- logistic regression -------------------------------------------------------------------------------------------
def one_feature(values):
    return Sparse.from_rows([(np.array([0]), np.array([v], float)) for v in values], 1)


def test_logistic_regression_matches_the_closed_form_optimum():
    """x = +1: three of class 1, one of class 0; x = -1: the mirror image. By symmetry b = 0 and W = (-d/2, d/2),
    P(1 | x) = sigmoid(d x), and J(d) = (6 softplus(-d) + 2 softplus(d)) / 8 + lam d^2 / 4, whose stationary
    point solves sigmoid(d) = 3/4 - lam d / 2 (lam = 0 gives d = ln 3)."""
    x = one_feature([1, 1, 1, 1, -1, -1, -1, -1])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    for lam in (1e-9, 0.1, 1.0):
        lo, hi = 0.0, 5.0  # sigmoid(d) - 3/4 + lam d / 2 is increasing in d: bisection
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if 1 / (1 + math.exp(-mid)) - 0.75 + lam * mid / 2 < 0 else (lo, mid)
        d = 0.5 * (lo + hi)
        w, b = fit_logistic(x, y, 2, lam, iterations=5000, tol=1e-10)
        assert w[0, 1] - w[0, 0] == pytest.approx(d, abs=1e-6), lam
        assert w[0, 0] == pytest.approx(-w[0, 1], abs=1e-9) and b == pytest.approx([0, 0], abs=1e-9)
    assert d < math.log(3)  # the penalty shrinks it


def test_a_constant_feature_learns_the_class_frequencies():
    """With one constant feature the penalised weight goes to 0 and the free bias alone fits:
    softmax(b) equals the class frequencies (5, 3, 2) / 10."""
    x = one_feature([1.0] * 10)
    y = np.array([0] * 5 + [1] * 3 + [2] * 2)
    w, b = fit_logistic(x, y, 3, 0.1, iterations=5000, tol=1e-11)
    np.testing.assert_allclose(w, 0.0, atol=1e-8)
    np.testing.assert_allclose(predict_proba(x, w, b)[0], [0.5, 0.3, 0.2], atol=1e-8)


def test_objective_gradient_against_finite_differences():
    rng = np.random.default_rng(1)
    rows = [(np.sort(rng.choice(6, 3, replace=False)), rng.normal(size=3)) for _ in range(9)]
    x, y = Sparse.from_rows(rows, 6), rng.integers(0, 3, 9)
    w, b, lam = rng.normal(size=(6, 3)), rng.normal(size=3), 0.3
    _, gw, gb = objective(x, y, w, b, lam)
    eps = 1e-6
    for k in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[k] += eps
        wm[k] -= eps
        assert gw[k] == pytest.approx((objective(x, y, wp, b, lam)[0] - objective(x, y, wm, b, lam)[0]) / (2 * eps),
                                      abs=1e-8)
    for k in range(3):
        bp, bm = b.copy(), b.copy()
        bp[k] += eps
        bm[k] -= eps
        assert gb[k] == pytest.approx((objective(x, y, w, bp, lam)[0] - objective(x, y, w, bm, lam)[0]) / (2 * eps),
                                      abs=1e-8)


def test_fit_reaches_a_stationary_point_and_is_deterministic():
    texts = ["good fun film", "good cast", "bad boring film", "bad plot", "fun good plot", "boring bad cast"] * 3
    y = np.array([1, 1, 0, 0, 1, 0] * 3)
    f = BagOfNgrams("word").fit(texts)
    x = f.transform(texts)
    w, b = fit_logistic(x, y, 2, 1e-2, iterations=3000, tol=1e-9)
    _, gw, gb = objective(x, y, w, b, 1e-2)
    assert np.sqrt(np.sum(gw ** 2) + np.sum(gb ** 2)) < 1e-8
    assert (predict_proba(x, w, b).argmax(axis=1) == y).all()
    w2, b2 = fit_logistic(x, y, 2, 1e-2, iterations=3000, tol=1e-9)
    assert np.array_equal(w, w2) and np.array_equal(b, b2)


# -- split and tokens ---------------------------------------------------------------------------------------------
def test_stratified_split_keeps_proportions_and_is_seeded():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    tr, va, te = stratified_split(y, 3, 0.2, 0.1, seed=4)
    assert len(set(tr) | set(va) | set(te)) == 100 and not set(tr) & set(te) and not set(va) & set(te)
    assert np.bincount(y[te]).tolist() == [10, 6, 4] and np.bincount(y[va]).tolist() == [5, 3, 2]
    again = stratified_split(y, 3, 0.2, 0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(te, stratified_split(y, 3, 0.2, 0.1, seed=5)[2])
    tiny = stratified_split(np.array([0, 0, 0, 1, 1, 1]), 2, 0.2, 0.1, seed=0)
    assert [len(p) for p in tiny] == [2, 2, 2]  # every class keeps one example in each part
    sample = stratified_sample(y, 3, 10, seed=0)
    assert np.bincount(y[sample]).tolist() == [5, 3, 3]  # shares kept, at least 3 per class


def test_label_ids_refuse_one_class_and_tiny_classes():
    names, y = label_ids(["pos", "neg", "pos", "neg", "pos", "neg"])
    assert names == ["neg", "pos"] and y.tolist() == [1, 0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match=r"--label: the data hold a single class \('pos'\)"):
        label_ids(["pos"] * 5)
    with pytest.raises(ValueError, match=r"--label: class 'odd' \(1\) has too few examples; expected at least 3"):
        label_ids(["a", "a", "a", "b", "b", "b", "odd"])


def test_tokenizer_pads_masks_and_marks_unknown_tokens():
    tok = Tokenizer.fit(["the film", "the end", "a film"], "word", vocab_size=4, maxlen=3)
    assert tok.tokens == ["the", "film"]  # vocab_size 4 = padding + OOV + the two most frequent
    x = tok.encode(["the film", "the unseen words here", ""])
    assert x.dtype == np.int32 and x.shape == (3, 3)
    assert x.tolist() == [[2, 3, PAD], [2, OOV, OOV], [PAD, PAD, PAD]]  # padded at the end, cut at the end
    assert Tokenizer.from_dict(tok.to_dict()).encode(["film the"]).tolist() == [[3, 2, 0]]
    auto = Tokenizer.fit(["ab", "abcd", "abcdef"], "char", vocab_size=100, maxlen=None)
    assert auto.maxlen == int(np.percentile([2, 4, 6], 95))
    with pytest.raises(ValueError, match="--tokens: expected char or word, got 'byte'"):
        Tokenizer("byte", [], 3)
