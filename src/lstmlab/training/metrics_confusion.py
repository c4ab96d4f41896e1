"""Metrics from confusion counts at thresholds: Precision, Recall and AUC, as Keras 3 computes them.

A prediction ``p`` is positive at threshold ``th`` when ``p > th``; a target is positive when it is
non-zero. Each update adds the (weighted) counts ``TP, FP, TN, FN`` at every threshold; ``result``
reads them::

    precision = TP / (TP + FP)         recall = TP / (TP + FN)          (0 where the denominator is 0)
    AUC (ROC) = sum_i (FPR_i - FPR_{i+1}) * (TPR_i + TPR_{i+1}) / 2     (trapezoids; "minoring" / "majoring"
                                                                          take the min / max of the two heights)
    AUC (PR, interpolation)  Davis & Goadrich: precision interpolated along TP between thresholds,
              sum_i slope_i * (dTP_i + intercept_i * log(P_i / P_{i+1})) / (TP_{i+1} + FN_{i+1})

Evenly spaced thresholds (AUC's default: ``i / (num_thresholds - 1)`` with the end points moved out by
1e-7) are counted as Keras counts them: each prediction falls in the bucket
``ceil(p * (num_thresholds - 1)) - 1`` (in float32) and a reversed cumulative sum gives the counts at
every threshold in O(N + T) instead of O(N T).
"""
from __future__ import annotations

import numpy as np

from . import losses as L
from .metrics import METRICS, Metric

EPSILON = 1e-7  # Keras's backend.epsilon(): AUC's end thresholds sit just outside [0, 1]
NEG_INF = -1e10  # what top_k filtering gives the predictions outside the top k (Keras's value)


def _evenly_spaced(thresholds) -> bool:
    n = len(thresholds)
    return n >= 3 and np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=EPSILON)


def _divide_no_nan(a, b):
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _thresholds_list(thresholds, default):
    """The thresholds a user gave (a number or a list, each in [0, 1]), or ``[default]``."""
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    for t in values:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0 <= t <= 1:
            raise ValueError(f"thresholds: expected numbers in [0, 1], got {thresholds!r}")
    return [float(t) for t in values]


def confusion_counts(positive, p, w, thresholds, evenly: bool):
    """Weighted ``(TP, FP, TN, FN)`` at each threshold, each of shape ``(T, L)``.

    Parameters
    ----------
    positive : (N, L) bool
        Targets that are positive.
    p : (N, L) float32
        Predictions.
    w : (N, L) float
        Weights (masks, label weights).
    thresholds : (T,) float
    evenly : bool
        The thresholds are evenly spaced: count by buckets, exactly as Keras's optimized path does.
    """
    T = len(thresholds)
    true_w, false_w = positive * w, (~positive) * w  # (N, L)
    if evenly:
        p = np.clip(p, 0.0, 1.0).astype(np.float32)
        buckets = np.ceil(p * np.float32(T - 1)) - 1  # (N, L): positive at thresholds 0..bucket
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            buckets = np.maximum(buckets, 0)  # p = 0 is above the first threshold, -1e-7
        buckets = buckets.astype(np.int64)
        tp, fp = np.zeros((T, p.shape[1])), np.zeros((T, p.shape[1]))
        for k in range(p.shape[1]):
            keep = buckets[:, k] >= 0
            tp[:, k] = np.bincount(buckets[keep, k], true_w[keep, k], minlength=T)
            fp[:, k] = np.bincount(buckets[keep, k], false_w[keep, k], minlength=T)
        tp, fp = np.cumsum(tp[::-1], axis=0)[::-1], np.cumsum(fp[::-1], axis=0)[::-1]  # (T, L)
    else:
        th = np.asarray(thresholds, np.float32)[:, None, None]  # (T, 1, 1)
        above = p[None] > th  # (T, N, L)
        tp, fp = (above * true_w[None]).sum(1), (above * false_w[None]).sum(1)  # (T, L)
    return tp, fp, false_w.sum(0) - fp, true_w.sum(0) - tp


class _Confusion(Metric):
    """Shared input handling: targets and predictions to ``(N, L)``, masks to weights, top_k / class_id."""

    top_k = class_id = None
    multi_label = False

    def _inputs(self, y, y_pred, mask):
        p = np.asarray(y_pred, dtype=np.float32)
        y = L._dense_targets(y, p).astype(np.float32)
        w = np.ones(p.shape) if mask is None else np.broadcast_to(
            np.asarray(mask, float).reshape(p.shape[:-1] + (1,)), p.shape)
        if self.top_k is not None:  # everything outside the top k becomes a confident negative
            order = np.argsort(-p, axis=-1, kind="stable")[..., : self.top_k]
            keep = np.zeros(p.shape, bool)
            np.put_along_axis(keep, order, True, axis=-1)
            p = np.where(keep, p, np.float32(NEG_INF))
        if self.class_id is not None:
            if not 0 <= self.class_id < p.shape[-1]:
                raise ValueError(f"class_id: expected a class in [0, {p.shape[-1]}), got {self.class_id}")
            p, y, w = p[..., self.class_id], y[..., self.class_id], w[..., self.class_id]
        L_ = p.shape[-1] if self.multi_label else 1
        return y.reshape(-1, L_) != 0, p.reshape(-1, L_), w.reshape(-1, L_)  # (N, L) each


