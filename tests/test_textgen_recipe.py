"""The text generator's recipe on a large vocabulary (the tutorials' Chinese-novel case), on synthetic data.

A 6,000-symbol text with a Zipfian distribution of symbols and something to learn beyond it: the text
is a stream of "words" (fixed runs of 2-5 symbols), so after a word's first symbol the rest is
predictable. A model that only learns the symbol frequencies stays at the unigram entropy; with Keras's
default initialization (embedding uniform +-0.05, zero output bias) the character model stalled there
(checked when this test was written: training loss 5.21 over steps 101-150 against an entropy of 5.03).
"""
import io
import math

import numpy as np
import pytest

from helpers import assert_close
from lstmlab.apps.textgen import ModelConfig, TextTrainer, TrainConfig, Vocabulary
from lstmlab.apps.textgen.model import log_unigram
from lstmlab.training.losses import SparseCategoricalCrossentropy


def zipf_words_text(V=6000, n_words=1500, n_chars=120_000, seed=0) -> str:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, V + 1)
    p /= p.sum()
    words = [rng.choice(V, size=rng.integers(2, 6), p=p) for _ in range(n_words)]
    pw = 1.0 / np.arange(1, n_words + 1) ** 1.1
    pw /= pw.sum()
    parts, n = [np.arange(V)], V  # every symbol once, so the vocabulary has all V
    while n < n_chars:
        w = words[rng.choice(n_words, p=pw)]
        parts.append(w)
        n += len(w)
    return "".join(chr(0x4E00 + int(k)) for k in np.concatenate(parts))


def entropy(ids, V) -> float:
    c = np.bincount(ids, minlength=V)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum())


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """Importing matplotlib to draw the curves costs seconds; these tests only read the history."""
    monkeypatch.setattr("lstmlab.apps.textgen.trainer.plot_curves", lambda path, history: None)


def small_run(tmp_path, text, steps, **model_overrides):
    vocab = Vocabulary.from_text(text)
    mcfg = ModelConfig(vocab_size=len(vocab), layers=1, units=64, embedding=32, **model_overrides)
    tcfg = TrainConfig(seq_len=32, batch_size=16, steps=steps, eval_every=50, epochs=100)
    trainer = TextTrainer(str(tmp_path / "run"), text, vocab, mcfg, tcfg, out=io.StringIO())
    trainer.train(samples=False)
    return trainer


def test_large_vocabulary_model_learns_below_unigram_entropy(tmp_path):
    text = zipf_words_text()
    trainer = small_run(tmp_path, text, steps=150)
    assert len(trainer.vocab) == 6000
    H = entropy(trainer.train_ids, 6000)
    last = trainer.progress.history[-1]
    assert last["step"] == 150
    # The mean training loss over steps 101-150 is well below what symbol frequencies alone can reach.
    assert last["train_loss"] < H - 0.75, (last, H)


@pytest.mark.slow
def test_keras_default_initialization_stalls_at_unigram_entropy(tmp_path):
    """The finding the recipe fixes, kept as a check that the test above can fail."""
    text = zipf_words_text()
    trainer = small_run(tmp_path, text, steps=150, embedding_std=None, unigram_bias=False)
    H = entropy(trainer.train_ids, 6000)
    assert trainer.progress.history[-1]["train_loss"] > H - 0.75


def test_unigram_bias_starts_at_the_unigram_entropy(tmp_path):
    """Before any step, the model's loss on the training text is the unigram entropy (plus the LSTM's noise)."""
    text = zipf_words_text(n_chars=30_000)
    vocab = Vocabulary.from_text(text)
    mcfg = ModelConfig(vocab_size=len(vocab), layers=1, units=16, embedding=8)
    trainer = TextTrainer(str(tmp_path / "run"), text, vocab, mcfg, TrainConfig(seq_len=20, batch_size=8),
                          out=io.StringIO())
    bias = trainer.model.layers[-1].bias.value
    counts = np.bincount(trainer.train_ids, minlength=len(vocab))
    assert_close("bias", bias, log_unigram(counts), 0)
    p = np.exp(bias - bias.max())
    p /= p.sum()
    assert math.isclose(float(-np.log(p[trainer.train_ids]).mean()), entropy(trainer.train_ids, len(vocab)),
                        rel_tol=1e-3)


def test_validation_with_characters_never_seen_in_training(tmp_path):
    """Held-out characters missing from the training part: the fused validation loss is finite and equals
    the unfused computation (logits, then the Keras-style loss) on the same model and streams."""
    train = "abcabcab" * 400
    held_out = "abcxyzab" * 60  # x, y, z never occur in the training part
    text = train + held_out
    vocab = Vocabulary.from_text(text)
    tcfg = TrainConfig(seq_len=10, batch_size=4, val_fraction=len(held_out) / len(text), steps=20, eval_every=20)
    trainer = TextTrainer(str(tmp_path / "run"), text, vocab, ModelConfig(vocab_size=len(vocab), layers=1,
                          units=8, embedding=4), tcfg, out=io.StringIO())
    assert trainer.unseen_in_training() == ("xyz", 180)
    trainer.train(samples=False)
    val = trainer.evaluate()
    assert math.isfinite(val)
    evaluator = trainer._evaluator  # the same streams, through the model's plain forward and the loss object
    evaluator.reset_states()
    from lstmlab.apps.textgen.corpus import streams, windows

    rows = streams(trainer.val_ids, evaluator.layers[0].batch_input_shape[0])
    total = count = 0
    for x, y in windows(rows, min(10, rows.shape[1] - 1)):
        loss, _ = SparseCategoricalCrossentropy(from_logits=True)(y, evaluator(x))
        total, count = total + loss * y.size, count + y.size
    assert abs(val - total / count) < 1e-5


def test_default_dropout_and_embedding_follow_the_text(tmp_path):
    """Dropout 0.2 for a text under a million training characters (else 0); embedding about 4 sqrt(V)."""
    from lstmlab.apps.textgen.config import default_dropout, default_embedding

    assert default_dropout(418_613) == 0.2 and default_dropout(1_785_361) == 0.0
    assert [default_embedding(v) for v in (10, 103, 1000, 6045)] == [64, 64, 128, 256]
    text = "abcabd" * 500
    vocab = Vocabulary.from_text(text)
    trainer = TextTrainer(str(tmp_path / "run"), text, vocab, ModelConfig(vocab_size=len(vocab), layers=2, units=8),
                          TrainConfig(seq_len=10, batch_size=4), out=io.StringIO())
    assert trainer.mcfg.dropout == 0.2 and trainer.mcfg.embedding == 64
    assert [type(l).__name__ for l in trainer.model.layers] == ["Embedding", "LSTM", "Dropout", "LSTM", "Dropout",
                                                                "Dense"]
