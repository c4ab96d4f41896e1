"""The study's report: the best trial and its parameters, a table of every trial, parameter importances
(``optuna.importance``), and three plots drawn with matplotlib (optimization history, importances, learning
rate against loss). Written to ``DIR/report.md`` and printed."""
from __future__ import annotations

import math
import os

from ...io.safetensors import atomic_write
from ..plotting import MISSING, pyplot, save_png
from .study import FINISHED

PLOTS = ("history.png", "importances.png", "lr_vs_loss.png")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def importances(study) -> tuple[dict, str | None]:
    """``(param -> importance, note)``; the note says why there are none (too few finished trials, ...)."""
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2:
        return {}, f"parameter importances need at least 2 completed trials, got {len(done)}"
    try:
        return dict(optuna.importance.get_param_importances(study)), None
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        return {}, f"parameter importances unavailable: {exc}"


def table(trials, out: str, columns=(("steps", "steps"),)) -> list[str]:
    """The markdown table of ``trials``; ``columns`` are the objective's extra (heading, user attribute) pairs."""
    names = []
    for t in trials:
        names += [k for k in t.params if k not in names]
    head = ["trial", "state", "val loss", *[h for h, _ in columns], *names, "run directory"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in trials:
        run = os.path.relpath(t.user_attrs.get("run_dir", ""), out) if t.user_attrs.get("run_dir") else ""
        state = t.state.name.lower() + (" (diverged)" if "diverged" in t.user_attrs else "")
        rows.append("| " + " | ".join([str(t.number), state, _fmt(t.value),
                                       *[_fmt(t.user_attrs.get(a)) for _, a in columns],
                                       *[_fmt(t.params.get(n)) for n in names], run]) + " |")
    return rows


def objective_of(study):
    """The objective class of the command the study tunes (studies made before forecast tuning: train)."""
    from .objective import OBJECTIVES

    return OBJECTIVES[study.user_attrs.get("spec", {}).get("command", "train")]


def write_report(study, out: str) -> str:
    """Write ``out/report.md`` and the plots; returns the report's text."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    kind = objective_of(study)
    counts = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    lines = [f"# lstmlab tune{'' if kind.command == 'train' else ' ' + kind.command}: study {study.study_name!r}", "",
             f"{len(trials)} trials: " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n), ""]
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if done:
        best = min(done, key=lambda t: t.value)
        lines += [f"best: trial {best.number}, {kind.best_line(best)}", ""]
        lines += [f"- {k} = {_fmt(v)}" for k, v in best.params.items()]
        if best.user_attrs.get("run_dir"):
            run = best.user_attrs["run_dir"]
            lines += ["", f"its run directory: {run} ({kind.run_hint.format(run=run)})"]
    else:
        lines += ["best: none yet (no completed trial)"]
    lines += ["", "## trials", ""] + table(trials, out, kind.columns)
    imp, note = importances(study)
    lines += ["", "## parameter importances", ""]
    lines += [f"- {k}: {v:.3f}" for k, v in imp.items()] if imp else [note]
    plot_note = plot(trials, imp, out, kind.value_unit)
    if plot_note:
        lines += ["", plot_note]
    else:
        lines += ["", "plots: " + ", ".join(PLOTS)]
    text = "\n".join(lines) + "\n"
    atomic_write(os.path.join(out, "report.md"), text.encode("utf-8"))
    return text


def plot(trials, imp: dict, out: str, unit: str = "") -> str | None:
    """The three plots; a note instead when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return MISSING.format(name=", ".join(PLOTS))
    scored = [t for t in trials if t.state.name in FINISHED and t.value is not None and math.isfinite(t.value)]
    fig, ax = plt.subplots(figsize=(7, 4))
    if scored:
        xs, ys = [t.number for t in scored], [t.value for t in scored]
        ax.scatter(xs, ys, c=["C0" if t.state.name == "COMPLETE" else "C7" for t in scored], label="trial")
        best, running = [], math.inf
        for t in sorted(scored, key=lambda t: t.number):
            running = min(running, t.value) if t.state.name == "COMPLETE" else running
            best.append(running)
        ax.step(sorted(xs), best, where="post", color="C3", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss" + (f" ({unit})" if unit else ""))
    ax.set_title("optimization history (grey: pruned)")
    ax.grid(alpha=0.3)
    save_png(fig, os.path.join(out, PLOTS[0]))
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(imp)[::-1]
    ax.barh(names, [imp[n] for n in names])
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("parameter importances" if imp else "parameter importances (not enough trials yet)")
    save_png(fig, os.path.join(out, PLOTS[1]))
    fig, ax = plt.subplots(figsize=(7, 4))
    with_lr = [t for t in scored if "learning_rate" in t.params]
    if with_lr:
        ax.scatter([t.params["learning_rate"] for t in with_lr], [t.value for t in with_lr],
                   c=["C0" if t.state.name == "COMPLETE" else "C7" for t in with_lr])
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation loss" + (f" ({unit})" if unit else ""))
    ax.set_title("learning rate against loss (grey: pruned)")
    ax.grid(alpha=0.3)
    save_png(fig, os.path.join(out, PLOTS[2]))
    return None
