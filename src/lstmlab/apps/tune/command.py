"""``lstmlab tune [train options...] --trials N ...``: arguments -> a study of ``lstmlab train`` runs;
``lstmlab tune forecast [forecast options...] --trials N ...``: the same for ``lstmlab forecast`` runs;
``lstmlab tune classify [classify options...] --trials N ...``: the same for ``lstmlab classify`` runs.

Every option of the tuned command is accepted: a typed one is fixed for every trial (and leaves the search
space), the others are the command's defaults. ``--minutes-per-trial`` bounds each trial, ``--timeout`` the whole
search; ``--workers K`` runs K processes on the shared study; ``--storage URL`` puts the study in a database
that workers on other machines join (the same command with the same --storage and --out on a shared disk,
or each with its own --out: the trials' run directories are written where their worker runs).
A forecast trial is bounded by its ``--epochs``: there is no ``--minutes-per-trial`` for it; a classify
trial by its ``--epochs`` and ``--steps``, and ``--minutes-per-trial`` (or classify's ``--minutes``).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import time

from .space import load_space, without_fixed

REPORT_FILES = ("report.md", "history.png", "importances.png", "lr_vs_loss.png")


def add_parser(sub) -> None:
    from ... import cli

    scratch = cli._Parser(prog="lstmlab", add_help=False).add_subparsers(parser_class=cli._Parser)
    cli._add_train(scratch)  # the very options of lstmlab train, with their defaults and tracking
    p = sub.add_parser("tune", parents=[scratch.choices["train"]], conflict_handler="resolve",
                       help="search lstmlab train's (forecast's, classify's) hyperparameters with Optuna", description=(
                           "Search the hyperparameters of 'lstmlab train' with Optuna (the 'tune' extra). The "
                           "default space follows DL4J's advice: log-uniform learning rate first, then units, "
                           "layers, dropout, optimizer, clipping and the cells' activation; a train option you "
                           "type is fixed. Each trial is an ordinary run directory in OUT/trials/NNN. "
                           "'lstmlab tune forecast ...' searches 'lstmlab forecast' instead, 'lstmlab tune "
                           "classify ...' 'lstmlab classify'."))
    _add_search(p)
    p.set_defaults(func=cmd_tune)
    actions = p.add_subparsers(dest="tune_command", parser_class=type(p), metavar="{forecast,classify}")
    _add_forecast(actions)
    _add_classify(actions)


def _add_search(p, inherit: bool = False) -> None:
    """The options of the search itself. ``inherit``: the subcommand's options default to nothing, so that
    the values (typed or default) of ``lstmlab tune`` before the subcommand's name stay (argparse copies a
    subparser's defaults over them)."""
    d = (lambda value: argparse.SUPPRESS) if inherit else (lambda value: value)
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=int, default=d(20), help="finished trials the study should hold (default 20)")
    if not inherit:  # a forecast trial is bounded by its --epochs
        g.add_argument("--minutes-per-trial", type=float, default=None, help="wall-clock budget of each trial")
    g.add_argument("--timeout", type=float, default=d(None), help="seconds after which no new trial starts")
    g.add_argument("--workers", type=int, default=d(1), help="local worker processes sharing the study (default 1)")
    g.add_argument("--storage", default=d(None), help="Optuna storage URL (default: sqlite in OUT/study.db), e.g. "
                   "postgresql://user:password@host/db for workers on many machines")
    g.add_argument("--study-name", default=d("lstmlab-tune"), help="the study's name in the storage (default "
                   "lstmlab-tune)")
    g.add_argument("--space", default=d(None), help="search space file (.toml or .json) replacing the default")
    g.add_argument("--pruner", default=d(None), choices=["median", "hyperband", "none"],
                   help="stop unpromising trials at a validation (default median; a resumed study keeps its own)")
    g.add_argument("--out", default=d(None), help="study directory (default runs/tune-<date>-<time>)")
    g.add_argument("--resume", action="store_true", default=d(False), help="continue the study in --out / --storage")
    g.add_argument("--force", action="store_true", default=d(False), help="delete a study already there and start anew")


