"""The baseline every sequence model must beat: bag-of-n-grams tf-idf + L2-regularised logistic regression.

On small data it often wins, because it needs far fewer examples to learn "this word means positive".

Features (scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``): the n-grams (n = 1, 2) of the same tokens
the recurrent model reads, kept when they occur in at least two training texts, at most ``max_features`` by
document frequency. For text ``i`` and n-gram ``j`` with count ``tf_ij`` and document frequency ``df_j`` among
``n`` training texts::

    x_ij = (1 + ln tf_ij) * idf_j,     idf_j = ln((1 + n) / (1 + df_j)) + 1,     then each row scaled to norm 1

Model and objective (multinomial logistic regression, weights ``W`` (F, C), bias ``b`` (C,) not penalised)::

    z_i = x_i W + b,   p_i = softmax(z_i)
    J(W, b) = (1/n) sum_i -log p_i[y_i] + (lam/2) ||W||^2
    dJ/dW = X^T (P - Y) / n + lam W,   dJ/db = sum_i (p_i - y_i) / n        (Y: one-hot labels)

Solved by accelerated gradient descent (FISTA momentum with O'Donoghue & Candes's gradient restart) with the
fixed step 1/L. ``L = (1/2)(sum_i |x_i|^2 + n)/n + lam`` is a guaranteed bound on the gradient's Lipschitz
constant (the softmax's Hessian is at most 1/2, and the largest eigenvalue of [X 1]^T [X 1] is at most its
trace), so the descent needs no line search and is a deterministic function of the data.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .tokens import split_tokens


@dataclass
class Sparse:
    """A CSR matrix: row ``i`` has values ``data[indptr[i]:indptr[i+1]]`` at columns ``indices[...]``."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple

    @classmethod
    def from_rows(cls, rows, n_cols: int) -> "Sparse":
        """From a list of ``(columns, values)`` pairs, one per row."""
        indptr = np.zeros(len(rows) + 1, np.int64)
        indptr[1:] = np.cumsum([len(c) for c, _ in rows])
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        return cls(indptr, cat([np.asarray(c) for c, _ in rows], np.int64),
                   cat([np.asarray(v, np.float64) for _, v in rows], np.float64), (len(rows), n_cols))

    @property
    def _row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))  # (nnz,)

    def matmul(self, w: np.ndarray) -> np.ndarray:
        """``X @ w``: (n, F) x (F, C) -> (n, C)."""
        rows = self._row_ids
        return np.stack([np.bincount(rows, self.data * w[self.indices, c], minlength=self.shape[0])
                         for c in range(w.shape[1])], axis=1)  # (n, C)

    def rmatmul(self, g: np.ndarray) -> np.ndarray:
        """``X.T @ g``: (F, n) x (n, C) -> (F, C)."""
        rows = self._row_ids
        return np.stack([np.bincount(self.indices, self.data * g[rows, c], minlength=self.shape[1])
                         for c in range(g.shape[1])], axis=1)  # (F, C)

    def squared_norm(self) -> float:
        return float(np.sum(self.data ** 2))


def ngrams(tokens: list, n_max: int = 2) -> list:
    """Unigrams and bigrams (joined with a space) of a token list."""
    out = list(tokens)
    for n in range(2, n_max + 1):
        out += [" ".join(tokens[k:k + n]) for k in range(len(tokens) - n + 1)]
    return out


