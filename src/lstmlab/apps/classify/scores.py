"""Scores of a classifier on labeled examples: the confusion matrix and, from it, accuracy and each class's
precision, recall and F1.

With ``M[i, j]`` the number of examples of true class ``i`` predicted as ``j`` (rows: truth, columns:
prediction, as scikit-learn prints it)::

    precision_c = M[c, c] / sum_i M[i, c]        (of the texts called c, the share that are c)
    recall_c    = M[c, c] / sum_j M[c, j]        (of the texts that are c, the share called c)
    F1_c        = 2 precision_c recall_c / (precision_c + recall_c)
    accuracy    = trace(M) / sum(M)

A ratio whose denominator is 0 (a class never predicted) is 0, as scikit-learn's ``zero_division=0``.
Macro averages weigh every class the same, so a majority class cannot hide a minority class's failure.
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def scores(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, per-class precision / recall / F1 / support, their macro averages and the confusion matrix."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(np.float64)  # (C,)
    precision = _ratio(tp, m.sum(axis=0))
    recall = _ratio(tp, m.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"accuracy": float(tp.sum() / max(m.sum(), 1)), "precision": precision.tolist(),
            "recall": recall.tolist(), "f1": f1.tolist(), "support": m.sum(axis=1).tolist(),
            "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()), "confusion": m.tolist()}


def format_scores(s: dict, labels: list) -> str:
    """A plain-text table of the per-class scores, then the confusion matrix."""
    width = max(12, *(len(lb) + 2 for lb in labels))
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for k, lb in enumerate(labels):
        lines.append(f"{lb:<{width}}{s['precision'][k]:>10.4f}{s['recall'][k]:>10.4f}{s['f1'][k]:>10.4f}"
                     f"{s['support'][k]:>10d}")
    lines.append(f"{'macro avg':<{width}}{s['macro_precision']:>10.4f}{s['macro_recall']:>10.4f}"
                 f"{s['macro_f1']:>10.4f}{sum(s['support']):>10d}")
    lines.append(f"accuracy {s['accuracy']:.4f}")
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    cell = max(8, *(len(lb) + 2 for lb in labels), *(len(str(v)) + 2 for row in s["confusion"] for v in row))
    lines.append(" " * width + "".join(f"{lb:>{cell}}" for lb in labels))
    for lb, row in zip(labels, s["confusion"]):
        lines.append(f"{lb:<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines)