def _add_forecast(actions) -> None:
    """``lstmlab tune forecast``: every option of ``lstmlab forecast`` that describes a run (copied from its
    parser, so names, types and help stay one), and the search options."""
    from ... import cli
    from ..forecast.command import _TRACKED, add_parser as add_forecast

    scratch = cli._Parser(prog="lstmlab", add_help=False).add_subparsers(parser_class=cli._Parser)
    add_forecast(scratch)
    p = actions.add_parser("forecast", help="search lstmlab forecast's hyperparameters", description=(
        "Search the hyperparameters of 'lstmlab forecast' with Optuna. The default space: log-uniform learning "
        "rate first, then units, layers, cell (lstm, gru) and the lookback (half, once and twice the default or "
        "typed one, where the data and --season allow). A forecast option you type is fixed. The objective is "
        "the validation loss of each epoch; each trial is an ordinary forecast run directory in "
        "OUT/trials/NNN that 'lstmlab forecast predict' reads."))
    g = p.add_argument_group("forecast options (typed: fixed for every trial)")
    for action in scratch.choices["forecast"]._actions:
        if action.dest in _TRACKED:  # absent unless typed: --units before 'forecast' stays (see _add_search)
            g.add_argument(*action.option_strings, dest=action.dest, type=action.type, nargs=action.nargs,
                           help=action.help, default=argparse.SUPPRESS)
    _add_search(p, inherit=True)
    p.set_defaults(func=cmd_tune_forecast)


def _add_classify(actions) -> None:
    """``lstmlab tune classify``: every option of ``lstmlab classify`` that describes a run (copied from its
    parser), the search options and ``--minutes-per-trial``."""
    from ... import cli
    from ..classify.command import _TRACKED, add_parser as add_classify

    scratch = cli._Parser(prog="lstmlab", add_help=False).add_subparsers(parser_class=cli._Parser)
    add_classify(scratch)
    p = actions.add_parser("classify", help="search lstmlab classify's hyperparameters", description=(
        "Search the hyperparameters of 'lstmlab classify' with Optuna. The default space: log-uniform learning "
        "rate first, then units, layers, cell (lstm, gru), bidirectional or not and the embedding's size (the "
        "classifier has no dropout). A classify option you type is fixed. The objective is the validation "
        "cross-entropy of each epoch; each trial is an ordinary classify run directory in OUT/trials/NNN that "
        "'lstmlab classify predict' reads."))
    g = p.add_argument_group("classify options (typed: fixed for every trial)")
    for action in scratch.choices["classify"]._actions:
        if action.dest in _TRACKED:  # absent unless typed: --units before 'classify' stays (see _add_search)
            kind = {"action": "store_const", "const": action.const} if action.nargs == 0 else \
                {"type": action.type, "choices": action.choices, "metavar": action.metavar}
            g.add_argument(*action.option_strings, dest=action.dest, help=action.help, default=argparse.SUPPRESS,
                           **kind)
    _add_search(p, inherit=True)
    p.add_argument_group("search").add_argument("--minutes-per-trial", type=float, default=argparse.SUPPRESS,
                                                help="wall-clock budget of each trial")
    p.set_defaults(func=cmd_tune_classify)


def _check(args) -> None:
    for option, value in (("--trials", args.trials), ("--workers", args.workers)):
        if value < 1:
            raise ValueError(f"{option}: expected a positive integer, got {value}")
    for option, value in (("--minutes-per-trial", args.minutes_per_trial), ("--timeout", args.timeout)):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ValueError(f"{option}: expected a number > 0, got {value}")
    if args.resume and args.force:
        raise ValueError("--resume and --force: expected at most one of them")
    for option in ("--out", "--corpus", "--space", "--storage"):
        value = getattr(args, option[2:].replace("-", "_"), None)  # tune forecast has no --corpus
        if value is not None and not value.strip():
            raise ValueError(f"{option}: expected a value, got {value!r}")


def cmd_tune(args) -> int:
    from .objective import TrainObjective

    _check(args)
    typed = {dest for dest in args.train_defaults if getattr(args, dest) is not None}
    typed |= {"corpus"} if args.corpus is not None else set()
    for dest, default in args.train_defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    options = {dest: getattr(args, dest) for dest in args.train_defaults}
    options.update(corpus=args.corpus, no_samples=True)  # a trial prints no samples: generate from its run directory
    return run_study(args, TrainObjective, typed, lambda space: TrainObjective(options, space, args.minutes_per_trial))


def cmd_tune_forecast(args) -> int:
    from ..forecast.command import _TRACKED, _given
    from .forecast_trial import ForecastObjective

    train_only = [d for d in [*args.train_defaults, "corpus", "minutes_per_trial"]
                  if d not in _TRACKED and getattr(args, d) is not None] + (["no_samples"] if args.no_samples else [])
    if train_only:
        option = "--" + train_only[0].replace("_", "-")
        raise ValueError(f"{option}: an option of lstmlab tune (train), not of lstmlab tune forecast")
    for dest in _TRACKED:
        if not hasattr(args, dest):
            setattr(args, dest, None)
    _check(args)
    typed = {dest for dest in _TRACKED if getattr(args, dest) is not None}
    given = _given(args)  # the typed options as ForecastConfig fields (--csv made absolute)
    if args.seed is None:
        args.seed = 0  # forecast's default; it also seeds the workers' samplers
    return run_study(args, ForecastObjective, typed, lambda space: ForecastObjective(given, space))


