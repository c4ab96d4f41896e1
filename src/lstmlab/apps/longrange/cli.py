"""``lstmlab experiment TASK``: arguments -> :mod:`lstmlab.apps.longrange.experiment`."""
from __future__ import annotations

import os
import sys
import time


def add_experiment(sub) -> None:
    from .tasks import TASKS

    p = sub.add_parser("experiment", help="long-range dependency lab: LSTM vs GRU vs SimpleRNN", description=(
        "Train LSTM, GRU and SimpleRNN with the same budget on a long-range task from Hochreiter & Schmidhuber "
        "(1997) and write a table and a plot of who solves it."))
    p.add_argument("task", choices=sorted(TASKS), help="the task")
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated cells (default lstm,gru,rnn)")
    p.add_argument("--length", type=int, default=100, help="sequence length T (default 100)")
    p.add_argument("--sweep", default=None, help="comma-separated lengths, e.g. 25,50,100,200")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--steps", type=int, default=5000, help="training steps per run (default 5000)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default 5e-3)")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--test-size", type=int, default=2560)
    p.add_argument("--stop-when-solved", action="store_true", help="end a run at its first solved validation")
    p.add_argument("--out", help="output directory (default runs/experiment-<task>-<date>-<time>)")
    p.add_argument("--force", action="store_true", help="overwrite results already in --out")
    p.set_defaults(func=cmd_experiment)


def _ints(option: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{option}: expected positive integers, got {text!r}")
    return values


RESULTS = ("results.md", "results.json", "curves.png")


def _check_out(out: str, force: bool) -> None:
    """Refuse, before any training, an --out that is a file or already holds results (unless --force)."""
    if not out.strip():
        raise ValueError(f"--out: expected a path, got {out!r}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file; expected a directory")
    held = [name for name in RESULTS if os.path.exists(os.path.join(out, name))]
    if held and not force:
        raise ValueError(f"--out: {out!r} already holds results ({', '.join(held)}); use --force to overwrite them")


def _check_memory(cfg) -> None:
    from ..memory import check, experiment_bytes
    from .tasks import TASKS

    info = TASKS[cfg.task]
    # temporal-order has its own lengths (100-110); Reber strings are short whatever --length says
    fixed = {"temporal-order": 110, "reber": 100}.get(cfg.task)
    options = {"--units": ("units", cfg.units), "--test-size": ("test_size", cfg.test_size),
               "--batch-size": ("batch_size", cfg.batch_size)}
    if fixed is None:
        options["--length"] = ("length", cfg.length)

    def estimate(**kw):
        return experiment_bytes(cell=cell, features=info.features, outputs=info.outputs, val_size=cfg.val_size,
                                **{"length": fixed, **kw})

    for cell in cfg.cells:
        check(estimate, options, f"a {cell.upper()}({cfg.units}) run on {cfg.task} with T = "
              f"{fixed or cfg.length}, batches of {cfg.batch_size} and {cfg.test_size} test sequences")


def cmd_experiment(args) -> int:
    from .experiment import ExperimentConfig, cell_name, plot, run_one, write_report

    lengths = _ints("--sweep", args.sweep) if args.sweep is not None else None
    base = dict(task=args.task, cells=tuple(c.strip() for c in args.cells.split(",") if c.strip()),
                seeds=args.seeds, steps=args.steps, batch_size=args.batch_size, units=args.units,
                learning_rate=args.lr, eval_every=args.eval_every, test_size=args.test_size,
                stop_when_solved=args.stop_when_solved)
    configs = [ExperimentConfig(length=L_, **base) for L_ in (lengths or [args.length])]  # validate all first
    for cfg in configs:
        _check_memory(cfg)
    out = args.out if args.out is not None else os.path.join(
        "runs", time.strftime(f"experiment-{args.task}-%Y%m%d-%H%M%S"))
    _check_out(out, args.force)
    results = []
    for cfg in configs:
        for cell in cfg.cells:
            for seed in range(cfg.seeds):
                def progress(step, v, cell=cell, seed=seed, T=cfg.length):
                    if not sys.stdout.isatty():
                        return
                    print(f"\r{cell_name(cell)} seed {seed} T={T}: step {step}/{cfg.steps} val loss {v['loss']:.4g}"
                          + (" [solved]" if v["solved"] else ""), end="", flush=True)

                r = run_one(cfg, cell, seed, on_eval=progress)
                state = f"solved at step {r.solved_step}" if r.solved_step else "not solved"
                print(("\r" if sys.stdout.isatty() else "")
                      + f"{cell_name(cell)} seed {seed} T={cfg.length}: {state}; test {r.test['metric']:.4g}, "
                      f"{100 * r.test['within']:.1f}% within threshold, {r.seconds:.0f} s CPU", flush=True)
                results.append(r)
    report = write_report(out, configs[0], results, lengths)
    note = plot(os.path.join(out, "curves.png"), configs[-1], [r for r in results if r.length == configs[-1].length])
    print()
    print(report)
    if note:
        print(note)
    print(f"written: {os.path.join(out, 'results.md')}, results.json" + ("" if note else ", curves.png"))
    return 0
