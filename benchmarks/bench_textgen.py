"""Text-generation quality and speed in equal wall time: ``lstmlab train``'s defaults against PyTorch.

    python benchmarks/bench_textgen.py                                   # built-in corpus, 3 and 10 minutes
    python benchmarks/bench_textgen.py --corpus benchmarks/data/songci.txt --minutes 3 10
    python benchmarks/bench_textgen.py --minutes 1                       # a quicker look

Contenders, on the same text, split, streams and seeded epoch offsets:

* lstmlab: ``lstmlab train``'s recipe exactly as the command builds it
  (``TextTrainer`` with the default model and training configs).
* PyTorch: the stock ``nn.Embedding -> nn.LSTM -> nn.Linear`` with its own
  default initialization, the same sizes and the same recipe (sequence 100,
  batch 64, Adam 2e-3, each gradient's norm clipped at 5, stateful truncated
  BPTT, a validation pass at each epoch end inside the budget).

Each contender trains once for the largest budget; at each smaller budget its
clock stops for a validation of the held-out text (streams with the state
carried, in nats per character), which is not charged to its time.
Characters per second are the training characters of the whole run over its
training time. Each contender runs in its own process (PyTorch's OpenMP
threads would otherwise slow lstmlab's). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "src"))

from lstmlab.apps.textgen import (  # noqa: E402
    ModelConfig, SampleConfig, TextTrainer, TrainConfig, Vocabulary, builtin_corpus, read_corpus)
from lstmlab.apps.textgen.corpus import streams, windows  # noqa: E402
from lstmlab.apps.textgen.model import CharSampler  # noqa: E402


def make_trainer(corpus, run_dir, seed, minutes):
    text = builtin_corpus() if corpus is None else read_corpus(corpus)
    vocab = Vocabulary.from_text(text)
    return TextTrainer(run_dir, text, vocab, ModelConfig(vocab_size=len(vocab)),
                       TrainConfig(minutes=minutes, epochs=10_000, seed=seed), out=io.StringIO())


def run_lstmlab(corpus, budgets, seed, prime):
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = make_trainer(corpus, run_dir, seed, budgets[0])
        points, spent = [], 0.0
        for minutes in budgets:
            trainer.tcfg.minutes = minutes - spent
            trainer.train(samples=False)  # ends with a validation (outside the budget) when the budget runs out
            spent = minutes
            p = trainer.progress
            points.append({"minutes": minutes, "steps": p.global_step, "val": p.history[-1]["val_loss"]})
        train_seconds = trainer.progress.elapsed
        sample = CharSampler(trainer.model, trainer.vocab).generate(
            SampleConfig(length=300, temperature=0.5, seed=1, prime=prime))
    chars = trainer.progress.global_step * trainer.tcfg.batch_size * trainer.tcfg.seq_len
    return {"points": points, "chars_per_s": chars / train_seconds, "sample": prime + sample}


def run_torch(corpus, budgets, seed):
    """The same loop in PyTorch, reusing an lstmlab trainer's data split, streams and offsets."""
    import torch

    from bench_lstm import clip_each, torch_char_model

    torch.manual_seed(seed)
    trainer = make_trainer(corpus, tempfile.mkdtemp(), seed, budgets[0])
    V, B, S = len(trainer.vocab), trainer.tcfg.batch_size, trainer.tcfg.seq_len
    net = torch_char_model(V)
    opt = torch.optim.Adam(net.parameters(), lr=trainer.tcfg.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()

    def validate():
        rows = streams(trainer.val_ids, max(1, min(B, (len(trainer.val_ids) - 1) // S)))
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for x, y in windows(rows, min(S, rows.shape[1] - 1)):
                logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
                target = torch.from_numpy(y.astype(np.int64)).reshape(-1)
                total += loss_fn(logits.reshape(-1, V), target).item() * y.size
                count += y.size
        return total / count

    points, steps, epoch, clock = [], 0, 0, 0.0
    pending = list(budgets)
    while pending:
        rows = trainer._epoch_rows(epoch)
        state = None
        for k, (x, y) in enumerate(windows(rows, S)):
            if k >= trainer.steps_per_epoch or not pending:
                break
            t0 = time.monotonic()
            logits, state = net(torch.from_numpy(x.astype(np.int64)), state)
            state = tuple(s.detach() for s in state)  # truncated BPTT: carry the state, not its graph
            loss = loss_fn(logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1))
            opt.zero_grad()
            loss.backward()
            clip_each(net, trainer.tcfg.clipnorm)
            opt.step()
            steps += 1
            clock += time.monotonic() - t0
            if clock >= 60 * pending[0]:
                points.append({"minutes": pending.pop(0), "steps": steps, "val": validate()})
        else:
            t0 = time.monotonic()
            validate()  # the per-epoch validation lstmlab's trainer does too, inside the budget
            clock += time.monotonic() - t0
        epoch += 1
    return {"points": points, "chars_per_s": steps * B * S / clock}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=None, help="UTF-8 text file (default: the built-in corpus)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[3.0, 10.0], help="budgets (default 3 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prime", default=None, help="sample prime (default: the first line of the corpus)")
    parser.add_argument("--contender", choices=["lstmlab", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    budgets = sorted(args.minutes)
    if args.corpus is not None:
        args.corpus = os.path.abspath(args.corpus)  # the contenders run in this folder
    if args.contender:  # one contender, in this process; results as JSON on the last line
        if args.contender == "lstmlab":
            result = run_lstmlab(args.corpus, budgets, args.seed, args.prime)
        else:
            result = run_torch(args.corpus, budgets, args.seed)
        print(json.dumps(result, ensure_ascii=False))
        return
    text = builtin_corpus() if args.corpus is None else read_corpus(args.corpus)
    vocab = Vocabulary.from_text(text)
    name = "the built-in Python Language Reference" if args.corpus is None else os.path.basename(args.corpus)
    prime = args.prime if args.prime is not None else text.split("\n", 1)[0][:20]
    print(f"corpus: {name}, {len(text):,} characters, vocabulary {len(vocab)}; budgets "
          f"{', '.join(f'{m:g}' for m in budgets)} minutes\n", flush=True)
    results = {}
    for contender in ("lstmlab", "torch"):
        cmd = [sys.executable, os.path.abspath(__file__), "--contender", contender, "--seed", str(args.seed),
               "--prime", prime, "--minutes", *map(str, budgets)] + (["--corpus", args.corpus] if args.corpus else [])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
        if out.returncode != 0:
            sys.exit(f"{contender} failed:\n{out.stderr}")
        results[contender] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, theirs = results["lstmlab"], results["torch"]
    print("| budget | lstmlab steps | lstmlab val (nats) | PyTorch steps | PyTorch val (nats) | difference |")
    print("|---:|---:|---:|---:|---:|---:|")
    for a, b in zip(ours["points"], theirs["points"]):
        print(f"| {a['minutes']:g} min | {a['steps']} | {a['val']:.4f} | {b['steps']} | {b['val']:.4f} | "
              f"{a['val'] - b['val']:+.4f} |")
    ratio = ours["chars_per_s"] / theirs["chars_per_s"]
    print(f"\ntraining characters per second: lstmlab {ours['chars_per_s']:,.0f}, PyTorch "
          f"{theirs['chars_per_s']:,.0f} ({ratio:.2f}x)")
    print(f"\nSample from lstmlab's model after {budgets[-1]:g} minutes (temperature 0.5):\n")
    print("```\n" + ours["sample"] + "\n```")


if __name__ == "__main__":
    main()
