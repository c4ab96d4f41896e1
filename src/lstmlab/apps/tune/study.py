"""The study: its storage (SQLite in the run directory, or any database Optuna's SQLAlchemy URLs reach),
its pruner, and K worker processes that share it.

Workers coordinate only through the database, exactly as workers on other machines would: each asks Optuna
for a trial (``study.optimize``), runs it, and writes its result. The run directory holds::

    DIR/study.db          the study (default storage)
    DIR/trials/NNN/       trial NNN: an ordinary ``lstmlab train`` run directory (+ train.log, its output)
    DIR/report.md, *.png  the report (:mod:`.report`)

A dead worker's trial stays RUNNING until the heartbeat's grace period passes; then the next worker to ask
for a trial marks it FAIL. Ctrl-C reaches every worker: each finishes its step, saves its trial's checkpoint
and marks the trial FAIL (its run directory can still be resumed by hand); finished trials are untouched.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

EXTRA_HINT = "pip install 'lstmlab[tune]'"
STUDY_NAME = "lstmlab-tune"
HEARTBEAT_S, GRACE_S = 30, 120
FINISHED = ("COMPLETE", "PRUNED")


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError(f"lstmlab tune needs Optuna: {EXTRA_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's outcome is one line of ours instead
    return optuna


def default_storage(out: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(out, "study.db"))


def storage(url: str):
    """An RDBStorage with a heartbeat (a killed worker's trial is failed, not left RUNNING forever)."""
    optuna = import_optuna()
    if url.startswith(("postgresql://", "postgres://")):  # the driver of our extra (psycopg 3), whatever
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # SQLAlchemy's version would pick by default
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what fails dead workers' trials
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except ImportError as exc:  # the database driver (psycopg2, ...)
        raise ValueError(f"--storage: the database driver for {url.split(':', 1)[0]!r} is missing ({exc}); "
                         f"{EXTRA_HINT}") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors (bad URL, unreachable server) as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--storage: cannot open {redact(url)}: {first}") from None


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        cred, host = tail.split("@", 1)
        return f"{head}://{cred.split(':', 1)[0]}:***@{host}" if ":" in cred else url
    return url


def make_pruner(name: str):
    optuna = import_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED]


def trial_dir(out: str, number: int) -> str:
    return os.path.join(out, "trials", f"{number:03d}")


def run_worker(spec: dict, index: int, n_trials: int) -> int:
    """One worker: ``n_trials`` trials (fewer when ``spec['timeout']`` runs out) of the shared study."""
    optuna = import_optuna()
    from .objective import OBJECTIVES

    st = storage(spec["storage"])
    # Each worker, and each resumption, seeds its sampler apart: no two draw the same random start-up points.
    seed = (spec["seed"] * 1_000_003 + index * 7919 + spec["existing"]) % (2 ** 32)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    study = optuna.load_study(study_name=spec["study"], storage=st, sampler=sampler, pruner=make_pruner(spec["pruner"]))
    objective = OBJECTIVES[spec["command"]].from_spec(spec)

    def run(trial):
        return objective(trial, trial_dir(spec["out"], trial.number))

    def announce(study, trial):
        value = "" if trial.value is None else f" {trial.value:.4g}"  # a forecast's MSE can be 1e-3
        reason = trial.system_attrs.get("fail_reason", "") if trial.state.name == "FAIL" else ""
        value += f": {reason.strip().splitlines()[-1]}" if reason.strip() else ""
        params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        print(f"trial {trial.number} {trial.state.name.lower()}{value} ({params})", flush=True)

    try:
        study.optimize(run, n_trials=n_trials, timeout=spec["timeout"], callbacks=[announce], catch=(ValueError,))
    except KeyboardInterrupt:
        return 130
    return 0


def _short(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def run_workers(spec: dict, workers: int, remaining: int) -> int:
    """Run ``remaining`` trials on ``workers`` processes (the shares differ by at most one); returns the worst
    exit status. One worker runs in this process."""
    shares = [remaining // workers + (k < remaining % workers) for k in range(workers)]
    shares = [s for s in shares if s > 0] or [0]
    if len(shares) == 1:
        return run_worker(spec, 0, shares[0])
    procs = [subprocess.Popen([sys.executable, "-m", "lstmlab.apps.tune.worker", json.dumps(spec), str(k), str(n)])
             for k, n in enumerate(shares)]
    codes, interrupted = [], False
    for p in procs:
        while True:
            try:
                codes.append(p.wait())
                break
            except KeyboardInterrupt:  # the workers got it too: let them save and mark their trials
                interrupted = True
    return 130 if interrupted else max(codes, key=abs)