class _PrecisionRecall(_Confusion):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k: expected a positive integer or None, got {top_k!r}")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0):
            raise ValueError(f"class_id: expected a class index >= 0 or None, got {class_id!r}")
        self.thresholds = _thresholds_list(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = _evenly_spaced(self.thresholds)
        self.name = name or self.name
        super().__init__()

    def reset(self):
        T = len(self.thresholds)
        self.tp, self.fp, self.fn = np.zeros(T), np.zeros(T), np.zeros(T)

    def update(self, y, y_pred, mask=None):
        tp, fp, _, fn = confusion_counts(*self._inputs(y, y_pred, mask), self.thresholds, self._evenly)
        self.tp += tp[:, 0]
        self.fp += fp[:, 0]
        self.fn += fn[:, 0]

    def _result(self, other):
        r = _divide_no_nan(self.tp, self.tp + other)
        return float(r[0]) if len(self.thresholds) == 1 else r

    def get_config(self):
        return {"thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id,
                "name": self.name}


@METRICS.register("precision")
class Precision(_PrecisionRecall):
    """``TP / (TP + FP)`` at ``thresholds`` (0.5, or "in the top k" with ``top_k``), optionally of one class."""

    name = "precision"

    def result(self):
        return self._result(self.fp)


@METRICS.register("recall")
class Recall(_PrecisionRecall):
    """``TP / (TP + FN)`` at ``thresholds`` (0.5, or "in the top k" with ``top_k``), optionally of one class."""

    name = "recall"

    def result(self):
        return self._result(self.fn)


@METRICS.register("auc")
class AUC(_Confusion):
    """Area under the ROC or precision-recall curve, approximated on ``num_thresholds`` thresholds (Keras's AUC).

    ``from_logits=True`` applies a sigmoid first. ``multi_label=True`` keeps one curve per output column and
    averages the areas (weighted by ``label_weights`` when given); otherwise every column is one more sample.
    """

    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        curve_name = str(curve).upper()
        if curve_name not in ("ROC", "PR", "PRGAIN"):
            raise ValueError(f"curve: expected 'ROC', 'PR' or 'PRGAIN', got {curve!r}")
        method = str(summation_method).lower()
        if method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"summation_method: expected 'interpolation', 'minoring' or 'majoring', "
                             f"got {summation_method!r}")
        if thresholds is not None:
            inner = sorted(_thresholds_list(thresholds, None))
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_spaced([0.0] + inner + [1.0])
            self._init_from_thresholds = True
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) or num_thresholds <= 1:
                raise ValueError(f"num_thresholds: expected an integer > 1, got {num_thresholds!r}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly, self._init_from_thresholds = True, False
        if num_labels is not None and not multi_label:
            raise ValueError(f"num_labels: needed only when multi_label is True, got {num_labels!r}")
        self.thresholds = [0.0 - EPSILON] + inner + [1.0 + EPSILON]
        self.curve, self.summation_method = curve_name, method
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, float)
        self.from_logits = bool(from_logits)
        self.name = name or self.name
        super().__init__()

    def reset(self):
        self.tp = self.fp = self.tn = self.fn = None  # (T, L), sized by the first update

    def update(self, y, y_pred, mask=None):
        p = np.asarray(y_pred, dtype=np.float32)
        if self.from_logits:
            p = (1.0 / (1.0 + np.exp(-p.astype(np.float64)))).astype(np.float32)
        positive, pr, w = self._inputs(y, p, mask)
        if self.label_weights is not None and not self.multi_label:  # one weight per output column
            w = w * np.broadcast_to(self.label_weights, p.shape).reshape(w.shape)
        counts = confusion_counts(positive, pr, w, self.thresholds, self._evenly)
        if self.tp is None:
            self.tp, self.fp, self.tn, self.fn = (np.zeros_like(c) for c in counts)
        for total, c in zip((self.tp, self.fp, self.tn, self.fn), counts):
            total += c

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.tp, self.fp, self.fn
        dtp = tp[:-1] - tp[1:]
        p = tp + fp  # predicted positives at each threshold
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)  # log(1) = 0 where P is 0
        return _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                              np.maximum(tp[1:] + fn[1:], 0))  # (T-1, L)

    def _riemann_terms(self):
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN (Flach & Kull): gains relative to the always-positive classifier
            scale = _divide_no_nan(tp + fn, tn + fp)
            x = np.maximum(np.where(tp == 0, 0.0, 1.0 - scale * _divide_no_nan(fn, tp)), 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return (x[:-1] - x[1:]) * heights  # (T-1, L)

    def result(self) -> float:
        if self.tp is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr_auc()
        else:
            terms = self._riemann_terms()
        by_label = terms.sum(0)  # (L,)
        if not self.multi_label:
            return float(by_label[0])
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_divide_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum()))

    def get_config(self):
        config = {"num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "name": self.name, "multi_label": self.multi_label,
                  "num_labels": self.num_labels, "from_logits": self.from_logits,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist()}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
