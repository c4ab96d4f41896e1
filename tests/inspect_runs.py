"""Small text-generation runs for the inspect tests: a text where being inside double quotes is easy to track."""
import io

import numpy as np

QUOTE_PATTERN = r'("[^"\n]*)"'  # the group: from an opening quote up to (not including) its closing one


def quote_text(n_chars: int, seed: int = 0) -> str:
    """Lines of lowercase words with quoted stretches in UPPERCASE: the case of the next letter depends on
    whether the text is inside quotes, so a model that predicts well has to track it."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghij"))
    out, size = [], 0
    while size < n_chars:
        words = []
        for _ in range(rng.integers(3, 8)):
            w = "".join(rng.choice(letters, rng.integers(1, 5)))
            if rng.random() < 0.3:  # a quoted stretch of 1-4 words, uppercase
                inner = " ".join("".join(rng.choice(letters, rng.integers(1, 5))).upper()
                                 for _ in range(rng.integers(1, 5)))
                w = f'"{inner}"'
            words.append(w)
        line = " ".join(words) + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n_chars]


def train_run(run_dir, text: str, *, layers: int = 1, units: int = 16, steps: int = 300, cell: str = "lstm",
              corpus=None, seed: int = 0):
    """Train a character model on ``text`` for ``steps`` steps; returns the trainer (its run dir is written)."""
    from lstmlab.apps.textgen import ModelConfig, TextTrainer, TrainConfig, Vocabulary

    vocab = Vocabulary.from_text(text)
    mcfg = ModelConfig(vocab_size=len(vocab), layers=layers, units=units, embedding=16, dropout=0.0, cell=cell)
    tcfg = TrainConfig(seq_len=40, batch_size=16, learning_rate=1e-2, steps=steps, eval_every=steps, seed=seed,
                       corpus=str(corpus) if corpus is not None else "builtin:pydoc_data.topics")
    trainer = TextTrainer(str(run_dir), text, vocab, mcfg, tcfg, out=io.StringIO())
    trainer.train(samples=False)
    return trainer
