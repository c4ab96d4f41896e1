"""Finding readable units: pattern correlation, top activating contexts, gate saturation.

The page runs the same computations in JavaScript (page.js) on the decoded arrays, so a user can type a
pattern; these Python versions are what tests (and scripts) check the page against.

* **Pattern correlation.** A regular expression over the text gives a signal per step: 1 on the characters
  a match covers (or, when the expression has a group, the characters its first group covers), 0 elsewhere;
  or, with ``"line-position"``, the character's position in its line. Units are ranked by ``|r|``, the
  Pearson correlation between the signal and the unit's c (or h) over the text.
  Karpathy et al. (2015) found cells that track quotes and line length this way.
* **Top contexts.** The steps where a unit is highest (and lowest), at least a window apart.
* **Gate saturation.** For a gate, the fraction of steps a unit is below 0.1 (left-saturated) and above 0.9
  (right-saturated): Karpathy et al.'s scatter, one dot per unit.
* **Most active here.** For a span of steps, units ranked by how far their mean over the span lies above
  their mean over the text, in standard deviations.
"""
from __future__ import annotations

import re

import numpy as np

LEFT, RIGHT = 0.1, 0.9  # Karpathy et al. (2015)'s saturation thresholds
LINE_POSITION = "line-position"


def pattern_signal(text: str, pattern: str, mode: str = "match") -> np.ndarray:
    """(T,) float64: 1 where a match of ``pattern`` (its first group, if it has one) covers the character, else 0;
    or, with
    ``mode="line-position"``, the character's position in its line (0 right after a newline)."""
    T = len(text)
    if mode == LINE_POSITION:
        pos = np.arange(T)
        starts = np.zeros(T, np.int64)
        nl = np.array([k for k, ch in enumerate(text) if ch == "\n"], np.int64)
        starts[nl[nl + 1 < T] + 1] = nl[nl + 1 < T] + 1  # a line starts after each newline
        return (pos - np.maximum.accumulate(starts)).astype(np.float64)  # (T,)
    if mode != "match":
        raise ValueError(f"mode: expected 'match' or {LINE_POSITION!r}, got {mode!r}")
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern: {pattern!r} is not a regular expression ({exc})") from None
    signal = np.zeros(T)
    group = 1 if rx.groups else 0  # with a group, its span is the signal: '("[^"]*)"' consumes the closing quote
    for m in rx.finditer(text):
        if m.start(group) >= 0:  # a group that did not take part marks nothing
            signal[m.start(group):m.end(group)] = 1.0  # zero-length matches mark nothing
    return signal


def correlations(signal, values) -> np.ndarray:
    """Pearson r (H,) between ``signal`` (T,) and each column of ``values`` (T, H); 0 where one is constant."""
    s = np.asarray(signal, np.float64) - np.mean(signal)  # (T,)
    v = np.asarray(values, np.float64)
    v = v - v.mean(axis=0)  # (T, H)
    den = np.sqrt((s @ s) * np.einsum("th,th->h", v, v))  # (H,)
    num = s @ v  # (H,)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def rank_units(signal, values, k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` units with the largest |r|, as ``(unit, r)``; ties go to the lower unit number."""
    r = correlations(signal, values)
    order = np.lexsort((np.arange(len(r)), -np.abs(r)))[:k]
    return [(int(u), float(r[u])) for u in order]


def top_contexts(values, k: int = 5, spacing: int = 20) -> tuple[list[int], list[int]]:
    """Steps of the ``k`` highest and ``k`` lowest values of one unit (T,), each at least ``spacing`` steps
    from the ones already picked, so the windows shown around them do not repeat one passage."""
    v = np.asarray(values, np.float64)

    def pick(order):
        chosen = []
        for t in order:
            if all(abs(int(t) - c) >= spacing for c in chosen):
                chosen.append(int(t))
                if len(chosen) == k:
                    break
        return chosen

    steps = np.arange(len(v))
    return pick(np.lexsort((steps, -v))), pick(np.lexsort((steps, v)))


def saturation(gate) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of steps (H,) each unit of ``gate`` (T, H) is left- (< 0.1) and right-saturated (> 0.9)."""
    g = np.asarray(gate)
    return (g < LEFT).mean(axis=0), (g > RIGHT).mean(axis=0)


def most_active(values, start: int, end: int, k: int = 10) -> list[tuple[int, float]]:
    """Units (and their score) whose mean over steps [start, end) lies furthest above their mean over all
    steps, in standard deviations of the unit over the text."""
    v = np.asarray(values, np.float64)  # (T, H)
    if not 0 <= start < end <= len(v):
        raise ValueError(f"span: expected 0 <= start < end <= {len(v)}, got [{start}, {end})")
    sd = v.std(axis=0)  # (H,)
    z = np.divide(v[start:end].mean(axis=0) - v.mean(axis=0), sd, out=np.zeros(v.shape[1]), where=sd > 0)
    order = np.lexsort((np.arange(len(z)), -z))[:k]
    return [(int(u), float(z[u])) for u in order]
