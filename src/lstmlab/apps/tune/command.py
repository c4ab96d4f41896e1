"""``lstmlab tune [train options...] --trials N ...``: arguments -> a study of ``lstmlab train`` runs.

Every option of ``lstmlab train`` is accepted: a typed one is fixed for every trial (and leaves the search
space), the others are train's defaults. ``--minutes-per-trial`` bounds each trial, ``--timeout`` the whole
search; ``--workers K`` runs K processes on the shared study; ``--storage URL`` puts the study in a database
that workers on other machines join (the same command with the same --storage and --out on a shared disk,
or each with its own --out: the trials' run directories are written where their worker runs).
"""
from __future__ import annotations

import math
import os
import shutil
import time

from .space import DEFAULT_SPACE, PARAMETERS, load_space, without_fixed

REPORT_FILES = ("report.md", "history.png", "importances.png", "lr_vs_loss.png")


def add_parser(sub) -> None:
    from ... import cli

    scratch = cli._Parser(prog="lstmlab", add_help=False).add_subparsers(parser_class=cli._Parser)
    cli._add_train(scratch)  # the very options of lstmlab train, with their defaults and tracking
    p = sub.add_parser("tune", parents=[scratch.choices["train"]], conflict_handler="resolve",
                       help="search lstmlab train's hyperparameters with Optuna", description=(
                           "Search the hyperparameters of 'lstmlab train' with Optuna (the 'tune' extra). The "
                           "default space follows DL4J's advice: log-uniform learning rate first, then units, "
                           "layers, dropout, optimizer, clipping and the cells' activation; a train option you "
                           "type is fixed. Each trial is an ordinary run directory in OUT/trials/NNN."))
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default 20)")
    g.add_argument("--minutes-per-trial", type=float, default=None, help="wall-clock budget of each trial")
    g.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
    g.add_argument("--workers", type=int, default=1, help="local worker processes sharing the study (default 1)")
    g.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite in OUT/study.db), e.g. "
                   "postgresql://user:password@host/db for workers on many machines")
    g.add_argument("--study-name", default="lstmlab-tune", help="the study's name in the storage")
    g.add_argument("--space", default=None, help="search space file (.toml or .json) replacing the default")
    g.add_argument("--pruner", default=None, choices=["median", "hyperband", "none"],
                   help="stop unpromising trials at a validation (default median; a resumed study keeps its own)")
    g.add_argument("--out", help="study directory (default runs/tune-<date>-<time>)")
    g.add_argument("--resume", action="store_true", help="continue the study in --out / --storage")
    g.add_argument("--force", action="store_true", help="delete a study already there and start anew")
    p.set_defaults(func=cmd_tune)


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
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and not value.strip():
            raise ValueError(f"{option}: expected a value, got {value!r}")


def cmd_tune(args) -> int:
    from .objective import TrainObjective
    from .report import write_report
    from .study import default_storage, finished, import_optuna, run_workers, storage

    _check(args)
    optuna = import_optuna()
    typed = {dest for dest in args.train_defaults if getattr(args, dest) is not None}
    typed |= {"corpus"} if args.corpus is not None else set()
    for dest, default in args.train_defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
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
        changed = sorted((typed - {"seed"}) | ({"space"} if args.space else set()))
        if changed:
            raise ValueError(f"--resume: the study keeps the train options and space it was created with; "
                             f"got {', '.join('--' + c.replace('_', '-') for c in changed)}")
        objective = TrainObjective.from_spec(spec)
        pruner = args.pruner or study.user_attrs.get("pruner", "median")
        if args.minutes_per_trial is not None:
            objective.minutes = args.minutes_per_trial
    else:
        space = load_space(args.space) if args.space else DEFAULT_SPACE
        space = without_fixed(space, typed)
        options = {dest: getattr(args, dest) for dest in args.train_defaults}
        options.update(corpus=args.corpus, no_samples=True)  # a trial prints no samples: generate from its run directory
        objective = TrainObjective(options, space, args.minutes_per_trial)
        objective.check()  # a bad option or corpus fails here, once, before any worker starts
        study = optuna.create_study(study_name=args.study_name, storage=st, direction="minimize")
        study.set_user_attr("spec", objective.spec())
        pruner = args.pruner or "median"
        study.set_user_attr("pruner", pruner)
    done = len(finished(study))
    remaining = max(0, args.trials - done)
    spec = {**objective.spec(), "storage": url, "study": args.study_name, "out": os.path.abspath(out),
            "pruner": pruner, "timeout": args.timeout, "seed": args.seed,
            "existing": len(study.get_trials(deepcopy=False))}
    fixed = {k: objective.options.get(v) for k, v in PARAMETERS.items() if v in typed}
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
