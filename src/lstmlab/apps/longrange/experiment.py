"""Train LSTM, GRU and SimpleRNN on a long-range task with the same budget, and tabulate who solves it.

Training data is generated afresh for every step (as in the 1997 paper's
online setting, batched); a fixed validation set decides when a run counts
as solved, and a fixed test set of ``test_size`` sequences, never trained
on, gives the reported numbers.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ... import backend
from ... import layers as L
from ...io.safetensors import atomic_write
from ..plotting import MISSING, pyplot, save_png
from ...models import Sequential
from ...training import losses as Ls
from ...training import optimizers as O
from . import tasks as TK


def cell_name(kind: str) -> str:
    """How reports name a cell kind: its class name without ``Cell`` (``rnn`` -> ``SimpleRNN``)."""
    return L.cell_kinds()[kind].__name__.removesuffix("Cell")


@dataclass
class ExperimentConfig:
    task: str
    cells: tuple = ("lstm", "gru", "rnn")
    length: int = 100
    seeds: int = 3
    steps: int = 5000
    batch_size: int = 32
    units: int = 64
    learning_rate: float = 5e-3
    clipnorm: float | None = 1.0
    eval_every: int = 100
    val_size: int = 512
    test_size: int = 2560
    stop_when_solved: bool = False

    def __post_init__(self):
        if self.task not in TK.TASKS:
            raise ValueError(f"task: unknown task {self.task!r}; expected one of {', '.join(TK.TASKS)}")
        self.cells = tuple(self.cells)
        kinds = L.cell_kinds()
        if not self.cells or any(c not in kinds for c in self.cells):
            raise ValueError(f"cells: expected a comma-separated subset of {', '.join(kinds)}, "
                             f"got {','.join(self.cells)!r}")
        for name in ("length", "seeds", "steps", "batch_size", "units", "eval_every", "val_size", "test_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if self.task in ("adding", "adding-modern") and self.length < 12:
            raise ValueError(f"length: the adding problem needs length >= 12, got {self.length}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected a number > 0, got {self.learning_rate!r}")


# -- data ----------------------------------------------------------------------------------------------------
def batch(task: str, rng, n: int, T: int):
    """One training batch ``(x, y)`` (Reber's padding becomes zero rows, which a Masking layer drops)."""
    if task == "adding":
        return TK.adding_1997(rng, n, T)
    if task == "adding-modern":
        return TK.adding_modern(rng, n, T)
    if task == "temporal-order":
        return TK.temporal_order(rng, n)
    if task == "reber":
        x, y, _, _ = TK.embedded_reber(rng, n)
        return x, y
    return TK.copy_memory(rng, n, T)


def eval_set(task: str, seed: int, n: int, T: int):
    """A fixed evaluation set as a list of ``(x, y)`` groups (per-sequence lengths grouped by length)."""
    rng = np.random.default_rng(seed)
    if task == "adding":
        lengths = rng.integers(T, T + T // 10 + 1, n)
        return [TK.adding_1997(rng, int((lengths == L_).sum()), T, int(L_)) for L_ in np.unique(lengths)]
    if task == "temporal-order":
        lengths = rng.integers(100, 111, n)
        return [TK.temporal_order(rng, int((lengths == L_).sum()), length=int(L_)) for L_ in np.unique(lengths)]
    return [batch(task, rng, n, T)]


# -- model and scoring ---------------------------------------------------------------------------------------
def build(cfg: ExperimentConfig, cell: str, seed: int) -> Sequential:
    info = TK.TASKS[cfg.task]
    with backend.seeded(seed):
        stack = []
        if cfg.task == "reber":
            stack.append(L.Masking(0.0, input_shape=(None, info.features)))
        seq_out = info.kind in ("multilabel", "sequence")
        kw = {} if stack else {"input_shape": (None, info.features)}
        stack.append(L.recurrent_layer(cell, cfg.units, return_sequences=seq_out, **kw))
        stack.append(L.Dense(info.outputs, activation="sigmoid" if info.kind == "multilabel" else None))
        model = Sequential(stack, name=f"{cell}_{cfg.task}")
    loss = {"regression": Ls.MeanSquaredError(), "classification": Ls.SparseCategoricalCrossentropy(from_logits=True),
            "multilabel": Ls.BinaryCrossentropy(), "sequence": Ls.SparseCategoricalCrossentropy(from_logits=True)}
    model.compile(O.Adam(cfg.learning_rate, clipnorm=cfg.clipnorm), loss[info.kind])
    model.seed = seed
    return model


def score(cfg: ExperimentConfig, model: Sequential, groups) -> dict:
    """Loss, the task's metric, the share of sequences within the success threshold, and ``solved``."""
    task = cfg.task
    losses, counts, within, metric_sum = [], [], 0, 0.0
    n_total = 0
    for x, y in groups:
        pred = model.predict(x, batch_size=512)
        n = len(x)
        n_total += n
        if task in ("adding", "adding-modern"):
            err = pred[:, 0] - y[:, 0]
            metric_sum += float(np.sum(err**2))
            within += int(np.sum(np.abs(err) < 0.04))
        elif task == "temporal-order":
            right = pred.argmax(-1) == y
            metric_sum += float(right.sum())
            within += int(right.sum())
        elif task == "reber":
            mask = np.any(x != 0, axis=-1)
            ok = ((pred > 0.5) == (y > 0.5)).all(-1) | ~mask  # every allowed-next set exactly right
            metric_sum += float(ok.all(-1).sum())
            within += int(ok.all(-1).sum())
        else:  # copy: the last ten steps must recall the ten symbols
            right = pred[:, -10:].argmax(-1) == y[:, -10:]
            metric_sum += float(right.mean(-1).sum())
            within += int(right.all(-1).sum())
        losses.append(model.evaluate(x, y, batch_size=512) * n)
        counts.append(n)
    metric = metric_sum / n_total
    share = within / n_total
    out = {"loss": float(sum(losses) / sum(counts)), "metric": metric, "within": share}
    if task == "adding":
        out["solved"] = 1.0 - share < 0.01  # under 1% of sequences beyond the 0.04 threshold
    elif task == "adding-modern":
        out["solved"] = metric < 0.01  # test MSE
    else:
        out["solved"] = metric >= 0.99
    return out


METRIC_NAME = {"adding": "MSE", "adding-modern": "MSE", "temporal-order": "accuracy",
               "reber": "strings right", "copy": "recall accuracy"}


@dataclass
class RunResult:
    cell: str
    seed: int
    length: int
    steps_done: int
    solved_step: int | None
    seconds: float
    test: dict
    curve: list = field(default_factory=list)  # [step, train_loss, val_loss, val_metric]


def run_one(cfg: ExperimentConfig, cell: str, seed: int, on_eval=None) -> RunResult:
    model = build(cfg, cell, seed)
    rng = np.random.default_rng([seed, 1])
    val = eval_set(cfg.task, seed + 1_000_003, cfg.val_size, cfg.length)
    test = eval_set(cfg.task, 2**31 - 1 - seed, cfg.test_size, cfg.length)
    curve, solved_step, window = [], None, []
    start = time.process_time()
    step = 0
    for step in range(1, cfg.steps + 1):
        x, y = batch(cfg.task, rng, cfg.batch_size, cfg.length)
        window.append(float(model.train_on_batch(x, y)))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            v = score(cfg, model, val)
            curve.append([step, float(np.mean(window)), v["loss"], v["metric"]])
            window = []
            if on_eval:
                on_eval(step, v)
            if v["solved"] and solved_step is None:
                solved_step = step
                if cfg.stop_when_solved:
                    break
    seconds = time.process_time() - start
    return RunResult(cell, seed, cfg.length, step, solved_step, seconds, score(cfg, model, test), curve)


# -- reporting -----------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return f"{v:.4f}" if v >= 1e-3 else f"{v:.2e}"


def results_table(cfg: ExperimentConfig, results: list[RunResult]) -> str:
    name = METRIC_NAME[cfg.task]
    lines = [f"| cell | solved (seeds) | test {name} | share within threshold | steps to solve | CPU s / seed |",
             "|---|---:|---:|---:|---:|---:|"]
    for cell in cfg.cells:
        rs = [r for r in results if r.cell == cell]
        if not rs:
            continue
        solved = [r for r in rs if r.test["solved"]]
        metric = [r.test["metric"] for r in rs]
        within = [r.test["within"] for r in rs]
        steps = [r.solved_step for r in rs if r.solved_step is not None]
        spread = f" ± {statistics.stdev(metric):.2g}" if len(metric) > 1 else ""
        lines.append(
            f"| {cell_name(cell)} | {len(solved)}/{len(rs)} | {_fmt(statistics.mean(metric))}{spread} | "
            f"{100 * statistics.mean(within):.1f}% | {int(statistics.median(steps)) if steps else '—'} | "
            f"{statistics.mean(r.seconds for r in rs):.0f} |")
    return "\n".join(lines)


def sweep_table(cfg: ExperimentConfig, results: list[RunResult], lengths: list[int]) -> str:
    lines = ["| cell | " + " | ".join(f"T = {L_}" for L_ in lengths) + " |",
             "|---|" + "---:|" * len(lengths)]
    for cell in cfg.cells:
        cells = []
        for L_ in lengths:
            rs = [r for r in results if r.cell == cell and r.length == L_]
            cells.append(f"{sum(r.test['solved'] for r in rs)}/{len(rs)}")
        lines.append(f"| {cell_name(cell)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: str, cfg: ExperimentConfig, results: list[RunResult]) -> str | None:
    plt = pyplot()
    if plt is None:
        return MISSING.format(name="the PNG")
    colors = {"lstm": "tab:blue", "gru": "tab:green", "rnn": "tab:red"}
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        c = np.array(r.curve)
        if c.size:
            label = cell_name(r.cell) if r.seed == 0 else None
            ax.plot(c[:, 0], c[:, 2], color=colors.get(r.cell), alpha=0.8, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{cfg.task}, T = {cfg.length}: one line per seed")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_png(fig, path)
    return None


def write_report(out_dir: str, cfg: ExperimentConfig, results: list[RunResult], lengths: list[int] | None) -> str:
    os.makedirs(out_dir, exist_ok=True)
    info = TK.TASKS[cfg.task]
    text = [f"# {info.description}", "",
            f"Length T = {cfg.length}, {cfg.seeds} seed(s), {cfg.steps} steps of batch {cfg.batch_size}, "
            f"{cfg.units} units, Adam {cfg.learning_rate:g}" + (f", clipnorm {cfg.clipnorm:g}" if cfg.clipnorm else "")
            + f"; test set of {cfg.test_size} sequences.", ""]
    if lengths:
        text += ["Solved seeds against sequence length:", "", sweep_table(cfg, results, lengths), ""]
        for L_ in lengths:
            text += [f"T = {L_}:", "", results_table(cfg, [r for r in results if r.length == L_]), ""]
    else:
        text += [results_table(cfg, results), ""]
    report = "\n".join(text)
    atomic_write(os.path.join(out_dir, "results.md"), report.encode())
    atomic_write(os.path.join(out_dir, "results.json"),
                 json.dumps({"config": asdict(cfg), "runs": [asdict(r) for r in results]}, indent=1).encode())
    return report