class BagOfNgrams:
    """The tf-idf features above; fitted on the training texts only."""

    def __init__(self, level: str, max_features: int = 20000, min_df: int = 2, n_max: int = 2):
        self.level, self.max_features, self.min_df, self.n_max = level, max_features, min_df, n_max

    def fit(self, texts) -> "BagOfNgrams":
        df = Counter()
        for t in texts:
            df.update(set(ngrams(split_tokens(t, self.level), self.n_max)))
        # most frequent first; ties by the n-gram itself, so the columns are a function of the data alone
        kept = sorted((g for g, d in df.items() if d >= self.min_df), key=lambda g: (-df[g], g))
        kept = kept[: self.max_features]
        self.columns = {g: j for j, g in enumerate(kept)}
        n = len(texts)
        self.idf = np.array([np.log((1 + n) / (1 + df[g])) + 1.0 for g in kept])  # (F,)
        return self

    def transform(self, texts) -> Sparse:
        rows = []
        for t in texts:
            counts = Counter(g for g in ngrams(split_tokens(t, self.level), self.n_max) if g in self.columns)
            cols = np.array(sorted(self.columns[g] for g in counts), np.int64)
            tf = np.array([counts[g] for g in sorted(counts, key=self.columns.get)], np.float64)
            v = (1.0 + np.log(tf)) * self.idf[cols] if len(cols) else np.zeros(0)
            norm = np.sqrt(np.sum(v ** 2))
            rows.append((cols, v / norm if norm > 0 else v))
        return Sparse.from_rows(rows, len(self.columns))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))  # (n, C), shifted: exp never overflows
    return e / e.sum(axis=1, keepdims=True)


def objective(x: Sparse, y: np.ndarray, w: np.ndarray, b: np.ndarray, lam: float) -> tuple:
    """``(J, dJ/dW, dJ/db)`` of the objective above."""
    n = x.shape[0]
    z = x.matmul(w) + b  # (n, C)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (n, C), log-softmax
    loss = -logp[np.arange(n), y].mean() + 0.5 * lam * np.sum(w ** 2)
    g = np.exp(logp)
    g[np.arange(n), y] -= 1.0  # P - Y, (n, C)
    return float(loss), x.rmatmul(g) / n + lam * w, g.sum(axis=0) / n


def fit_logistic(x: Sparse, y: np.ndarray, n_classes: int, lam: float, iterations: int = 400,
                 tol: float = 1e-7) -> tuple:
    """``(W, b)`` minimising ``J``; stops early when the gradient's norm falls below ``tol``."""
    n, f = x.shape
    L = 0.5 * (x.squared_norm() + n) / n + lam  # the bound on the Lipschitz constant (module docstring)
    w, b = np.zeros((f, n_classes)), np.zeros(n_classes)
    vw, vb, t = w.copy(), b.copy(), 1.0  # the extrapolated point
    for _ in range(iterations):
        _, gw, gb = objective(x, y, vw, vb, lam)
        if np.sqrt(np.sum(gw ** 2) + np.sum(gb ** 2)) < tol:
            w, b = vw, vb
            break
        w_new, b_new = vw - gw / L, vb - gb / L
        if np.sum(gw * (w_new - w)) + np.sum(gb * (b_new - b)) > 0:
            t = 1.0  # restart: the momentum points uphill
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        vw, vb = w_new + beta * (w_new - w), b_new + beta * (b_new - b)
        w, b, t = w_new, b_new, t_new
    return w, b


def predict_proba(x: Sparse, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _softmax(x.matmul(w) + b)  # (n, C)


LAMBDAS = (1e-4, 1e-3, 1e-2)


def train_baseline(level: str, texts_train, y_train, texts_val, y_val, n_classes: int, choose):
    """Fit the features on the training texts and one model per L2 strength in :data:`LAMBDAS`; keep the one
    ``choose(y_val, val_probabilities)`` scores highest (ties: the stronger penalty). Returns
    ``(features, W, b, lam)``."""
    feats = BagOfNgrams(level).fit(texts_train)
    xt, xv = feats.transform(texts_train), feats.transform(texts_val)
    best = None
    for lam in sorted(LAMBDAS, reverse=True):
        w, b = fit_logistic(xt, y_train, n_classes, lam)
        score = choose(y_val, predict_proba(xv, w, b))
        if best is None or score > best[0]:
            best = (score, w, b, lam)
    return feats, best[1], best[2], best[3]
