"""Text-generation quality in a fixed time budget: lstmlab against PyTorch nn.LSTM, same recipe, same data.

    python benchmarks/bench_textgen.py               # 5 minutes each (about 11 minutes in all)
    python benchmarks/bench_textgen.py --minutes 1   # a quicker look

The default recipe of ``lstmlab train``: the built-in Python Language Reference
text, the last 10% held out; embedding 64, 2 x LSTM(256), sequence 100, batch
64, Adam 2e-3, gradient norm clipped at 5 per tensor (Keras's clipnorm);
char-rnn streams with stateful truncated BPTT and the same seeded epoch
offsets. Both are validated the same way (the held-out text as contiguous
streams, state carried) at each epoch end and when the budget runs out.
Prints the final validation loss of each (nats and bits per character) and
a sample from lstmlab's model.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "src"))

from lstmlab.apps.textgen import (  # noqa: E402
    ModelConfig, SampleConfig, TextTrainer, TrainConfig, Vocabulary, builtin_corpus)
from lstmlab.apps.textgen.corpus import streams, windows  # noqa: E402
from lstmlab.apps.textgen.model import CharSampler  # noqa: E402

from bench_lstm import clip_each, torch_char_model  # noqa: E402  (this folder: the same PyTorch model)


def run_lstmlab(text, vocab, minutes, seed):
    mcfg = ModelConfig(vocab_size=len(vocab))
    tcfg = TrainConfig(minutes=minutes, epochs=1000, seed=seed)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = TextTrainer(run_dir, text, vocab, mcfg, tcfg, out=io.StringIO())
        start = time.monotonic()
        trainer.train(samples=False)
        elapsed = time.monotonic() - start
        p = trainer.progress
        final = p.history[-1]["val_loss"]
        sample = CharSampler(trainer.model, vocab).generate(SampleConfig(length=400, temperature=0.5, seed=1,
                                                                         prime="The "))
    return dict(steps=p.global_step, val=final, best=p.best_val, elapsed=elapsed, sample=sample,
                trainer=trainer)


def run_torch(trainer, minutes, seed):
    """The same loop in PyTorch, reusing the lstmlab trainer's data split, streams and offsets."""
    import torch

    torch.manual_seed(seed)
    V, B, S = len(trainer.vocab), trainer.tcfg.batch_size, trainer.tcfg.seq_len

    net = torch_char_model(V)
    opt = torch.optim.Adam(net.parameters(), lr=trainer.tcfg.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()

    def validate():
        val = trainer.val_ids
        n = max(1, min(B, (len(val) - 1) // S))
        rows = streams(val, n)
        seq = min(S, rows.shape[1] - 1)
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for x, y in windows(rows, seq):
                logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
                total += loss_fn(logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1)).item() * y.size
                count += y.size
        return total / count

    deadline = time.monotonic() + 60 * minutes
    steps, epoch = 0, 0
    while True:
        rows = trainer._epoch_rows(epoch)
        state = None
        for k, (x, y) in enumerate(windows(rows, S)):
            if k >= trainer.steps_per_epoch:
                break
            logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
            state = tuple(s.detach() for s in state)  # truncated BPTT: carry the state, not its graph
            loss = loss_fn(logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1))
            opt.zero_grad()
            loss.backward()
            clip_each(net, trainer.tcfg.clipnorm)
            opt.step()
            steps += 1
            if time.monotonic() >= deadline:
                return dict(steps=steps, val=validate())
        epoch += 1
        validate()  # the per-epoch validation lstmlab's trainer does too, inside the same budget


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    text = builtin_corpus()
    vocab = Vocabulary.from_text(text)
    print(f"corpus: built-in Python Language Reference, {len(text):,} characters, vocabulary {len(vocab)}; "
          f"budget {args.minutes:g} minutes each\n")
    ours = run_lstmlab(text, vocab, args.minutes, args.seed)
    theirs = run_torch(ours["trainer"], args.minutes, args.seed)
    ln2 = math.log(2)
    print("| | steps in budget | validation loss (nats) | bits per character |")
    print("|---|---:|---:|---:|")
    print(f"| lstmlab | {ours['steps']} | {ours['val']:.4f} | {ours['val'] / ln2:.4f} |")
    print(f"| PyTorch nn.LSTM | {theirs['steps']} | {theirs['val']:.4f} | {theirs['val'] / ln2:.4f} |")
    verdict = "at least as low as" if ours["val"] <= theirs["val"] else "HIGHER than"
    print(f"\nlstmlab's validation loss is {verdict} PyTorch's ({ours['val']:.4f} vs {theirs['val']:.4f}).\n")
    print("Sample from lstmlab's model (prime 'The ', temperature 0.5):\n")
    print("```\nThe " + ours["sample"] + "\n```")


if __name__ == "__main__":
    main()
