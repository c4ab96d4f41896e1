"""Training a text classifier with checkpoints that lose nothing (the run machinery of :mod:`..runs`).

* Each epoch visits the training part in a seeded order (a function of the seed and the epoch number), in
  mini-batches; ``--class-weight balanced`` weighs each example by ``n / (C * n_class)``.
* After each epoch the validation part is scored (cross-entropy in nats, accuracy) and the run directory gets
  a checkpoint (configs, tokenizer, labels, weights, optimizer state, progress), the best one by validation
  loss, a CSV log and the learning curves. Every file is written atomically.
* Ctrl-C / SIGTERM finish the current step and save; a non-finite or exploding loss stops before the update,
  leaving the last good checkpoint intact; ``--resume`` continues bit-identically, its log included.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict

import numpy as np

from ... import backend
from ...training.progress import Progbar, format_duration
from ..runs import (CheckpointError, Progress, RunDir, RunTrainer, divergence_guard, read_checkpoint,
                    repair_interrupted_writes, save_checkpoint as save_run, write_log)
from ..runs import plot_curves as plot_run_curves
from .config import ModelConfig, TrainConfig
from .model import balanced_weights, build_model, compile_model, cross_entropy, probabilities, targets
from .split import Prepared
from .tokens import Tokenizer

KIND = "lstmlab.classify"
PLOT_EVERY = 30.0  # seconds between redraws of the learning curves during training


def load_checkpoint(path):
    """``(model, tokenizer, labels, model_config, train_config, progress, extra)`` from a checkpoint file."""
    model, extra, progress = read_checkpoint(path, KIND, {"tokenizer": dict, "labels": list, "model_config": dict,
                                                          "train_config": dict})
    try:
        tokenizer = Tokenizer.from_dict(extra["tokenizer"])
        mcfg = ModelConfig.from_dict(extra["model_config"])
        tcfg = TrainConfig.from_dict(extra["train_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, "extra", f"a corrupted run description ({exc})") from None
    labels = extra["labels"]
    if not all(isinstance(lb, str) for lb in labels) or len(set(labels)) != len(labels) or \
            len(labels) != mcfg.n_classes:
        raise CheckpointError(path, "extra.labels", f"expected {mcfg.n_classes} distinct label strings")
    rows = getattr(model.layers[0], "input_dim", None)
    if rows != len(tokenizer) or mcfg.vocab_size != len(tokenizer):
        raise CheckpointError(path, "extra.tokenizer", f"{len(tokenizer)} token ids, but the embedding has {rows} "
                              f"rows and the model config says {mcfg.vocab_size}")
    return model, tokenizer, labels, mcfg, tcfg, progress, extra


def plot_curves(path, history) -> str | None:
    return plot_run_curves(path, history, x="epoch", ylabel="cross-entropy (nats) / accuracy",
                           title="text classifier learning curves",
                           series=(("train_loss", "training loss"), ("val_loss", "validation loss"),
                                   ("val_accuracy", "validation accuracy")))


class ClassifyTrainer(RunTrainer):
    """Runs (or resumes) one training run in ``run_dir`` on the prepared parts of the data."""

    def __init__(self, run_dir: str, data: Prepared, mcfg: ModelConfig, tcfg: TrainConfig, digest: str, *,
                 model=None, progress: Progress | None = None, window=(0.0, 0), out=None, on_validation=None):
        """``on_validation(epoch, val_loss, val_accuracy)``, when given, is called after each validation once
        its checkpoint is written, with the epoch it closes (a last, partial epoch counts: the steps or minutes
        ran out in it); a tuner reports to its trial there. What it raises propagates out of :meth:`train`."""
        self.run = RunDir(run_dir)
        self.on_validation = on_validation
        self.data, self.mcfg, self.tcfg, self.digest = data, mcfg, tcfg, digest
        self.out = out if out is not None else sys.stdout
        if model is None:
            with backend.seeded(tcfg.seed):  # the initial weights are a function of the seed
                model = build_model(mcfg)
                model.build((None, data.tokenizer.maxlen))
            compile_model(model, mcfg, tcfg)
            model.seed = tcfg.seed
        self.model = model
        self.progress = progress if progress is not None else Progress()
        self.window = list(window)  # (sum of training losses, steps) since the last validation
        n = len(data.y["train"])
        self.steps_per_epoch = math.ceil(n / tcfg.batch_size)
        self.class_weight = balanced_weights(data.y["train"], mcfg.n_classes) if tcfg.class_weight == "balanced" \
            else None
        self.stop_signal: int | None = None
        self.limit = max(10.0, 5.0 * math.log(mcfg.n_classes) * max((self.class_weight or {0: 1}).values()))

    def _guard(self, loss, grads) -> None:
        divergence_guard(self.progress.global_step + 1, loss, grads, self.limit)

    def _checkpoint(self, best: bool) -> None:
        extra = {"kind": KIND, "tokenizer": self.data.tokenizer.to_dict(), "labels": self.data.labels,
                 "model_config": self.mcfg.to_dict(), "train_config": self.tcfg.to_dict(),
                 "progress": asdict(self.progress), "data_sha256": self.digest, "window": self.window}
        save_run(self.model, self.run.checkpoint, extra)
        if best:
            save_run(self.model, self.run.best, extra)
        write_log(self.run.log, self.progress.history)

    def repair_interrupted_writes(self) -> None:
        repair_interrupted_writes(self.run, self.progress, plot_curves)

    def evaluate(self, part: str) -> tuple:
        """``(cross-entropy, accuracy, (N, C) probabilities)`` of the model on one part of the data."""
        p = probabilities(self.model, self.data.x[part], self.mcfg.n_classes)
        y = self.data.y[part]
        return cross_entropy(p, y), float(np.mean(p.argmax(axis=1) == y)), p

    def _validate(self) -> None:
        p = self.progress
        train_loss = self.window[0] / max(self.window[1], 1)
        val_loss, val_acc, _ = self.evaluate("val")
        best = p.best_val is None or val_loss < p.best_val
        if best:
            p.best_val, p.best_step = val_loss, p.global_step
        epochs_done = p.epoch + p.step_in_epoch / self.steps_per_epoch
        p.history.append({"step": p.global_step, "epoch": round(epochs_done, 4), "train_loss": round(train_loss, 6),
                          "val_loss": round(val_loss, 6), "val_accuracy": round(val_acc, 6),
                          "elapsed_s": round(p.elapsed, 2)})
        self._print(f"step {p.global_step} (epoch {epochs_done:.2f}): train loss {train_loss:.4f}, val loss "
                    f"{val_loss:.4f}, val accuracy {val_acc:.4f}" + ("  [best]" if best else ""))
        self.window = [0.0, 0]
        self._checkpoint(best)
        if time.monotonic() - self._plotted >= PLOT_EVERY:
            self._plot()
        if self.on_validation is not None:
            self.on_validation(p.epoch + (1 if p.step_in_epoch else 0), val_loss, val_acc)

    def _plot(self) -> None:
        """Redraw curves.png (matplotlib takes ~0.3 s, longer than an epoch of a small run: not after every
        validation, but every :data:`PLOT_EVERY` seconds and when training stops)."""
        self._plotted = time.monotonic()
        if not self.progress.history:
            return
        note = plot_curves(self.run.plot, self.progress.history)
        if note and not getattr(self, "_noted", False):
            self._print(note)
            self._noted = True

    def train(self) -> str:
        """Train until the epochs or the budget run out, or a stop is requested: ``"done"``, ``"budget"`` or
        ``"interrupted"``; raises :class:`~lstmlab.apps.runs.Diverged`. The curves are drawn as it ends."""
        os.makedirs(self.run.path, exist_ok=True)
        self._plotted = time.monotonic()
        try:
            return self._train()
        finally:
            self._plot()

    def _train(self) -> str:
        p, t = self.progress, self.tcfg
        x, y = self.data.x["train"], self.data.y["train"]
        start, elapsed0 = time.monotonic(), p.elapsed
        deadline = None if t.minutes is None else start + 60.0 * t.minutes
        while p.epoch < t.epochs:
            order = np.random.default_rng([t.seed, 11, p.epoch]).permutation(len(y))  # this epoch's visiting order
            bar = Progbar(self.steps_per_epoch, stream=self.out)
            self._print(f"epoch {p.epoch + 1}/{t.epochs}")
            for k in range(p.step_in_epoch, self.steps_per_epoch):
                idx = order[k * t.batch_size:(k + 1) * t.batch_size]
                loss = self.model.train_on_batch(x[idx], targets(y[idx], self.mcfg.n_classes),
                                                 class_weight=self.class_weight, before_update=self._guard)
                p.step_in_epoch, p.global_step = k + 1, p.global_step + 1
                p.elapsed = elapsed0 + time.monotonic() - start
                self.window = [self.window[0] + float(loss), self.window[1] + 1]
                bar.update(k + 1, {"loss": self.window[0] / self.window[1]})
                if self.stop_signal is not None:
                    self._checkpoint(best=False)
                    self._print(f"\nstopped at step {p.global_step}: checkpoint saved to {self.run.checkpoint}")
                    return "interrupted"
                out_of_steps = t.steps is not None and p.global_step >= t.steps
                out_of_time = out_of_steps or (deadline is not None and time.monotonic() >= deadline)
                if k + 1 == self.steps_per_epoch or out_of_time:
                    if k + 1 == self.steps_per_epoch:
                        p.epoch, p.step_in_epoch = p.epoch + 1, 0
                    bar.update(k + 1, {"loss": self.window[0] / self.window[1]}, finished=True)
                    self._validate()
                    if out_of_time:
                        self._print(f"step budget of {t.steps} reached" if out_of_steps else
                                    f"time budget of {format_duration(60.0 * t.minutes)} reached")
                        return "budget"
        return "done"
