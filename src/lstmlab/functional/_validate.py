"""Input checks shared by the functional math.

Every error a user can cause names the argument, what it got and what was
expected, so the message alone is enough to fix the call.
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

# Inside a model the activations between layers are not user input: a model checks the user's x once and then
# lets NaN from diverged weights flow to the loss (where TerminateOnNaN or a trainer's guard sees it).
_CHECK_FINITE = contextvars.ContextVar("lstmlab_check_finite", default=True)


@contextlib.contextmanager
def internal_activations():
    """Within this block, NaN / Inf in array arguments is not an input error."""
    token = _CHECK_FINITE.set(False)
    try:
        yield
    finally:
        _CHECK_FINITE.reset(token)


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"array of shape {a.shape} and dtype {a.dtype}"
    return f"{type(a).__name__}"


def as_float_array(name: str, a: object, ndim: int | None = None, *, what: str = "", finite: bool = True) -> np.ndarray:
    """Return ``a`` as a floating-point ndarray after checking rank, dtype and finiteness.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    a : array_like
        The value to check. Lists are accepted; integer, bool and object
        dtypes are not (silently converting token ids to floats hides bugs).
    ndim : int, optional
        Required rank.
    what : str
        Human description of the expected layout, e.g. ``"(batch, time, features)"``.
    finite : bool
        Refuse NaN / Inf. Inputs and states are checked; weights are not (a
        diverged training run must reach its NaN handling, not an exception).
    """
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected a numeric array, got {type(a).__name__} ({exc})") from None
    if a.dtype.kind != "f":
        raise ValueError(
            f"{name}: expected a floating-point array (float32 or float64), got dtype {a.dtype}"
            + (" (integer token ids go through an Embedding layer first)" if np.issubdtype(a.dtype, np.integer) else "")
        )
    if ndim is not None and a.ndim != ndim:
        layout = f" {what}" if what else ""
        raise ValueError(f"{name}: expected a {ndim}-D array{layout}, got {a.ndim}-D array of shape {a.shape}")
    if finite and _CHECK_FINITE.get() and not np.all(np.isfinite(a)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or Inf value(s) in an array of shape {a.shape}")
    return a


def check_shape(name: str, a: np.ndarray, expected: tuple, hint: str = "") -> None:
    """Raise if ``a.shape`` differs from ``expected`` (``None`` entries match anything)."""
    ok = a.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, a.shape))
    if not ok:
        shown = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        extra = f" {hint}" if hint else ""
        raise ValueError(f"{name}: expected shape {shown}{extra}, got {a.shape}")


def check_mask(mask: object, batch: int, steps: int) -> np.ndarray | None:
    """Validate a (batch, time) mask of valid steps; returns a float mask or None."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_ and not np.issubdtype(m.dtype, np.number):
        raise ValueError(f"mask: expected a boolean array of shape (batch, time), got dtype {m.dtype}")
    check_shape("mask", m, (batch, steps), "(batch, time) matching x")
    if m.dtype != np.bool_ and not np.all((m == 0) | (m == 1)):
        raise ValueError("mask: expected only 0/1 (or True/False) values")
    return m.astype(bool)


def check_recurrent_mask(recurrent_mask: object, batch: int, units: int, dtype) -> np.ndarray | None:
    """Validate a (batch, units) recurrent-dropout mask (already scaled, e.g. 0 or 1/(1-p))."""
    if recurrent_mask is None:
        return None
    m = as_float_array("recurrent_mask", recurrent_mask, 2, what="(batch, units)")
    check_shape("recurrent_mask", m, (batch, units), f"(batch={batch}, units={units})")
    return m.astype(dtype, copy=False)


def common_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The floating dtype the computation runs in (NumPy promotion of all operands)."""
    return np.result_type(*[a for a in arrays if a is not None])


def recurrent_args(
    x: object,
    kernel: object,
    recurrent_kernel: object,
    bias: object,
    states: dict[str, object],
    *,
    gates: int,
    bias_rows: int | None = None,
):
    """Check the arguments every recurrent function takes and bring them to one dtype.

    Parameters
    ----------
    gates : int
        How many gate blocks the kernels hold side by side (LSTM 4, GRU 3, RNN 1).
    bias_rows : int, optional
        ``None`` for a bias of shape ``(gates*units,)``; an int ``k`` for
        ``(k, gates*units)`` (the GRU's separate input and recurrent biases).

    Returns
    -------
    x, kernel, recurrent_kernel, bias, states, dims
        Arrays in the common dtype and ``dims = (B, T, D, H)``.
    """
    x = as_float_array("x", x, 3, what="(batch, time, features)")
    B, T, D = x.shape
    if B == 0 or T == 0:
        raise ValueError(f"x: expected at least one sequence and one time step, got shape {x.shape}")
    kernel = as_float_array("kernel", kernel, 2, what=f"(input_dim, {gates}*units)", finite=False)
    width = kernel.shape[1]
    if width == 0 or width % gates:
        raise ValueError(
            f"kernel: expected shape (input_dim, {gates}*units) with a positive multiple of {gates} columns, "
            f"got {kernel.shape}"
        )
    H = width // gates
    check_shape("kernel", kernel, (D, gates * H), f"(input_dim={D} from x's last axis, {gates}*units)")
    recurrent_kernel = as_float_array("recurrent_kernel", recurrent_kernel, 2, what=f"(units, {gates}*units)",
                                      finite=False)
    check_shape("recurrent_kernel", recurrent_kernel, (H, gates * H), f"(units={H}, {gates}*units={gates * H})")
    if bias is not None:
        bias = as_float_array("bias", bias, finite=False)
        want = (gates * H,) if bias_rows is None else (bias_rows, gates * H)
        check_shape("bias", bias, want, f"for units={H}")
    checked = {}
    for name, s in states.items():
        if s is None:
            checked[name] = None
            continue
        s = as_float_array(name, s, 2, what="(batch, units)")
        check_shape(name, s, (B, H), f"(batch={B}, units={H})")
        checked[name] = s
    dtype = common_dtype(x, kernel, recurrent_kernel, bias, *checked.values())
    cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
    states_out = {k: (np.zeros((B, H), dtype) if v is None else cast(v)) for k, v in checked.items()}
    return cast(x), cast(kernel), cast(recurrent_kernel), cast(bias), states_out, (B, T, D, H)


def upstream(name: str, g: object, shape: tuple, dtype: np.dtype) -> np.ndarray | None:
    """Check an upstream gradient (``None`` means zero) and cast it to the compute dtype."""
    if g is None:
        return None
    g = as_float_array(name, g, len(shape))
    check_shape(name, g, shape)
    return g.astype(dtype, copy=False)
