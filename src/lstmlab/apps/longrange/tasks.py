"""Long-range dependency tasks of Hochreiter & Schmidhuber (1997) and after, as seeded generators.

Every generator takes a ``numpy.random.Generator`` and returns float32
inputs ``(n, T, features)`` and targets; the same seed gives the same data.

* ``adding`` (1997, experiment 4). Pairs (value in U[-1, 1], marker). The
  length is an integer drawn from [T, T + T/10]. One of the first ten pairs
  is marked (value X1), then one of the first T/2 - 1 still unmarked pairs
  (X2); the first and last pairs carry marker -1 unless marked; if the very
  first pair is marked, X1 is set to 0. Target at the end:
  ``0.5 + (X1 + X2) / 4``; a sequence is right when the absolute error is
  below 0.04.
* ``adding-modern`` (the common variant since 2015). Values U[0, 1], one
  marker in the first half and one in the second, target X1 + X2, length T.
  Predicting the mean (1) always scores MSE 1/6 = 0.167.
* ``temporal-order`` (experiment 6a). Symbols a, b, c, d, B, E, X, Y one-hot.
  Length in [100, 110]; starts with E, ends with the trigger B; X or Y at t1
  in [10, 20] and t2 in [50, 60], random a-d elsewhere. Class at the end:
  XX -> 0 (Q), XY -> 1 (R), YX -> 2 (S), YY -> 3 (U).
* ``reber`` (experiment 1). Embedded Reber grammar strings; at every step
  the target is the set of symbols the grammar allows next (multi-label).
  The long-range part: the second-to-last symbol must repeat the second.
* ``copy`` (Arjovsky et al. 2016). Ten symbols from 8, T - 1 blanks, a
  delimiter, ten blanks; the output must be blank until the last ten steps,
  which repeat the ten symbols.

Lengths: the 1997 tasks draw the length per sequence; a training batch here
shares one drawn length, so batches need no padding (the test sets, drawn
per sequence, are evaluated grouped by length). Reber strings are padded
with zero rows and masked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# -- the adding problem -------------------------------------------------------------------------------------


def adding_1997_sequence(rng: np.random.Generator, length: int, T: int):
    """One sequence of the 1997 adding problem: ``(x (length, 2), target, (i1, i2))``."""
    values = rng.uniform(-1.0, 1.0, length)
    markers = np.zeros(length)
    i1 = int(rng.integers(0, 10))  # one of the first ten pairs
    candidates = [k for k in range(T // 2 - 1) if k != i1]  # the first T/2 - 1 still unmarked pairs
    i2 = int(candidates[rng.integers(0, len(candidates))])
    markers[0] = markers[-1] = -1.0
    markers[i1] = markers[i2] = 1.0
    if i1 == 0 or i2 == 0:  # the very first pair got marked: its value counts as 0
        values[0] = 0.0
    x1 = values[i1]
    x2 = values[i2]
    target = 0.5 + (x1 + x2) / 4.0
    return np.stack([values, markers], axis=1), target, (i1, i2)


def adding_1997(rng: np.random.Generator, n: int, T: int, length: int | None = None):
    """A batch of one shared length (drawn from [T, T + T/10] unless given): ``x (n, L, 2), y (n, 1)``."""
    if length is None:
        length = int(rng.integers(T, T + T // 10 + 1))
    xs, ys = zip(*[adding_1997_sequence(rng, length, T)[:2] for _ in range(n)])
    return np.stack(xs).astype(np.float32), np.array(ys, np.float32)[:, None]


def adding_modern(rng: np.random.Generator, n: int, T: int, length: int | None = None):
    """Values U[0, 1], one marker in each half, target X1 + X2: ``x (n, T, 2), y (n, 1)``."""
    values = rng.uniform(0.0, 1.0, (n, T))
    markers = np.zeros((n, T))
    half = T // 2
    i1 = rng.integers(0, half, n)
    i2 = rng.integers(half, T, n)
    rows = np.arange(n)
    markers[rows, i1] = markers[rows, i2] = 1.0
    y = values[rows, i1] + values[rows, i2]
    return np.stack([values, markers], axis=2).astype(np.float32), y.astype(np.float32)[:, None]


# -- the temporal order problem -----------------------------------------------------------------------------
TEMPORAL_SYMBOLS = "abcdBEXY"


def temporal_order_sequence(rng: np.random.Generator, length: int):
    """One sequence as symbol indices, its class and the two positions ``(t1, t2)``."""
    seq = rng.integers(0, 4, length)  # a, b, c, d
    seq[0], seq[-1] = TEMPORAL_SYMBOLS.index("E"), TEMPORAL_SYMBOLS.index("B")
    t1, t2 = int(rng.integers(10, 21)), int(rng.integers(50, 61))
    first, second = rng.integers(0, 2, 2)  # 0 = X, 1 = Y
    seq[t1] = TEMPORAL_SYMBOLS.index("XY"[first])
    seq[t2] = TEMPORAL_SYMBOLS.index("XY"[second])
    return seq, int(2 * first + second), (t1, t2)


def temporal_order(rng: np.random.Generator, n: int, T: int = 100, length: int | None = None):
    """A batch of one shared length in [100, 110]: ``x (n, L, 8)`` one-hot, ``y (n,)`` classes 0..3."""
    if length is None:
        length = int(rng.integers(100, 111))
    seqs, ys = zip(*[temporal_order_sequence(rng, length)[:2] for _ in range(n)])
    return np.eye(8, dtype=np.float32)[np.stack(seqs)], np.array(ys, np.int64)


# -- the embedded Reber grammar -----------------------------------------------------------------------------
REBER_SYMBOLS = "BTPSXVE"
# The inner Reber grammar: state -> [(symbol, next state)]; state 6 emits the final E.
_REBER = {0: [("T", 1), ("P", 2)], 1: [("S", 1), ("X", 3)], 2: [("T", 2), ("V", 4)],
          3: [("X", 2), ("S", 5)], 4: [("P", 3), ("V", 5)]}


def reber_string(rng: np.random.Generator) -> str:
    """A string of the (plain) Reber grammar: B ... E."""
    out, state = ["B"], 0
    while state != 5:
        symbol, state = _REBER[state][rng.integers(0, 2)]
        out.append(symbol)
    return "".join(out) + "E"


def embedded_reber_string(rng: np.random.Generator) -> str:
    """B, then T or P, a Reber string, the same T or P again, and E."""
    branch = "TP"[rng.integers(0, 2)]
    return "B" + branch + reber_string(rng) + branch + "E"


def _reber_accepts(s: str) -> bool:
    if len(s) < 2 or s[0] != "B" or s[-1] != "E":
        return False
    state = 0
    for c in s[1:-1]:
        nxt = dict(_REBER.get(state, []))
        if c not in nxt:
            return False
        state = nxt[c]
    return state == 5


def embedded_reber_accepts(s: str) -> bool:
    """True when ``s`` is a string of the embedded Reber grammar."""
    return (len(s) >= 4 and s[0] == "B" and s[-1] == "E" and s[1] in "TP" and s[-2] == s[1]
            and _reber_accepts(s[2:-2]))


def embedded_reber_next_sets(s: str) -> list[set]:
    """For each position k < len(s) - 1, the set of symbols the embedded grammar allows at k + 1."""
    inner = s[2:-2]  # the embedded plain Reber string, B ... E
    sets = [{"T", "P"}, {"B"}]  # after the outer B, after the branch symbol
    state = 0
    sets.append({sym for sym, _ in _REBER[state]})  # after the inner B
    for c in inner[1:-1]:
        state = dict(_REBER[state])[c]
        sets.append({sym for sym, _ in _REBER[state]} if state != 5 else {"E"})
    sets.append({s[1]})  # after the inner E the branch symbol must come back: the long-range dependency
    sets.append({"E"})
    return sets


def embedded_reber(rng: np.random.Generator, n: int, T: int = 0, length: int | None = None):
    """Padded batch: ``x (n, L, 7)`` one-hot of s[:-1], ``y (n, L, 7)`` allowed-next sets, ``mask (n, L)``."""
    strings = [embedded_reber_string(rng) for _ in range(n)]
    L = max(len(s) for s in strings) - 1
    x = np.zeros((n, L, 7), np.float32)
    y = np.zeros((n, L, 7), np.float32)
    mask = np.zeros((n, L), bool)
    for b, s in enumerate(strings):
        for k, allowed in enumerate(embedded_reber_next_sets(s)):
            x[b, k, REBER_SYMBOLS.index(s[k])] = 1.0
            y[b, k, [REBER_SYMBOLS.index(c) for c in allowed]] = 1.0
            mask[b, k] = True
    return x, y, mask, strings


# -- the copy-memory task -----------------------------------------------------------------------------------
def copy_memory(rng: np.random.Generator, n: int, T: int, length: int | None = None):
    """``x (n, T + 20, 10)`` one-hot, ``y (n, T + 20)`` class ids (8 = blank, 9 = delimiter)."""
    data = rng.integers(0, 8, (n, 10))
    seq = np.full((n, T + 20), 8)
    seq[:, :10] = data
    seq[:, T + 9] = 9  # the delimiter after T - 1 blanks
    target = np.full((n, T + 20), 8)
    target[:, -10:] = data
    return np.eye(10, dtype=np.float32)[seq], target.astype(np.int64)


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # "regression", "classification", "sequence", "multilabel"
    features: int
    outputs: int
    description: str


TASKS = {
    "adding": TaskInfo("adding", "regression", 2, 1, "1997 adding problem (experiment 4), success |error| < 0.04"),
    "adding-modern": TaskInfo("adding-modern", "regression", 2, 1, "adding, values U(0,1), target X1+X2, MSE"),
    "temporal-order": TaskInfo("temporal-order", "classification", 8, 4, "1997 temporal order (experiment 6a)"),
    "reber": TaskInfo("reber", "multilabel", 7, 7, "embedded Reber grammar (experiment 1), next-symbol sets"),
    "copy": TaskInfo("copy", "sequence", 10, 10, "copy memory: recall 10 symbols after T steps"),
}
