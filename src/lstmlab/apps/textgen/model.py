"""The character model and its single-step sampler."""
from __future__ import annotations

import numpy as np

from ... import functional as F
from ... import layers as L
from ...layers import initializers as I
from ...training import optimizers as O
from ...models import Sequential
from ...training.losses import SparseCategoricalCrossentropy
from .config import ModelConfig, SampleConfig, TrainConfig
from .corpus import Vocabulary


def build_model(cfg: ModelConfig, batch_size: int, seq_len: int | None = None, unigram=None) -> Sequential:
    """Embedding -> stateful recurrent layers (dropout between them, char-rnn style) -> Dense logits.

    The embedding starts from N(0, ``cfg.embedding_std``) (Keras's uniform +-0.05 when it is None). With
    ``unigram`` (each character's frequency in the training text), the output bias starts at its logarithm,
    so the untrained model already predicts the unigram distribution instead of spending its first hundred
    steps learning it.
    """
    init = "uniform" if cfg.embedding_std is None else I.RandomNormal(0.0, cfg.embedding_std)
    stack = [L.Embedding(cfg.vocab_size, cfg.embedding, embeddings_initializer=init,
                         batch_input_shape=(batch_size, seq_len), name="embedding")]
    for k in range(cfg.layers):
        if cfg.dropout and k > 0:
            stack.append(L.Dropout(cfg.dropout, name=f"dropout_{k}"))
        stack.append(L.recurrent_layer(cfg.cell, cfg.units, return_sequences=True, stateful=True,
                                       name=f"{cfg.cell}_{k + 1}"))
    if cfg.dropout:
        stack.append(L.Dropout(cfg.dropout, name=f"dropout_{cfg.layers}"))
    stack.append(L.Dense(cfg.vocab_size, name="logits"))
    model = Sequential(stack, name="char_model")
    if unigram is not None:
        model.layers[-1].bias.assign(log_unigram(unigram))
    return model


def log_unigram(counts) -> np.ndarray:
    """Log frequencies of the characters, with an unseen character counted as half an occurrence."""
    counts = np.maximum(np.asarray(counts, np.float64), 0.5)  # (V,)
    logp = np.log(counts / counts.sum())
    return (logp - logp.mean()).astype(np.float32)  # softmax ignores a constant; centered for tidiness


def compile_model(model: Sequential, cfg: TrainConfig) -> None:
    opt = O.get({"class_name": cfg.optimizer, "config": {"learning_rate": cfg.learning_rate,
                                                           "clipnorm": cfg.clipnorm}})
    model.compile(opt, SparseCategoricalCrossentropy(from_logits=True))


class CharSampler:
    """Generates text one character at a time, carrying the recurrent state between calls.

    Each character costs one step of each layer (no re-running of the prefix):
    the embedding row, one recurrent step per layer with the carried (h, c),
    and the output projection.
    """

    def __init__(self, model: Sequential, vocab: Vocabulary):
        self.vocab = vocab
        self.embeddings = model.layers[0].embeddings.value
        self.cells = [layer for layer in model.layers if isinstance(layer, (L.LSTM, L.GRU, L.SimpleRNN))]
        dense = model.layers[-1]
        self.W, self.b = dense.kernel.value, dense.bias.value
        self.reset()

    def reset(self) -> None:
        self.states = [None] * len(self.cells)
        self.logits = None

    def step(self, char_id: int) -> np.ndarray:
        """Feed one character id; returns the logits of the next character, shape (V,)."""
        x = self.embeddings[char_id][None, None, :]  # (1, 1, E)
        for k, cell in enumerate(self.cells):
            x, self.states[k] = _one_step(cell, x, self.states[k])
        self.logits = x[0, 0] @ self.W + self.b  # (V,)
        return self.logits

    def feed(self, text: str) -> None:
        for i in self.vocab.encode(text, argument="prime"):
            self.step(int(i))

    def generate(self, cfg: SampleConfig, rng: np.random.Generator | None = None, on_char=None) -> str:
        """Prime with ``cfg.prime`` (a newline when empty) and sample ``cfg.length`` characters."""
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        self.reset()
        prime = cfg.prime or ("\n" if "\n" in self.vocab.index else self.vocab.chars[0])
        self.feed(prime)
        out = []
        for _ in range(cfg.length):
            i = sample_index(self.logits, cfg.temperature, cfg.top_k, rng)
            c = self.vocab.chars[i]
            out.append(c)
            if on_char is not None:
                on_char(c)
            self.step(i)
        return "".join(out)


def _one_step(cell, x, state):
    k, r = cell.kernel.value, cell.recurrent_kernel.value
    b = None if cell.bias is None else cell.bias.value
    kw = dict(activation=cell.activation)
    if isinstance(cell, L.LSTM):
        h0, c0 = state if state is not None else (None, None)
        hs, (h, c), _ = F.lstm_forward(x, k, r, b, h0, c0, recurrent_activation=cell.recurrent_activation, **kw)
        return hs, (h, c)
    if isinstance(cell, L.GRU):
        hs, h, _ = F.gru_forward(x, k, r, b, state, recurrent_activation=cell.recurrent_activation, **kw)
        return hs, h
    hs, h, _ = F.rnn_forward(x, k, r, b, state, **kw)
    return hs, h


def sample_index(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """Draw one index from ``softmax(logits / temperature)``, restricted to the ``top_k`` largest when given."""
    z = np.asarray(logits, np.float64) / temperature
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cutoff, z, -np.inf)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), z.size - 1))
