"""The forecasting network: stacked recurrent layers over the window, one Dense layer for all H steps.

    x (B, L, C) -> RNN_1 -> ... -> RNN_k (last step) -> Dense(H * n_t) -> y_hat (B, H * n_t)

Multi-step output in one pass (the "MIMO" strategy): no forecast is fed back as an input, so errors do not
compound over the horizon, and every step has its own output weights. Trained with the mean squared error
on scaled changes (see :mod:`.windows`), with Adam and per-tensor gradient clipping.
"""
from __future__ import annotations

from ... import backend
from ... import layers as L
from ...models import Sequential
from ...training import optimizers as O
from ...training.losses import MeanSquaredError
from .config import ForecastConfig


def build_model(cfg: ForecastConfig, n_inputs: int) -> Sequential:
    """The network for windows of ``cfg.lookback`` steps of ``n_inputs`` columns; weights drawn from ``cfg.seed``."""
    n_out = cfg.horizon * len(cfg.target)
    stack = []
    for k in range(cfg.layers):
        kwargs = {"input_shape": (cfg.lookback, n_inputs)} if k == 0 else {}
        stack.append(L.recurrent_layer(cfg.cell, cfg.units, return_sequences=k < cfg.layers - 1,
                                       name=f"{cfg.cell}_{k + 1}", **kwargs))  # (B, L, U) then (B, U)
    stack.append(L.Dense(n_out, name="forecast"))  # (B, H * n_t)
    with backend.seeded(cfg.seed):  # the initial weights are a function of the seed alone
        model = Sequential(stack, name="forecaster")
        model.build((None, cfg.lookback, n_inputs))
    compile_model(model, cfg)
    return model


def compile_model(model: Sequential, cfg: ForecastConfig) -> None:
    opt = O.get({"class_name": "adam", "config": {"learning_rate": cfg.learning_rate, "clipnorm": 1.0}})
    model.compile(opt, MeanSquaredError())
