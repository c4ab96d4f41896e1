"""Classification runs (``lstmlab classify``, kind ``lstmlab.classify``): the model, its tokenizer and labels, and
the texts the page shows.

A classifier reads one text at a time from a zero state, so the page shows several texts one after the
other, each on its own line, one token (a character or a word) per cell, cut at the run's ``maxlen`` as
training and ``classify predict`` cut them. The texts are

* by default a few examples of the run's held-out test part: the run's data are read again from the path its
  checkpoint saved and split with the same seeded, stratified split (:func:`..classify.split.prepare`), after
  checking that they are still the examples it was trained on;
* with ``--text FILE``, the lines of FILE, one example per line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..classify.tokens import split_tokens
from .data import Trace, check_supported, collect_examples

KIND = "lstmlab.classify"


@dataclass
class ClassifyRun:
    model: object
    tokenizer: object  # classify.tokens.Tokenizer: level, maxlen, ids(text)
    labels: list
    path: str  # the checkpoint file
    description: str
    train_config: object  # classify.config.TrainConfig: where the data are and how they were split
    data_sha256: str | None


def load_classify_run(run_dir: str, path: str) -> ClassifyRun:
    """Load the classification run whose checkpoint is ``path``; refuse models with other cells in one line."""
    from ..classify.trainer import load_checkpoint

    model, tokenizer, labels, mcfg, tcfg, progress, extra = load_checkpoint(path)
    try:
        check_supported(model)
    except ValueError as exc:
        raise ValueError(f"RUN_DIR: {run_dir!r}: {str(exc).removeprefix('model: ')}") from None
    best = f", best validation loss {progress.best_val:.4f} nats" if progress.best_val is not None else ""
    desc = (f"classifier {mcfg.layers} x LSTM({mcfg.units}) over {len(labels)} classes, {tokenizer.level} tokens "
            f"(at most {tokenizer.maxlen} per text), step {progress.global_step}{best}")
    return ClassifyRun(model, tokenizer, list(labels), path, desc, tcfg, extra.get("data_sha256"))


def held_out_examples(run: ClassifyRun, n: int) -> tuple[list, list, str]:
    """``(texts, true labels, where they come from)``: ``n`` examples of the run's test part, the classes taking
    turns (so each class shows up), in the split's order."""
    from ..classify import data as D
    from ..classify.split import prepare

    tcfg = run.train_config
    fix = "give --text FILE with one example per line"
    try:
        data = D.load(tcfg.data, tcfg.text, tcfg.label)
    except ValueError as exc:
        raise ValueError(f"RUN_DIR: cannot read the run's data for its held-out examples ({exc}); {fix}") from None
    if run.data_sha256 is not None and data.digest() != run.data_sha256:
        raise ValueError(f"RUN_DIR: the data {tcfg.data!r} changed since the run was trained, so its held-out part "
                         f"is not what the run held out; {fix}")
    test = prepare(data, tcfg, tokenizer=run.tokenizer)
    by_class = [[k for k, y in enumerate(test.y["test"]) if y == c] for c in range(len(test.labels))]
    order = [ks[j] for j in range(max(map(len, by_class))) for ks in by_class if j < len(ks)]  # classes in turn
    picked = order[:n]
    name = "the built-in reviews" if tcfg.data == D.BUILTIN else os.path.basename(tcfg.data)
    return ([test.texts["test"][k] for k in picked], [test.labels[test.y["test"][k]] for k in picked],
            f"{len(picked)} held-out test examples of {name}")


def examples_from_file(path: str, n: int | None) -> tuple[list, None, str]:
    """The non-blank lines of ``path`` (the first ``n``), one example each."""
    from ..textgen import read_corpus
    from .source import MAX_FILE_BYTES

    if not path.strip():
        raise ValueError(f"--text: expected a path, got {path!r}")
    try:
        text = read_corpus(path, max_bytes=MAX_FILE_BYTES)
    except ValueError as exc:
        raise ValueError(str(exc).replace("corpus:", "--text:", 1)) from None
    lines = [line for line in text.splitlines() if line.strip()]  # read_corpus refused a blank file
    lines = lines if n is None else lines[:n]
    return lines, None, f"{len(lines)} example(s) of {os.path.basename(path)}"


def display_tokens(text: str, level: str, maxlen: int) -> list:
    """What the model reads of ``text`` (its first ``maxlen`` tokens), one display string per token: each
    character, or each (lower-cased) word followed by a space."""
    toks = split_tokens(text, level)[:maxlen]
    return toks if level == "char" else [t + " " for t in toks]


def trace_examples(run: ClassifyRun, texts: list, targets: list | None, what: str) -> Trace:
    """Run the classifier over each text from a zero state; the traces are joined, one text per line."""
    examples = []
    for k, text in enumerate(texts):
        tokens = display_tokens(text, run.tokenizer.level, run.tokenizer.maxlen)
        if not tokens:
            raise ValueError(f"{what}: example {k + 1} ({text[:30]!r}) has no {run.tokenizer.level} tokens")
        if k < len(texts) - 1:
            last = tokens[-1][:-1] if run.tokenizer.level == "word" else tokens[-1]  # a word without its space
            tokens[-1] = last + "\n"  # the next text starts on a line of its own
        ids = run.tokenizer.ids(text)[:len(tokens)]  # (T_k,) never 0: padding is not part of a text
        examples.append((ids, tokens))
    vocab = ["<pad>", "<oov>", *run.tokenizer.tokens]
    trace = collect_examples(run.model, examples, vocab, run.labels, targets)
    trace.token_kind = "character" if run.tokenizer.level == "char" else "word"
    return trace
