"""The tutorials' classifier: Embedding(mask_zero) -> recurrent layers -> Dense(1, sigmoid) for two classes,
Dense(C, softmax) for more.

Only the last recurrent layer returns one vector per text (its state after the last real token: the mask
makes it skip the padding); the ones below it return their whole sequence to feed the next. With
``bidirectional`` each layer reads the text both ways and concatenates the two.
"""
from __future__ import annotations

import numpy as np

from ... import layers as L
from ...models import Sequential
from ...training import optimizers as O
from .config import ModelConfig, TrainConfig


def build_model(cfg: ModelConfig) -> Sequential:
    stack = [L.Embedding(cfg.vocab_size, cfg.embedding, mask_zero=True, name="embedding")]  # (B, T) -> (B, T, E)
    for k in range(cfg.layers):
        last = k == cfg.layers - 1
        rnn = L.recurrent_layer(cfg.cell, cfg.units, return_sequences=not last, name=f"{cfg.cell}_{k + 1}")
        # (B, T, E) -> (B, T, H) below the top, (B, H) at the top; doubled to 2H when bidirectional
        stack.append(L.Bidirectional(rnn, name=f"bidirectional_{k + 1}") if cfg.bidirectional else rnn)
    if cfg.n_classes == 2:
        stack.append(L.Dense(1, activation="sigmoid", name="probability"))  # (B, 1): P(second label)
    else:
        stack.append(L.Dense(cfg.n_classes, activation="softmax", name="probabilities"))  # (B, C)
    return Sequential(stack, name="text_classifier")


def compile_model(model: Sequential, mcfg: ModelConfig, tcfg: TrainConfig) -> None:
    opt = O.get({"class_name": "adam", "config": {"learning_rate": tcfg.learning_rate, "clipnorm": tcfg.clipnorm}})
    loss = "binary_crossentropy" if mcfg.n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(opt, loss)


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """What the loss expects: a float column of 0/1 for two classes, the class ids otherwise."""
    return y.astype(np.float32)[:, None] if n_classes == 2 else y.astype(np.int32)  # (N, 1) or (N,)


def probabilities(model: Sequential, x: np.ndarray, n_classes: int, batch_size: int = 256) -> np.ndarray:
    """(N, C) class probabilities (the sigmoid's p becomes the row [1 - p, p])."""
    p = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float64)
    if n_classes == 2:
        p = p.reshape(-1, 1)  # (N, 1)
        return np.concatenate([1.0 - p, p], axis=1)  # (N, 2)
    return p  # (N, C)


def cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean -log p[y] in nats (clipped as Keras clips, at 1e-7), the validation loss."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))


def balanced_weights(y: np.ndarray, n_classes: int) -> dict:
    """``--class-weight balanced``: ``n / (C * n_c)`` per class (scikit-learn's formula), from the training part."""
    counts = np.bincount(y, minlength=n_classes)
    return {c: float(len(y) / (n_classes * counts[c])) for c in range(n_classes)}
