"""Check any analytic gradient against central finite differences in float64.

Usage
-----
Put the arrays you differentiate with respect to in a dict, write the loss
as a function of no arguments that reads those same arrays, and hand over the
gradients your backward produced::

    params = {"x": x, "kernel": W, "recurrent_kernel": U, "bias": b, "h0": h0, "c0": c0}

    def loss():
        hs, (h, c), _ = lstm_forward(**params)
        return np.sum(dhs * hs) + np.sum(dh * h) + np.sum(dc * c)

    _, _, cache = lstm_forward(**params)
    g = lstm_backward(dhs, dh, dc, cache)
    report = gradcheck(loss, params, {"x": g.dx, "kernel": g.dkernel, ...})
    assert report.ok, report

``gradcheck`` perturbs each element of each array *in place* by +-eps, calls
``loss()`` twice and restores the element, so the loss must read the arrays
rather than copies made before the call.  Using a random upstream gradient
(``dhs`` above) rather than ``sum(hs)`` matters: an all-ones weighting lets
some wrong backward passes cancel out.

Error measure
-------------
For every tensor the report gives ``max |analytic - numeric|`` and the
relative error ``max |analytic - numeric| / max(max |analytic|, max |numeric|, floor)``:
the worst deviation measured against the tensor's own gradient scale.  That
is stable where single elements are near zero (an element-wise ratio there is
rounding noise), and still exposes a gradient that is wrong anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

import numpy as np

ArrayGroup = Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]


@dataclass(frozen=True)
class TensorCheck:
    """The comparison for one tensor."""

    name: str
    shape: tuple
    checked: int  # number of elements compared
    max_abs_error: float
    scale: float  # max(|analytic|, |numeric|) over the checked elements
    rel_error: float

    def ok(self, tol: float) -> bool:
        return bool(self.rel_error <= tol)


@dataclass(frozen=True)
class GradcheckReport:
    """Per-tensor maximum relative errors; ``ok`` when every one is within ``tol``."""

    tensors: list = field(default_factory=list)
    tol: float = 1e-6
    eps: float = 1e-6

    @property
    def ok(self) -> bool:
        return all(t.ok(self.tol) for t in self.tensors)

    @property
    def max_rel_error(self) -> float:
        return max((t.rel_error for t in self.tensors), default=0.0)

    @property
    def failed(self) -> list:
        """Names of the tensors beyond tolerance."""
        return [t.name for t in self.tensors if not t.ok(self.tol)]

    def __getitem__(self, name: str) -> TensorCheck:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __str__(self) -> str:
        rows = [f"gradcheck (central differences, eps={self.eps:g}, tol={self.tol:g}): {'OK' if self.ok else 'FAILED'}"]
        rows.append(f"  {'tensor':<20} {'shape':<16} {'checked':>8} {'max abs err':>12} {'scale':>10} {'rel err':>10}")
        for t in self.tensors:
            flag = "" if t.ok(self.tol) else "  <-- wrong"
            rows.append(
                f"  {t.name:<20} {str(t.shape):<16} {t.checked:>8} {t.max_abs_error:>12.3e} "
                f"{t.scale:>10.3e} {t.rel_error:>10.3e}{flag}"
            )
        return "\n".join(rows)

    __repr__ = __str__


def _named(group: ArrayGroup, what: str) -> dict:
    if isinstance(group, Mapping):
        return dict(group)
    if isinstance(group, (list, tuple)):  # one name for both lists, so wrt[k] meets analytic[k]
        return {f"wrt[{k}]": a for k, a in enumerate(group)}
    raise ValueError(f"{what}: expected a dict of name -> array or a list of arrays, got {type(group).__name__}")


def gradcheck(
    loss_fn: Callable[[], float],
    wrt: ArrayGroup,
    analytic: ArrayGroup,
    *,
    eps: float = 1e-6,
    tol: float = 1e-6,
    floor: float = 1e-6,
    max_elements: int | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Compare analytic gradients with central differences ``(L(a+eps) - L(a-eps)) / 2eps``.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn()`` returns the scalar loss computed from the arrays in ``wrt``.
    wrt : dict of str -> ndarray, or list of ndarray
        The float64 arrays to differentiate with respect to; they are perturbed
        in place and restored.
    analytic : dict or list, matching ``wrt``
        The gradients to check, same keys (or order) and shapes.
    eps : float
        Finite-difference step.
    tol : float
        Largest relative error (see the module docstring) that passes.
    floor : float
        Smallest gradient scale a relative error is measured against.
    max_elements : int, optional
        Check at most this many randomly chosen elements per tensor (for big
        models); all elements by default.
    seed : int
        Seed of that random choice.

    Returns
    -------
    GradcheckReport
    """
    params = _named(wrt, "wrt")
    grads = _named(analytic, "analytic")
    if set(params) != set(grads):
        raise ValueError(f"analytic: expected gradients for exactly {sorted(params)}, got {sorted(grads)}")
    if not eps > 0:
        raise ValueError(f"eps: expected a positive step, got {eps}")
    rng = np.random.default_rng(seed)
    checks = []
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype != np.float64:
            got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise ValueError(
                f"wrt[{name!r}]: expected a float64 ndarray (finite differences in float32 are rounding noise), got {got}"
            )
        g = np.asarray(grads[name])
        if g.shape != p.shape:
            raise ValueError(f"analytic[{name!r}]: expected shape {p.shape} like wrt[{name!r}], got {g.shape}")
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError(f"wrt[{name!r}]: expected a writeable C-contiguous array that can be perturbed in place")
        flat = p.reshape(-1)  # a view: writing into it perturbs p itself
        idx = np.arange(p.size)
        if max_elements is not None and p.size > max_elements:
            idx = np.sort(rng.choice(p.size, size=max_elements, replace=False))
        numeric = np.empty(idx.size)
        for k, j in enumerate(idx):
            orig = flat[j]
            try:
                flat[j] = orig + eps
                plus = float(loss_fn())
                flat[j] = orig - eps
                minus = float(loss_fn())
            finally:
                flat[j] = orig
            numeric[k] = (plus - minus) / (2.0 * eps)
        ana = g.reshape(-1)[idx].astype(np.float64)
        abs_err = float(np.max(np.abs(ana - numeric))) if idx.size else 0.0
        scale = float(max(np.max(np.abs(ana)), np.max(np.abs(numeric)))) if idx.size else 0.0
        checks.append(TensorCheck(name, p.shape, int(idx.size), abs_err, scale, abs_err / max(scale, floor)))
    return GradcheckReport(checks, tol, eps)


