"""Measure the choices of ``lstmlab train``'s recipe: each variant trained for the same number of steps.

    python benchmarks/recipe_sweep.py --corpus benchmarks/data/songci.txt --steps 300 --eval-every 50 \\
        --variant keras-init:embedding_std=none,unigram_bias=false --variant default: --variant e128:embedding=128

A variant is ``NAME:key=value,...`` over the fields of the model and training
configs (``embedding_std``, ``unigram_bias``, ``embedding``, ``dropout``,
``learning_rate``, ``units``, ...); everything else is ``lstmlab train``'s
default. Each variant is trained from the same seed on the same streams, and
its validation loss is recorded every ``--eval-every`` steps. Steps, not
minutes, so that the numbers do not depend on the machine's load; the seconds
per step are reported beside them. Writes ``--out`` (``.json`` with every
curve, ``.md`` with the table and ``.png`` with the curves).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "src"))

from lstmlab.apps.textgen import (  # noqa: E402
    ModelConfig, TextTrainer, TrainConfig, Vocabulary, builtin_corpus, read_corpus)
from lstmlab.apps.textgen.corpus import split_ids  # noqa: E402

MODEL_FIELDS = set(ModelConfig.__dataclass_fields__)
TRAIN_FIELDS = set(TrainConfig.__dataclass_fields__)


def parse_value(v: str):
    low = v.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_variant(spec: str):
    name, _, rest = spec.partition(":")
    overrides = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    unknown = set(overrides) - MODEL_FIELDS - TRAIN_FIELDS
    if unknown:
        raise SystemExit(f"--variant {spec!r}: unknown field(s) {sorted(unknown)}")
    return name, {k: parse_value(v) for k, v in overrides.items()}


def unigram_entropy(train_ids, val_ids, V: int) -> tuple[float, float]:
    """Entropy of the training text's unigram model, and its cross-entropy on the held-out text (add-1/2)."""
    import numpy as np

    counts = np.bincount(train_ids, minlength=V) + 0.5
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()), float(-np.log(p[val_ids]).mean())


def run(text, vocab, name, overrides, steps, eval_every, seed):
    mcfg = ModelConfig(vocab_size=len(vocab), **{k: v for k, v in overrides.items() if k in MODEL_FIELDS})
    tcfg = TrainConfig(epochs=1000, steps=steps, eval_every=eval_every, seed=seed,
                       **{k: v for k, v in overrides.items() if k in TRAIN_FIELDS})
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = TextTrainer(run_dir, text, vocab, mcfg, tcfg, out=io.StringIO())
        start = time.monotonic()
        trainer.train(samples=False)
        elapsed = time.monotonic() - start
    h = trainer.progress.history
    return {"name": name, "overrides": overrides, "steps": [r["step"] for r in h],
            "train": [r["train_loss"] for r in h], "val": [r["val_loss"] for r in h],
            "best_val": trainer.progress.best_val, "s_per_step": elapsed / max(1, trainer.progress.global_step)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=None, help="UTF-8 text (default: the built-in corpus)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append")
    parser.add_argument("--render", help="only write the .md and .png of an earlier run's .json")
    parser.add_argument("--include", help="a .json of an earlier run (same corpus and seed, as many steps or "
                        "more): its variants are reported too, cut at --steps (training is deterministic)")
    parser.add_argument("--out", required=True, help="path prefix of the .json / .md / .png results")
    args = parser.parse_args()
    if args.render:
        with open(args.render) as f:
            write_reports(json.load(f), args.out)
        return
    if not args.variant:
        raise SystemExit("--variant: expected at least one")
    text = builtin_corpus() if args.corpus is None else read_corpus(args.corpus)
    vocab = Vocabulary.from_text(text)
    train_ids, val_ids = split_ids(vocab.encode(text), TrainConfig().val_fraction)
    h_train, h_val = unigram_entropy(train_ids, val_ids, len(vocab))
    corpus = args.corpus or "built-in"
    print(f"corpus {corpus}: {len(text):,} characters, vocabulary {len(vocab)}; unigram entropy of the training "
          f"part {h_train:.4f} nats, unigram cross-entropy on the held-out part {h_val:.4f}", flush=True)
    results = []
    if args.include:
        with open(args.include) as f:
            earlier = json.load(f)
        if (earlier["corpus"], earlier["seed"]) != (corpus, args.seed) or earlier["steps"] < args.steps:
            raise SystemExit(f"--include {args.include!r}: another corpus, seed or fewer steps")
        for r in earlier["results"]:
            keep = [k for k, s in enumerate(r["steps"]) if s <= args.steps]
            results.append({**r, **{key: [r[key][k] for k in keep] for key in ("steps", "train", "val")},
                            "best_val": min(r["val"][k] for k in keep)})
    for spec in args.variant:
        name, overrides = parse_variant(spec)
        r = run(text, vocab, name, overrides, args.steps, args.eval_every, args.seed)
        results.append(r)
        print(f"{name:>16}: val {' '.join(f'{v:.3f}' for v in r['val'])}  ({r['s_per_step']:.2f} s/step)",
              flush=True)
        summary = {"corpus": corpus, "chars": len(text), "vocab": len(vocab), "unigram_train": h_train,
                   "unigram_val": h_val, "steps": args.steps, "seed": args.seed, "results": results}
        with open(args.out + ".json", "w") as f:
            json.dump(summary, f, indent=1)
    write_reports(summary, args.out)


def write_reports(summary: dict, out: str) -> None:
    """The .md table and the .png curves of a sweep's results (also from a saved .json: ``--render``)."""
    results, corpus, h_val = summary["results"], summary["corpus"], summary["unigram_val"]
    text_len, V, steps, seed = summary["chars"], summary["vocab"], summary["steps"], summary["seed"]
    with open(out + ".md", "w") as f:
        f.write(f"Corpus {corpus}: {text_len:,} characters, vocabulary {V}; {steps} steps of "
                f"64 x 100 characters, seed {seed}. Unigram cross-entropy of the held-out part: "
                f"{h_val:.4f} nats.\n\n| variant | overrides | " +
                " | ".join(f"val @{s}" for s in results[0]["steps"]) + " | s/step |\n|---|---|" +
                "---:|" * (len(results[0]["steps"]) + 1) + "\n")
        for r in results:
            ov = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "(defaults)"
            f.write(f"| {r['name']} | {ov} | " + " | ".join(f"{v:.4f}" for v in r["val"]) +
                    f" | {r['s_per_step']:.2f} |\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(r["steps"], r["val"], marker="o", ms=3, label=r["name"])
    ax.axhline(h_val, color="gray", ls="--", lw=1, label="unigram model")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_title(f"recipe choices on {os.path.basename(corpus)} (V = {V})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=110)


if __name__ == "__main__":
    main()
