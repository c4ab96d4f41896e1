"""Training a character model the char-rnn way, with checkpoints that lose nothing.

* The training text is cut into ``batch_size`` contiguous streams; each step
  takes the next ``seq_len`` characters of every stream, and the stateful
  recurrent layers carry their state from one window to the next (truncated
  BPTT). States reset at each epoch, whose windows start at a seeded offset.
* The last ``val_fraction`` of the text is held out; validation loss is
  reported in nats and in bits per character.
* After each validation the run directory gets a checkpoint (config,
  vocabulary, weights, optimizer state, carried states, progress), the best
  one by validation loss, a CSV log and a PNG of the curves. Every file is
  written atomically.
* A stop request (Ctrl-C / SIGTERM) finishes the current step and saves; a
  non-finite or exploding loss stops before the update, leaving the last
  good checkpoint intact. ``--resume`` continues bit-identically.
* Started by ``mpirun -n N`` the ranks share out the streams (:mod:`.parallel`);
  rank 0 alone validates, prints and writes.
"""
from __future__ import annotations

import hashlib
import math
import os
import signal
import sys
import time
from dataclasses import asdict

import numpy as np

from ... import backend
from ...distributed import world as mpi_world
from ...models import Sequential
from ...training.progress import Progbar, format_duration
from ..runs import (CheckpointError, Diverged, Progress, RunDir, RunTrainer, checkpoint_step, divergence_guard,
                    log_text, read_checkpoint, repair_interrupted_writes, save_checkpoint as save_run, write_log)
from ..runs import plot_curves as plot_run_curves
from .config import ModelConfig, SampleConfig, TrainConfig, default_dropout
from .corpus import CorpusError, Vocabulary, n_windows, split_ids, streams, windows
from .model import CharSampler, build_model, compile_model
from .parallel import StreamParallel

SAMPLE_TEMPERATURES = (0.2, 0.5, 1.0, 1.2)
KIND = "lstmlab.textgen"

__all__ = ["CheckpointError", "Diverged", "Progress", "RunDir", "TextTrainer", "checkpoint_step", "load_checkpoint",
           "log_text", "plot_curves", "save_checkpoint", "text_digest"]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_checkpoint(model, path, vocab, mcfg, tcfg, progress, digest) -> None:
    save_run(model, path, {"kind": KIND, "vocab": vocab.chars, "model_config": mcfg.to_dict(),
                           "train_config": tcfg.to_dict(), "progress": asdict(progress), "corpus_sha256": digest})


