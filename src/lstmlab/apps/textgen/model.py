"""The character model and its single-step sampler."""
from __future__ import annotations

import numpy as np

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
        options = {} if cfg.activation == "tanh" else {"activation": cfg.activation}  # every cell's default
        stack.append(L.recurrent_layer(cfg.cell, cfg.units, return_sequences=True, stateful=True,
                                       name=f"{cfg.cell}_{k + 1}", **options))
    if cfg.dropout:
        stack.append(L.Dropout(cfg.dropout, name=f"dropout_{cfg.layers}"))
    stack.append(L.Dense(cfg.vocab_size, name="logits"))
    model = Sequential(stack, name="char_model")
    if unigram is not None:
        model.layers[-1].bias.assign(log_unigram(unigram))
    return model


def with_dtype(model: Sequential, dtype: str) -> Sequential:
    """The same model with its LSTM layers in ``dtype`` ("float32": the model itself; "bfloat16": a copy whose
    LSTM layers run bf16 inference, same float32 weights, see :class:`lstmlab.layers.LSTM`).

    Raises ValueError for another dtype, or for bfloat16 with a recurrent layer that is not a plain LSTM
    (bf16 is an LSTM path only), naming the layer.
    """
    if dtype == "float32":
        return model
    if dtype != "bfloat16":
        raise ValueError(f"dtype: expected 'float32' or 'bfloat16', got {dtype!r}")
    config = model.get_config()
    for layer, entry in zip(model.layers, config["layers"]):
        if isinstance(layer, L.RNN):
            if type(layer) is not L.LSTM or getattr(layer, "proj_size", None) is not None:
                raise ValueError(f"dtype: bfloat16 runs LSTM layers only, but layer {layer.name!r} is a "
                                 f"{type(layer).__name__}{' with proj_size' if type(layer) is L.LSTM else ''}; "
                                 f"use --dtype float32")
            entry["config"]["dtype"] = "bfloat16"
    converted = Sequential.from_config(config)
    converted.set_weights(model.get_weights())
    return converted


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
    """Generates text one character at a time, carrying the recurrent states between calls.

    Each character costs one step of each layer, through the layers' public API (no re-running of the
    prefix): the embedding of the character id, ``layer.step(x_t, states)`` for each recurrent layer (any
    cell) with the states this sampler carries, and every other layer called in inference mode (dropout is
    then the identity, the last Dense gives the logits).
    """

    def __init__(self, model: Sequential, vocab: Vocabulary):
        self.vocab = vocab
        self.layers = list(model.layers)
        if not isinstance(self.layers[0], L.Embedding):
            raise ValueError(f"model: a character model starts with an Embedding, got {type(self.layers[0]).__name__}")
        for layer in self.layers:
            if isinstance(layer, L.Bidirectional):
                raise ValueError(f"model: layer {layer.name!r} reads the sequence backwards too; text cannot be "
                                 "generated one character at a time with it")
        self.reset()

    def reset(self) -> None:
        self.states = [None] * len(self.layers)
        self.logits = None

    def step(self, char_id: int) -> np.ndarray:
        """Feed one character id; returns the logits of the next character, shape (V,)."""
        x = self.layers[0](np.array([[char_id]]), training=False)[:, 0]  # (1, E)
        for k, layer in enumerate(self.layers[1:], start=1):
            if isinstance(layer, L.RNN):
                x, self.states[k] = layer.step(x, self.states[k])  # (1, H)
            else:
                x = layer(x, training=False)
        self.logits = x[0]  # (V,)
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


def sample_index(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """Draw one index from ``softmax(logits / temperature)``, restricted to the ``top_k`` largest when given."""
    z = np.asarray(logits, np.float64) / temperature
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cutoff, z, -np.inf)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), z.size - 1))
