"""The text generator's sampler drives the layers' public one-step call; it equals the whole-sequence forward.

For every cell kind ``lstmlab train --cell`` accepts: feeding a text one character at a time
(``CharSampler.step``: embedding, ``layer.step(x_t, states)`` per recurrent layer, the other layers in
inference) gives the same logits as the model run on the whole text at once.
"""
import numpy as np
import pytest

from helpers import assert_close
from lstmlab import backend
from lstmlab.apps.textgen import CharSampler, ModelConfig, SampleConfig, Vocabulary, build_model
from lstmlab.layers import cell_kinds

CELLS = list(cell_kinds())


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_sampler_steps_equal_the_whole_sequence_forward(cell, dropout):
    vocab = Vocabulary("\n abcdefgh")
    cfg = ModelConfig(vocab_size=len(vocab), layers=2, units=9, embedding=5, cell=cell, dropout=dropout)
    with backend.seeded(3):
        model = build_model(cfg, batch_size=1)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    text = "abc fed\nhag bad"
    ids = vocab.encode(text)
    whole = model(ids[None], training=False)[0]  # (T, V)
    sampler = CharSampler(model, vocab)
    stepped = np.stack([sampler.step(int(i)).copy() for i in ids])
    assert_close("logits", stepped, whole, 1e-5)


def test_generation_is_reproducible_and_uses_the_carried_state():
    vocab = Vocabulary("\n abcdefgh")
    with backend.seeded(1):
        model = build_model(ModelConfig(vocab_size=len(vocab), layers=1, units=8, embedding=4), batch_size=1)
    sampler = CharSampler(model, vocab)
    a = sampler.generate(SampleConfig(length=40, seed=5, prime="ab"))
    b = sampler.generate(SampleConfig(length=40, seed=5, prime="ab"))
    c = sampler.generate(SampleConfig(length=40, seed=5, prime="ba"))
    assert a == b and len(a) == 40 and set(a) <= set(vocab.chars)
    assert a != c  # the prime reaches the samples through the carried states


def test_stateful_projection_lstm_saves_and_loads_its_carried_states(tmp_path):
    """The carried h of a projection LSTM is proj_size wide, its c units wide: both survive a save."""
    from lstmlab import Sequential, layers, models

    model = Sequential([layers.Embedding(7, 3, batch_input_shape=(2, None)),
                        layers.LSTM(6, proj_size=4, stateful=True, return_sequences=True), layers.Dense(7)])
    x = np.array([[1, 2, 3], [4, 5, 6]])
    model(x)
    model.save(tmp_path / "m.safetensors")
    loaded = models.load_model(tmp_path / "m.safetensors")
    assert [s.shape for s in loaded.layers[1].states] == [(2, 4), (2, 6)]
    assert_close("next output", loaded(x), model(x), 0)


def test_one_step_call_after_training_uses_no_dropout_mask():
    """Recurrent dropout masks belong to one training call: a stacked cell's later one-step (inference) call
    equals the inference forward (the masks used to stay on the cells and leak into it)."""
    from lstmlab import layers

    layer = layers.RNN([layers.LSTMCell(5, recurrent_dropout=0.5), layers.GRUCell(4, recurrent_dropout=0.5)],
                       return_sequences=True)
    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype(np.float32)
    layer.rng = np.random.default_rng(1)
    layer(x, training=True)
    states, outs = None, []
    for t in range(x.shape[1]):  # right after the training call
        out, states = layer.step(x[:, t], states)
        outs.append(out)
    whole = layer(x, training=False)
    assert_close("outputs", np.stack(outs, axis=1), whole, 1e-5)