def load_checkpoint(path):
    """``(model, vocab, model_config, train_config, progress, corpus_sha256)`` from a checkpoint file."""
    model, extra, progress = read_checkpoint(path, KIND, {"vocab": str, "model_config": dict, "train_config": dict})
    chars = extra["vocab"]
    if not chars or len(set(chars)) != len(chars):
        raise CheckpointError(path, "extra.vocab", "expected a non-empty string of distinct characters")
    try:
        vocab = Vocabulary(chars)
        mcfg = ModelConfig.from_dict(extra["model_config"])
        tcfg = TrainConfig.from_dict(extra["train_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(path, "extra", f"a corrupted run description ({exc})") from None
    rows, units = _vocabulary_sizes(model)
    if not (rows == units == mcfg.vocab_size == len(vocab)):
        raise CheckpointError(path, "extra.vocab", f"{len(vocab)} characters, but the model config says "
                              f"{mcfg.vocab_size}, the embedding has {rows} rows and the output layer {units} units")
    return model, vocab, mcfg, tcfg, progress, extra.get("corpus_sha256")


def _vocabulary_sizes(model) -> tuple:
    """Rows of the first layer's table and units of the last layer (None where they are not those layers)."""
    first, last = model.layers[0], model.layers[-1]
    return getattr(first, "input_dim", None), getattr(last, "units", None)


def plot_curves(path, history) -> str | None:
    """Write the learning curves; returns a note instead when matplotlib is not installed."""
    return plot_run_curves(path, history, ylabel="loss (nats per character)", title="character model learning curves")


class TextTrainer(RunTrainer):
    """Runs (or resumes) one training run in ``run_dir``."""

    def __init__(self, run_dir: str, text: str, vocab: Vocabulary, mcfg: ModelConfig, tcfg: TrainConfig, *,
                 model: Sequential | None = None, progress: Progress | None = None, out=None,
                 sample_length: int = 200, on_validation=None):
        """``on_validation(step, val_loss)``, when given, is called after each validation once its checkpoint
        is written (a tuner reports to its trial there); what it raises propagates out of :meth:`train`."""
        self.run = RunDir(run_dir)
        self.on_validation = on_validation
        self.vocab, self.mcfg, self.tcfg = vocab, mcfg, tcfg
        self.out = out if out is not None else sys.stdout
        self.sample_length = sample_length
        self.digest = text_digest(text)
        ids = vocab.encode(text, argument="corpus")
        self.train_ids, self.val_ids = split_ids(ids, tcfg.val_fraction)
        B, S = tcfg.batch_size, tcfg.seq_len
        if len(self.train_ids) < B * (S + 1) or len(self.val_ids) < 2:
            raise CorpusError(
                f"corpus: {len(ids):,} characters are too short for one batch of {B} sequences of {S} characters "
                f"plus a validation part (needs at least {math.ceil(B * (S + 1) / (1 - tcfg.val_fraction)) + 2:,}); "
                "use a longer text or a smaller --batch-size / --seq-len"
            )
        # Each epoch starts at a seeded offset in [0, max_offset]; every epoch has the same number of steps.
        self.max_offset = min(S, len(self.train_ids) - B * (S + 1))
        self.steps_per_epoch = n_windows((len(self.train_ids) - self.max_offset) // B, S)
        if mcfg.dropout is None:  # the default recipe's rate for a text of this size
            mcfg.dropout = default_dropout(len(self.train_ids))
        if model is None:
            unigram = np.bincount(self.train_ids, minlength=len(vocab)) if mcfg.unigram_bias else None
            with backend.seeded(tcfg.seed):  # the initial weights are a function of the seed
                model = build_model(mcfg, B, unigram=unigram)
            compile_model(model, tcfg)
            model.seed = tcfg.seed
        self._evaluator = None
        self.parallel = None  # under mpirun: this rank's streams and model, rank 0's full model
        world = mpi_world()
        if world.size > 1:
            self.parallel = StreamParallel(world, model, mcfg)
            model = self.parallel.local
            world.silence_workers()
            if not world.is_root:
                self.out = sys.stdout  # the null device now
        self._agreed = [0.0, 0.0]  # under mpirun: (ranks asking to stop, rank 0 out of time) of the last step
        self._deadline = None
        self.model = model
        self.progress = progress if progress is not None else Progress()
        self.stop_signal: int | None = None
        self.limit = max(3.0 * math.log(len(vocab)), 10.0)  # a loss this far above chance has exploded

    def unseen_in_training(self) -> tuple[str, int]:
        """The characters of the held-out part that never occur in the training part, and their occurrences.

        A Chinese text has many (rare characters); the model can only give them the probability its
        output bias leaves for characters it never saw, which the validation loss includes.
        """
        seen = np.bincount(self.train_ids, minlength=len(self.vocab)) > 0
        held = np.bincount(self.val_ids, minlength=len(self.vocab))
        unseen = np.flatnonzero(~seen & (held > 0))
        return self.vocab.decode(unseen), int(held[unseen].sum())

    # -- pieces ------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.parallel is None or self.parallel.world.is_root

    def _guard(self, loss, grads):
        if self.parallel is not None:  # average over the ranks first: they all decide alike
            late = self.is_root and self._deadline is not None and time.monotonic() >= self._deadline
            rows = self.parallel.hi - self.parallel.lo
            loss, grads, self._agreed = self.parallel.reducer.allreduce(
                loss, grads, rows, flags=(self.stop_signal is not None, late))
        divergence_guard(self.progress.global_step + 1, loss, grads, self.limit)
        return loss, grads

    def _epoch_rows(self, epoch: int) -> np.ndarray:
        offset = int(np.random.default_rng([self.tcfg.seed, 7, epoch]).integers(0, self.max_offset + 1))
        rows = streams(self.train_ids, self.tcfg.batch_size, offset)  # (B, L)
        return rows if self.parallel is None else self.parallel.rows(rows)  # (B_r, L) under mpirun

    def evaluate(self) -> float:
        """Mean validation loss (nats per character) with states carried through the held-out text."""
        S = self.tcfg.seq_len
        n = max(1, min(self.tcfg.batch_size, (len(self.val_ids) - 1) // S))
        rows = streams(self.val_ids, n)
        seq = min(S, rows.shape[1] - 1)
        if self._evaluator is None:
            with backend.seeded(0):  # its weights are overwritten below; keep the global generator untouched
                self._evaluator = build_model(self.mcfg, n)
            compile_model(self._evaluator, self.tcfg)
        evaluator = self._evaluator
        evaluator.reset_states()
        evaluator.set_weights(self.model.get_weights())
        total, count = 0.0, 0
        for x, y in windows(rows, seq):
            total += evaluator.test_on_batch(x, y) * y.size  # the fused output loss: no (n, seq, V) logits
            count += y.size
        return total / count

    def sample(self, temperature: float, length: int, seed: int) -> str:
        sampler = CharSampler(self.model, self.vocab)
        return sampler.generate(SampleConfig(length=length, temperature=temperature, seed=seed))

    def _checkpoint(self, best: bool) -> None:
        model = self.model if self.parallel is None else self.parallel.gather()  # every rank takes part
        if not self.is_root:
            return
        save_checkpoint(model, self.run.checkpoint, self.vocab, self.mcfg, self.tcfg, self.progress, self.digest)
        if best:
            save_checkpoint(model, self.run.best, self.vocab, self.mcfg, self.tcfg, self.progress, self.digest)
        write_log(self.run.log, self.progress.history)

    def repair_interrupted_writes(self) -> None:
        """On resume, finish what a kill interrupted after the checkpoint was written: ``best`` (when the
        checkpoint is the best so far), then the log and the plot, which the checkpoint's history describes."""
        if self.is_root:
            repair_interrupted_writes(self.run, self.progress, lambda path, history: plot_curves(path, history))

    def _validate(self, train_loss: float, chars_per_sec: float, samples: bool) -> None:
        p = self.progress
        val = self.evaluate() if self.is_root else None
        if self.parallel is not None:
            val = float(self.parallel.world.broadcast(val))  # every rank keeps the same progress
        best = p.best_val is None or val < p.best_val
        if best:
            p.best_val, p.best_step = val, p.global_step
        epochs_done = p.epoch + p.step_in_epoch / self.steps_per_epoch
        p.history.append({"step": p.global_step, "epoch": round(epochs_done, 4), "train_loss": round(train_loss, 6),
                          "val_loss": round(val, 6), "val_bpc": round(val / math.log(2), 6),
                          "learning_rate": self.model.optimizer.current_learning_rate(),
                          "chars_per_sec": round(chars_per_sec, 1), "elapsed_s": round(p.elapsed, 2)})
        if not self.is_root:
            self._checkpoint(best)  # its part of gathering the carried states; rank 0 writes
            return
        self._print(f"step {p.global_step} (epoch {epochs_done:.2f}): train loss {train_loss:.4f}, "
                    f"val loss {val:.4f} nats = {val / math.log(2):.4f} bits/char" + ("  [best]" if best else ""))
        self._checkpoint(best)
        note = plot_curves(self.run.plot, p.history)
        if note and not getattr(self, "_noted", False):
            self._print(note)
            self._noted = True
        if samples:
            for j, t in enumerate(SAMPLE_TEMPERATURES):
                text = self.sample(t, self.sample_length, seed=self.tcfg.seed * 1_000_003 + p.global_step * 10 + j)
                self._print(f"--- sample at temperature {t} ---")
                self._print(text)
            self._print("---")
        if self.on_validation is not None:
            self.on_validation(p.global_step, val)

    # -- the loop ----------------------------------------------------------
    def train(self, samples: bool = True) -> str:
        """Train until the epochs or the time budget run out, or a stop is requested.

        Returns ``"done"``, ``"budget"`` or ``"interrupted"``; raises :class:`Diverged`.
        """
        os.makedirs(self.run.path, exist_ok=True)
        p, t = self.progress, self.tcfg
        eval_every = t.eval_every or self.steps_per_epoch
        start = time.monotonic()
        elapsed0 = p.elapsed
        deadline = None if t.minutes is None else start + 60.0 * t.minutes
        self._deadline = deadline
        chars = t.batch_size * t.seq_len
        window_loss, window_steps, window_start = 0.0, 0, time.monotonic()
        while p.epoch < t.epochs:
            rows = self._epoch_rows(p.epoch)
            if p.step_in_epoch == 0:
                self.model.reset_states()
            bar = Progbar(self.steps_per_epoch, stream=self.out)
            self._print(f"epoch {p.epoch + 1}/{t.epochs}")
            for k, (x, y) in enumerate(windows(rows, t.seq_len)):
                if k >= self.steps_per_epoch:
                    break
                if k < p.step_in_epoch:
                    continue  # resuming inside an epoch: the carried states were restored
                step_start = time.monotonic()
                loss = self.model.train_on_batch(x, y, before_update=self._guard)
                if self.parallel is not None and self.parallel.watchdog is not None:
                    self.parallel.watchdog.beat(time.monotonic() - step_start)
                p.step_in_epoch, p.global_step = k + 1, p.global_step + 1
                p.elapsed = elapsed0 + time.monotonic() - start
                window_loss, window_steps = window_loss + loss, window_steps + 1
                rate = chars * window_steps / max(time.monotonic() - window_start, 1e-9)
                bar.update(k + 1, {"loss": window_loss / window_steps, "chars/s": int(rate)})
                if self.parallel is None:
                    stop = self.stop_signal is not None
                else:  # decided in the step's all-reduce, so that every rank stops after the same step
                    stop = bool(self._agreed[0])
                    if stop and self.stop_signal is None:
                        self.stop_signal = signal.SIGTERM  # another rank was asked (mpirun forwards SIGTERM)
                if stop:
                    self._checkpoint(best=False)
                    self._print(f"\nstopped at step {p.global_step}: checkpoint saved to {self.run.checkpoint}")
                    return "interrupted"
                out_of_steps = t.steps is not None and p.global_step >= t.steps
                if self.parallel is None:
                    out_of_time = out_of_steps or (deadline is not None and time.monotonic() >= deadline)
                else:  # rank 0's clock decides, through the step's all-reduce
                    out_of_time = out_of_steps or bool(self._agreed[1])
                if p.global_step % eval_every == 0 or out_of_time or k + 1 == self.steps_per_epoch:
                    if k + 1 == self.steps_per_epoch:
                        p.epoch, p.step_in_epoch = p.epoch + 1, 0
                    bar.update(k + 1, {"loss": window_loss / window_steps, "chars/s": int(rate)}, finished=True)
                    self._validate(window_loss / window_steps, rate, samples)
                    window_loss, window_steps, window_start = 0.0, 0, time.monotonic()
                    if out_of_time:
                        self._print(f"step budget of {t.steps} reached" if out_of_steps else
                                    f"time budget of {format_duration(60.0 * t.minutes)} reached")
                        return "budget"
                    if p.step_in_epoch == 0:
                        break
                    bar = Progbar(self.steps_per_epoch, stream=self.out)
        return "done"
