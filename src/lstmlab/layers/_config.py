"""Checking constructor arguments that come from a file's JSON, before the constructor sees them."""
from __future__ import annotations

import inspect


def accepted_arguments(cls) -> tuple[set, set]:
    """``(accepted, required)`` keyword arguments of ``cls(...)``, following ``**kwargs`` up the MRO."""
    accepted, required = set(), set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        required |= {p.name for p in named if p.default is p.empty and p.name not in accepted}
        accepted |= {p.name for p in named}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return accepted, required


def check_arguments(cls, config, prefix: str = "") -> dict:
    """``config`` as keyword arguments of ``cls``: a dict with no unknown and no missing names.

    Messages start with ``prefix`` (e.g. ``"kernel_initializer: "``) and name the argument.
    """
    if not isinstance(config, dict):
        raise ValueError(f"{prefix}expected a JSON object of arguments for {cls.__name__}, got "
                         f"{type(config).__name__}")
    accepted, required = accepted_arguments(cls)
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]}: not an argument of {cls.__name__}; expected some of "
                         f"{', '.join(sorted(accepted))}")
    missing = sorted(required - set(config))
    if missing:
        raise ValueError(f"{prefix}{missing[0]}: {cls.__name__} needs this argument")
    return dict(config)


def check_shape_argument(name: str, shape) -> None:
    ok = isinstance(shape, (list, tuple)) and len(shape) <= 32 and all(
        s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 1) for s in shape)
    if not ok:
        raise ValueError(f"{name}: expected a list of positive integers or None, got {shape!r}")