def check_layer(layer, x, *, initial_state=None, mask=None, seed: int = 0, eps: float = 1e-6,
                tol: float = 1e-6, max_elements: int | None = None,
                call_kwargs: dict | None = None) -> GradcheckReport:
    """Finite differences for a whole layer: every weight, the input and (when given) the initial states.

    The layer runs in training mode on float64 ``x`` (it must be a float64 layer, e.g. built with
    ``dtype="float64"``), and the loss is ``sum(R * y)`` for a random ``R`` over each output (all of
    ``return_state``'s too), so no wrong backward can hide behind an all-ones weighting. Dropout must be
    off (its masks would change between the perturbed calls). This is how to test a cell of your own
    (``from lstmlab.gradcheck import check_layer``)::

        layer = layers.RNN(MyCell(4, dtype="float64"), return_sequences=True, dtype="float64")
        report = check_layer(layer, np.random.default_rng(0).normal(size=(2, 5, 3)))
        assert report.ok, report

    A layer called on a list of inputs (a merge, attention) takes ``x`` as a list of arrays; its
    ``backward`` returns a list aligned with them (None for an input it does not depend on, checked as
    zeros). ``call_kwargs`` are further keyword arguments of the call (``return_attention_scores=True``).

    Returns
    -------
    GradcheckReport
        One row per weight (by its path), ``x`` (``x[0]``, ``x[1]``, ... for a list) and ``initial_state[k]``.
    """
    rng = np.random.default_rng(seed)
    many = isinstance(x, (list, tuple))
    x = [np.array(a, dtype=np.float64) for a in x] if many else np.array(x, dtype=np.float64)
    states = None if initial_state is None else [np.array(s, dtype=np.float64) for s in initial_state]
    kwargs = dict(call_kwargs or {})
    if mask is not None:
        kwargs["mask"] = mask
    if states is not None:
        kwargs["initial_state"] = states
    out = layer(x, training=True, **kwargs)
    if any(w.value.dtype != np.float64 for w in layer.weights):
        raise ValueError(f"layer: {layer.name!r} has float32 weights; build it with dtype='float64' to check it")
    outs = out if isinstance(out, list) else [out]
    upstream = [rng.standard_normal(np.shape(o)) for o in outs]

    def loss() -> float:
        y = layer(x, training=True, **kwargs)
        return float(sum(np.sum(r * o) for r, o in zip(upstream, y if isinstance(y, list) else [y])))

    layer(x, training=True, **kwargs)
    dx = layer.backward(upstream if isinstance(out, list) else upstream[0])
    wrt = {w.path: w.value for w in layer.weights}
    analytic = dict(zip(wrt, layer.grads))
    if many:
        for k, (a, g) in enumerate(zip(x, dx)):
            wrt[f"x[{k}]"], analytic[f"x[{k}]"] = a, np.zeros_like(a) if g is None else g
    else:
        wrt["x"], analytic["x"] = x, dx
    if states is not None:
        for k, (s, g) in enumerate(zip(states, layer.initial_state_grads)):
            wrt[f"initial_state[{k}]"], analytic[f"initial_state[{k}]"] = s, g
    return gradcheck(loss, wrt, analytic, eps=eps, tol=tol, max_elements=max_elements, seed=seed)
