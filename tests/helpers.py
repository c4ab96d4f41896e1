"""Shared builders for the tests: random problems with non-trivial states and biases."""
from __future__ import annotations

import numpy as np

from lstmlab import functional as F

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def random_problem(kind: str, B: int, T: int, D: int, H: int, *, seed: int = 0, dtype=np.float64, scale: float = 0.5):
    """Inputs, weights, non-zero initial states and non-zero biases for one recurrent kind."""
    rng = np.random.default_rng(seed)
    n = GATES[kind]
    p = {
        "x": rng.standard_normal((B, T, D)),
        "kernel": rng.uniform(-scale, scale, (D, n * H)),
        "recurrent_kernel": rng.uniform(-scale, scale, (H, n * H)),
        "bias": rng.uniform(-scale, scale, (2, 3 * H) if kind == "gru" else (n * H,)),
        "h0": rng.uniform(-0.8, 0.8, (B, H)),
    }
    if kind == "lstm":
        p["c0"] = rng.uniform(-1.0, 1.0, (B, H))
    return {k: v.astype(dtype) for k, v in p.items()}


def forward(kind: str, params: dict, **kw):
    """Run the functional forward; returns (hs, final_states_tuple, cache)."""
    if kind == "lstm":
        hs, (h, c), cache = F.lstm_forward(**params, **kw)
        return hs, (h, c), cache
    fn = F.gru_forward if kind == "gru" else F.rnn_forward
    hs, h, cache = fn(**params, **kw)
    return hs, (h,), cache


def backward(kind: str, dhs, dfinal, cache) -> dict:
    """Run the functional backward; returns gradients keyed like the forward's parameters."""
    if kind == "lstm":
        g = F.lstm_backward(dhs, dfinal[0], dfinal[1], cache)
        return {"x": g.dx, "kernel": g.dkernel, "recurrent_kernel": g.drecurrent_kernel,
                "bias": g.dbias, "h0": g.dh0, "c0": g.dc0}
    g = (F.gru_backward if kind == "gru" else F.rnn_backward)(dhs, dfinal[0], cache)
    return {"x": g.dx, "kernel": g.dkernel, "recurrent_kernel": g.drecurrent_kernel, "bias": g.dbias, "h0": g.dh0}


def assert_close(name: str, ours, theirs, tol: float) -> None:
    """Fail with both values printed when |ours - theirs| > tol * (1 + |theirs|) anywhere."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{name}: shape ours {ours.shape} vs theirs {theirs.shape}"
    err = np.abs(ours - theirs)
    bound = tol * (1.0 + np.abs(theirs))
    if np.any(err > bound):
        k = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{name}: max |ours - theirs| = {err.max():.3e} (tolerance {tol:g} x (1 + |theirs|)); "
            f"at {tuple(int(i) for i in k)} ours = {ours[k]!r}, theirs = {theirs[k]!r}\n"
            f"ours   = {np.array2string(ours.ravel()[:8], precision=12)} ...\n"
            f"theirs = {np.array2string(theirs.ravel()[:8], precision=12)} ..."
        )
