"""The ``lstmlab`` command line: parse arguments, call the library, report in one line.

Exit status: 0 done; 1 training diverged (the last good checkpoint is kept);
2 bad input (one line on stderr, nothing overwritten); 130 / 143 stopped by
SIGINT / SIGTERM after saving a checkpoint.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import __version__
from .io.errors import ModelFileError

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


# Library messages name the config field; the user typed the option.
_OPTION = {"seq_len": "--seq-len", "batch_size": "--batch-size", "learning_rate": "--lr", "clipnorm": "--clip",
           "val_fraction": "--val-fraction", "eval_every": "--eval-every", "top_k": "--top-k", "task": "TASK"}
_OPTION.update({"learning_rate": "--lr", "test_size": "--test-size", "val_size": "--val-size", "cells": "--cells"})
for _name in ("length", "temperature", "seed", "epochs", "minutes", "layers", "units", "embedding", "dropout",
              "cell", "optimizer", "corpus", "vocab_size", "seeds", "steps"):
    _OPTION[_name] = f"--{_name}"
_OPTION.update({n: f"--{n.replace('_', '-')}" for n in ("lookback", "horizon", "stride", "season", "folds", "target",
                                                        "test_fraction")})


def _option_style(message: str) -> str:
    head, sep, rest = message.partition(":")
    return f"{_OPTION[head]}:{rest}" if sep and head in _OPTION else message


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"lstmlab: error: {message}\n")
    sys.stderr.flush()
    return code


# -- train ---------------------------------------------------------------------
def _add_train(sub):
    p = sub.add_parser("train", help="train a character-level text generator", description=(
        "Train a character-level LSTM language model (char-rnn style: contiguous streams, stateful truncated "
        "BPTT) on the built-in Python Language Reference text or on --corpus FILE, printing samples as it goes."))
    p.add_argument("--corpus", help="UTF-8 text file to train on (default: the built-in pydoc_data.topics text)")
    p.add_argument("--out", help="run directory (default: runs/textgen-<date>-<time>)")
    g = p.add_argument_group("model")
    g.add_argument("--layers", type=int, default=2, help="recurrent layers (default 2)")
    g.add_argument("--units", type=int, default=256, help="units per layer (default 256)")
    g.add_argument("--embedding", type=int, default=None,
                   help="embedding size (default: about 4 x sqrt(vocabulary), between 64 and 256)")
    g.add_argument("--cell", default="lstm", help="lstm, gru, rnn or another registered cell's short name (default lstm)")
    g.add_argument("--dropout", type=float, default=None,
                   help="dropout between layers (default: 0.2 for a text under a million characters, else 0)")
    g = p.add_argument_group("training")
    g.add_argument("--seq-len", type=int, default=100, help="characters per BPTT window (default 100)")
    g.add_argument("--batch-size", type=int, default=64, help="parallel streams (default 64)")
    g.add_argument("--optimizer", default="adam", help="adam, rmsprop, sgd or adagrad (default adam)")
    g.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
    g.add_argument("--clip", type=float, default=5.0, help="gradient norm clipping per tensor, 0 = off (default 5)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default 20)")
    g.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    g.add_argument("--steps", type=int, default=None, help="budget in optimizer steps (in all, not per resume)")
    g.add_argument("--val-fraction", type=float, default=0.1, help="held-out tail of the text (default 0.1)")
    g.add_argument("--eval-every", type=int, default=None, help="steps between validations (default: each epoch)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--sample-length", type=int, default=200, help="characters per progress sample (default 200)")
    g.add_argument("--no-samples", action="store_true", help="do not print samples during training")
    g = p.add_argument_group("run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    g.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    p.set_defaults(func=cmd_train)
    _track_given(p)


# Options whose argparse default is None, so a resumed run knows which ones the user typed; a new run fills
# the defaults declared on the parser (kept in _TRAIN_DEFAULTS). Option dest -> config field.
_TRACKED = {"layers": "layers", "units": "units", "embedding": "embedding", "cell": "cell", "dropout": "dropout",
            "seq_len": "seq_len", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "learning_rate",
            "clip": "clipnorm", "val_fraction": "val_fraction", "seed": "seed", "sample_length": None,
            "epochs": "epochs", "minutes": "minutes", "steps": "steps", "eval_every": "eval_every"}


def _track_given(parser) -> None:
    parser.set_defaults(train_defaults={dest: parser.get_default(dest) for dest in _TRACKED},
                        **{dest: None for dest in _TRACKED})


def _path_option(option: str, value):
    if value is not None and not value.strip():
        raise UsageError(f"{option}: expected a path, got {value!r}")
    return value


def _load_text(corpus: str):
    from .apps.textgen import builtin_corpus, read_corpus
    from .apps.textgen.config import BUILTIN

    return builtin_corpus() if corpus == BUILTIN else read_corpus(corpus)


def _check_train_memory(mcfg, tcfg) -> None:
    from .apps.memory import check, textgen_bytes

    options = {"--units": ("units", mcfg.units), "--embedding": ("embedding", mcfg.embedding),
               "--layers": ("layers", mcfg.layers), "--batch-size": ("batch_size", tcfg.batch_size),
               "--seq-len": ("seq_len", tcfg.seq_len)}
    check(lambda **kw: textgen_bytes(vocab=mcfg.vocab_size, cell=mcfg.cell, **kw), options,
          f"training {mcfg.layers} x {mcfg.cell.upper()}({mcfg.units}) with embedding {mcfg.embedding} on "
          f"batches of {tcfg.batch_size} x {tcfg.seq_len}")


def _resume(args, out, run, given):
    from .apps.textgen import TextTrainer, TrainConfig, load_checkpoint
    from .apps.textgen.resume import apply_to_model, plan_resume
    from .apps.textgen.trainer import text_digest

    if not os.path.exists(run.checkpoint):
        raise UsageError(f"--resume: {out!r} holds no checkpoint to resume (expected {run.checkpoint})")
    model, vocab, mcfg, tcfg, progress, digest = load_checkpoint(run.checkpoint)
    mcfg, tcfg, changes = plan_resume(mcfg, tcfg, progress.step_in_epoch, progress.epoch, given)
    _check_train_memory(mcfg, tcfg)
    if args.corpus is not None:
        tcfg = TrainConfig.from_dict({**tcfg.to_dict(), "corpus": os.path.abspath(args.corpus)})
    text = _load_text(tcfg.corpus)
    if text_digest(text) != digest:
        raise UsageError(f"--resume: the corpus {tcfg.corpus!r} is not the text this run was trained on")
    apply_to_model(model, mcfg, tcfg)
    trainer = TextTrainer(out, text, vocab, mcfg, tcfg, model=model, progress=progress,
                          sample_length=args.sample_length)
    removed = run.remove_stale_temps()
    trainer.repair_interrupted_writes()
    where = (f"epoch {progress.epoch + 1}/{tcfg.epochs}" if progress.epoch < tcfg.epochs else
             f"all {tcfg.epochs} epochs done; a larger --epochs continues it")
    print(f"resuming {out} at step {progress.global_step} ({where})"
          + (f"; removed {removed} stale temporary file(s) of an interrupted write" if removed else ""))
    print("changed on resume: " + (", ".join(changes) if changes else "nothing"))
    return trainer


def cmd_train(args) -> int:
    from .apps.textgen import ModelConfig, RunDir, TextTrainer, TrainConfig, Vocabulary
    from .apps.textgen.config import BUILTIN
    from .apps.textgen.trainer import checkpoint_step

    _path_option("--corpus", args.corpus)
    _path_option("--out", args.out)
    given = {field: getattr(args, dest) for dest, field in _TRACKED.items() if field and getattr(args, dest) is not None}
    for dest, default in args.train_defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    if args.sample_length < 1:  # before any training, not after the first validation
        raise UsageError(f"--sample-length: expected a positive integer, got {args.sample_length}")
    out = args.out or os.path.join("runs", time.strftime("textgen-%Y%m%d-%H%M%S"))
    run = RunDir(out)
    if args.resume and args.force:
        raise UsageError("--resume and --force: expected at most one of them")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out: {out!r} is a file; expected a directory")
    if args.resume:
        trainer = _resume(args, out, run, given)
        tcfg = trainer.tcfg
    else:
        if run.holds_run() and not args.force:
            raise UsageError(f"--out: {out!r} already holds a run; use --resume to continue it or --force to "
                             "overwrite it")
        tcfg = TrainConfig(seq_len=args.seq_len, batch_size=args.batch_size, optimizer=args.optimizer,
                           learning_rate=args.lr, clipnorm=args.clip or None,
                           epochs=20 if args.epochs is None else args.epochs, minutes=args.minutes, steps=args.steps,
                           val_fraction=args.val_fraction, seed=args.seed, eval_every=args.eval_every,
                           corpus=os.path.abspath(args.corpus) if args.corpus is not None else BUILTIN)
        text = _load_text(tcfg.corpus)
        vocab = Vocabulary.from_text(text)
        mcfg = ModelConfig(vocab_size=len(vocab), layers=args.layers, units=args.units, embedding=args.embedding,
                           dropout=args.dropout, cell=args.cell)
        _check_train_memory(mcfg, tcfg)
        trainer = TextTrainer(out, text, vocab, mcfg, tcfg, sample_length=args.sample_length)
        if args.force and os.path.isdir(out):
            run.clear()
        corpus_name = "the built-in Python Language Reference" if tcfg.corpus == BUILTIN else tcfg.corpus
        print(f"corpus: {corpus_name}: {len(text):,} characters, vocabulary of {len(vocab)}; "
              f"{len(trainer.train_ids):,} for training, {len(trainer.val_ids):,} held out")
        unseen, occurrences = trainer.unseen_in_training()
        if unseen:
            print(f"held-out part: {len(unseen)} distinct characters ({occurrences:,} occurrences) never occur in "
                  "the training part")
        print(f"model: {mcfg.layers} x {mcfg.cell.upper()}({mcfg.units}), embedding {mcfg.embedding}, "
              f"{trainer.model.count_params():,} parameters; run directory: {out}")
    from .apps.runs import Diverged, install_stop_handlers

    install_stop_handlers(trainer)

    try:
        reason = trainer.train(samples=not args.no_samples)
    except Diverged as exc:
        step = checkpoint_step(run.checkpoint)  # what is on disk, not how far training got
        kept = (f"the last good checkpoint (step {step}) in {out} is intact; to rescue the run, resume it with a "
                f"lower learning rate: lstmlab train --resume --out {out} --lr {tcfg.learning_rate / 10:g}"
                if step is not None else "no checkpoint had been written yet")
        return _fail(f"{exc}; {kept}", code=1)
    if reason == "interrupted":
        return 128 + int(trainer.stop_signal)
    p = trainer.progress
    print(f"done: {p.global_step} steps; best validation loss {p.best_val:.4f} nats "
          f"({p.best_val / 0.6931471805599453:.4f} bits/char) at step {p.best_step}")
    print(f"generate more with: lstmlab generate {out} --length 500 --temperature 0.5")
    return 0


# -- generate ------------------------------------------------------------------
def _add_generate(sub):
    p = sub.add_parser("generate", help="sample text from a trained run", description=(
        "Stream text from a trained character model, one character at a time (stateful single-step sampling)."))
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from 'lstmlab train' (or a checkpoint file)")
    p.add_argument("--prime", default="", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is more conservative (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the K most likely characters")
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="bfloat16: the LSTM layers' products on bf16 operands, float32 sums (inference; "
                        "in C on CPUs with AVX512_BF16); default float32")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from .apps.textgen import CharSampler, SampleConfig, load_checkpoint
    from .apps.textgen.model import with_dtype

    cfg = SampleConfig(length=args.length, temperature=args.temperature, top_k=args.top_k, prime=args.prime,
                       seed=args.seed)
    from .apps.runs import run_checkpoint

    model, vocab, *_ = load_checkpoint(run_checkpoint(args.run))
    sampler = CharSampler(with_dtype(model, args.dtype), vocab)
    vocab.encode(cfg.prime, argument="--prime")  # refuse unknown characters before printing anything
    out = sys.stdout
    out.write(cfg.prime)

    def emit(c):
        out.write(c)
        out.flush()

    sampler.generate(cfg, on_char=emit)
    out.write("\n")
    return 0


# -- export --------------------------------------------------------------------
def _add_export(sub):
    p = sub.add_parser("export", help="export a trained run to ONNX", description=(
        "Write the sampling model of a text-generation run as ONNX (recurrent states as graph inputs and "
        "outputs, for one character at a time) and its vocabulary as JSON next to it."))
    p.add_argument("run", metavar="RUN_DIR", help="a run directory from 'lstmlab train' (or a checkpoint file)")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="the export format (onnx)")
    p.add_argument("--out", help="the .onnx file to write (default RUN_DIR/model.onnx)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from .apps.textgen.onnx_export import export_run

    _path_option("--out", args.out)
    if args.out is not None and not args.out.endswith(".onnx"):
        raise UsageError(f"--out: expected a path ending in .onnx, got {args.out!r}")
    onnx_path, vocab_path = export_run(args.run, args.out)
    print(f"wrote {onnx_path} and {vocab_path}")
    return 0


# -- entry point ---------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lstmlab", description="LSTM networks from the equations up, on NumPy.")
    parser.add_argument("--version", action="version", version=f"lstmlab {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_train(sub)
    _add_generate(sub)
    _add_export(sub)
    from .apps.longrange.cli import add_experiment

    add_experiment(sub)
    from .apps.forecast.command import add_parser as add_forecast
    add_forecast(sub)
    from .apps.classify.command import add_parser as add_classify
    add_classify(sub)
    from .apps.tune.command import add_parser as add_tune
    add_tune(sub)
    from .apps.inspect.command import add_parser as add_inspect
    add_inspect(sub)
    return parser


def main(argv=None) -> int:
    try:  # everything inside: a Ctrl-C while the library is still importing is one line, not a traceback
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return args.func(args)
    except UsageError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # e.g. piped into head: not an error
        return 0
    except ModelFileError as exc:  # about a field inside a file: never shown as an option the user typed
        return _fail(str(exc))
    except (ValueError, OSError) as exc:
        return _fail(_option_style(str(exc)))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)


if __name__ == "__main__":
    sys.exit(main())