def cmd_tune_classify(args) -> int:
    from ..classify.command import _TRACKED
    from .classify_trial import ClassifyObjective

    train_only = [d for d in [*args.train_defaults, "corpus"]
                  if d not in _TRACKED and getattr(args, d) is not None] + (["no_samples"] if args.no_samples else [])
    if train_only:
        option = "--" + train_only[0].replace("_", "-")
        raise ValueError(f"{option}: an option of lstmlab tune (train), not of lstmlab tune classify")
    for dest in _TRACKED:
        if not hasattr(args, dest):
            setattr(args, dest, None)
    _check(args)
    typed = {dest for dest in _TRACKED if getattr(args, dest) is not None}
    options = {dest: getattr(args, dest) for dest in typed}
    if args.seed is None:
        args.seed = 0  # classify's default; it also seeds the workers' samplers
    return run_study(args, ClassifyObjective, typed,
                     lambda space: ClassifyObjective(options, space, args.minutes_per_trial))


def run_study(args, kind, typed: set, make_objective) -> int:
    """Create (or resume) the study of ``kind``'s command in ``--out`` / ``--storage``, run the remaining
    trials on the workers and write the report. ``typed``: the option dests the user typed (fixed, out of the
    space); ``make_objective(space)``: the objective of a new study."""
    from .report import write_report
    from .study import default_storage, finished, import_optuna, run_workers, storage

    optuna = import_optuna()
    out = args.out or os.path.join("runs", time.strftime("tune-%Y%m%d-%H%M%S"))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file; expected a directory")
    url = args.storage or default_storage(out)
    if url == default_storage(out):
        os.makedirs(out, exist_ok=True)
    st = storage(url)
    exists = args.study_name in optuna.get_all_study_names(storage=st)
    if exists and not (args.resume or args.force):
        raise ValueError(f"--out: the study {args.study_name!r} already exists in {out if not args.storage else '--storage'}"
                         "; use --resume to continue it or --force to start anew")
    if args.resume and not exists:
        raise ValueError(f"--resume: there is no study {args.study_name!r} to resume")
    if args.force:
        if exists:
            optuna.delete_study(study_name=args.study_name, storage=st)
        shutil.rmtree(os.path.join(out, "trials"), ignore_errors=True)
        for name in REPORT_FILES:
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    if args.resume:
        study = optuna.load_study(study_name=args.study_name, storage=st)
        spec = dict(study.user_attrs["spec"])
        command = spec.get("command", "train")
        if command != kind.command:
            raise ValueError(f"--resume: the study {args.study_name!r} tunes lstmlab {command}; resume it with "
                             f"lstmlab tune{'' if command == 'train' else ' ' + command} --resume")
        changed = sorted((typed - {"seed"}) | ({"space"} if args.space else set()))
        if changed:
            raise ValueError(f"--resume: the study keeps the {command} options and space it was created with; "
                             f"got {', '.join('--' + c.replace('_', '-') for c in changed)}")
        objective = kind.from_spec(spec)
        pruner = args.pruner or study.user_attrs.get("pruner", "median")
        if args.minutes_per_trial is not None:
            objective.minutes = args.minutes_per_trial
    else:
        objective = make_objective(())
        space = load_space(args.space, kind.parameters) if args.space else objective.default_space()
        objective.space = without_fixed(space, typed, kind.parameters)
        objective.check()  # a bad option or data file fails here, once, before any worker starts
        study = optuna.create_study(study_name=args.study_name, storage=st, direction="minimize")
        study.set_user_attr("spec", objective.spec())
        pruner = args.pruner or "median"
        study.set_user_attr("pruner", pruner)
    done = len(finished(study))
    remaining = max(0, args.trials - done)
    spec = {**objective.spec(), "storage": url, "study": args.study_name, "out": os.path.abspath(out),
            "pruner": pruner, "timeout": args.timeout, "seed": args.seed,
            "existing": len(study.get_trials(deepcopy=False))}
    fixed = {k: getattr(args, v) for k, v in kind.parameters.items() if v in typed}
    print(f"study {args.study_name!r} in {_shown(url)}: {done} finished trials, running {remaining} more on "
          f"{min(args.workers, max(remaining, 1))} worker(s); searching {', '.join(p.name for p in objective.space)}"
          + (f"; fixed {', '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else ""), flush=True)
    code = run_workers(spec, min(args.workers, max(remaining, 1)), remaining) if remaining else 0
    print()
    print(write_report(optuna.load_study(study_name=args.study_name, storage=st), out), end="")
    print(f"written: {os.path.join(out, 'report.md')} and the plots; trials in {os.path.join(out, 'trials')}")
    return code


def _shown(url: str) -> str:
    from .study import redact

    return redact(url)
