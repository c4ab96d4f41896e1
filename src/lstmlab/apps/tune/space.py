"""The search space: which hyperparameters a trial samples, and from what.

The default follows the tuning advice our source tutorials pass on from DL4J: the learning rate first and on
a log scale (it matters most and spans orders of magnitude), then regularization, depth and width, then
optimizer (RMSProp, AdaGrad, SGD with Nesterov momentum, Adam), clipping and the cells' activation (tanh
against softsign). Optuna samples in the order given, so the first parameters are the ones its model of the
loss learns first.

A space file (``--space FILE``, TOML or JSON) maps parameter names to one spec each::

    [learning_rate]            # TOML                  {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": true},
    low = 1e-4                                          "units": {"choices": [64, 128, 256]}}   (JSON)
    high = 1e-2
    log = true

    [units]
    choices = [64, 128, 256]

A spec has ``choices`` (a list), or ``low`` and ``high`` (integers make an integer parameter; ``log`` for a
log scale, ``step`` for a grid). A parameter the user typed on the command line (``--lr 1e-3``) is fixed and
leaves the space.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

# Parameter name -> the train option that fixes it when typed (cli's argparse dest).
PARAMETERS = {"learning_rate": "lr", "units": "units", "layers": "layers", "dropout": "dropout",
              "optimizer": "optimizer", "clipnorm": "clip", "activation": None, "embedding": "embedding",
              "seq_len": "seq_len", "batch_size": "batch_size", "cell": "cell"}
# ``lstmlab tune forecast``: parameter name -> the forecast option that fixes it (there is no dropout to search:
# the forecaster has none; the lookback's default choices depend on the data, see ``ForecastObjective``).
FORECAST_PARAMETERS = {"learning_rate": "lr", "units": "units", "layers": "layers", "cell": "cell",
                       "lookback": "lookback", "batch_size": "batch_size"}
# ``lstmlab tune classify``: parameter name -> the classify option that fixes it (no dropout either: the
# classifier has none; ``bidirectional`` is searched as the choices false / true).
CLASSIFY_PARAMETERS = {"learning_rate": "lr", "units": "units", "layers": "layers", "cell": "cell",
                       "bidirectional": "bidirectional", "embedding": "embedding", "batch_size": "batch_size",
                       "clipnorm": "clip"}
OPTIMIZER_CHOICES = ("adam", "rmsprop", "adagrad", "sgd-nesterov")  # sgd-nesterov: SGD, momentum 0.9, Nesterov


@dataclass(frozen=True)
class Param:
    """One parameter: categorical (``choices``) or numeric in [low, high] (``log`` scale, ``step`` grid)."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def suggest(self, trial):
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int) and (self.step is None or isinstance(self.step, int)):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)


def sample(trial, space) -> dict:
    """The trial's parameters, drawn in the space's order (the learning rate first)."""
    return {p.name: p.suggest(trial) for p in space}


DEFAULT_SPACE = (
    Param("learning_rate", low=1e-4, high=3e-2, log=True),
    Param("units", choices=(64, 128, 256, 512)),
    Param("layers", low=1, high=3),
    Param("dropout", low=0.0, high=0.5),
    Param("optimizer", choices=OPTIMIZER_CHOICES),
    Param("clipnorm", choices=(0.0, 1.0, 5.0)),  # 0 = no clipping
    Param("activation", choices=("tanh", "softsign")),
)


def _spec_error(path, name, problem):
    return ValueError(f"--space: {path}: parameter {name!r}: {problem}")


def parse_space(data: dict, path: str = "FILE", parameters: dict = PARAMETERS) -> tuple:
    """The parameters described by ``data`` (a space file's content), checked against the names of
    ``parameters`` (the tuned command's)."""
    if not isinstance(data, dict) or not data:
        raise ValueError(f"--space: {path}: expected a table of parameters, got {type(data).__name__}")
    params = []
    for name, spec in data.items():
        if name not in parameters:
            raise _spec_error(path, name, f"unknown; expected one of {', '.join(parameters)}")
        if not isinstance(spec, dict):
            raise _spec_error(path, name, f"expected a table with choices or low/high, got {spec!r}")
        unknown = sorted(set(spec) - {"choices", "low", "high", "log", "step"})
        if unknown:
            raise _spec_error(path, name, f"unknown key {unknown[0]!r}; expected choices, low, high, log, step")
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"] or set(spec) - {"choices"}:
                raise _spec_error(path, name, "expected choices as a non-empty list, and nothing else")
            if name == "optimizer":
                bad = [c for c in spec["choices"] if c not in OPTIMIZER_CHOICES + ("sgd", "adamw", "nadam", "adamax")]
                if bad:
                    raise _spec_error(path, name, f"unknown optimizer {bad[0]!r}")
            params.append(Param(name, choices=tuple(spec["choices"])))
            continue
        low, high = spec.get("low"), spec.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
            raise _spec_error(path, name, f"expected numbers low < high, got low={low!r}, high={high!r}")
        log = spec.get("log", False)
        if not isinstance(log, bool) or (log and low <= 0):
            raise _spec_error(path, name, f"expected log = true or false (true needs low > 0), got {log!r}")
        params.append(Param(name, low=low, high=high, log=log, step=spec.get("step")))
    return tuple(params)


def load_space(path: str, parameters: dict = PARAMETERS) -> tuple:
    """Read a ``.toml`` or ``.json`` space file."""
    if not os.path.isfile(path):
        raise ValueError(f"--space: no such file {path!r}")
    try:
        if path.endswith(".toml"):
            import tomllib  # Python 3.11+

            with open(path, "rb") as f:
                data = tomllib.load(f)
        elif path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        else:
            raise ValueError(f"--space: expected a .toml or .json file, got {path!r}")
    except ImportError:
        raise ValueError("--space: reading TOML needs Python 3.11 or later; use a .json file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--space: {path} is not valid JSON ({exc})") from None
    except Exception as exc:  # tomllib.TOMLDecodeError
        if type(exc).__name__ != "TOMLDecodeError":
            raise
        raise ValueError(f"--space: {path} is not valid TOML ({exc})") from None
    return parse_space(data, path, parameters)


def without_fixed(space: tuple, typed: set, parameters: dict = PARAMETERS) -> tuple:
    """The space less the parameters whose option (``parameters[name]``) the user typed (those stay as typed)."""
    return tuple(p for p in space if parameters[p.name] not in typed)
