"""What a ``lstmlab tune classify`` trial runs: one ordinary ``lstmlab classify`` run directory (checkpoints,
``log.csv``, ``curves.png``, ``report.md`` / ``report.json``; ``lstmlab classify predict`` and
``lstmlab classify --resume`` read it), trained with the sampled parameters over the typed / default options.

The objective is the classify trainer's own validation loss: the mean cross-entropy (nats) of the validation
part, the number that picks ``best.safetensors``. It is comparable across trials because nothing a trial
samples moves the data: the sample (``--limit``), the stratified split and the tokenizer depend on the data,
the seed, the fractions and the token options alone, all fixed for the study. Every validation's loss is
reported to the trial at the epoch it closes (the pruner's input). The test part is scored only for each run's
own report, never to choose a trial.
"""
from __future__ import annotations

import math
import os

from .trial_base import Objective
from .space import CLASSIFY_PARAMETERS, Param, sample

# Sampled parameter -> (config, field) of lstmlab classify (the others are named as its options' fields).
_FIELDS = {"learning_rate": ("train", "learning_rate"), "clipnorm": ("train", "clipnorm"),
           "batch_size": ("train", "batch_size"), **{n: ("model", n) for n in
                                                      ("units", "layers", "cell", "bidirectional", "embedding")}}

# The default classification space: the learning rate first and on a log scale (Adam's default 2e-3 in the
# middle), then width, depth, the cell, reading both ways, and the embedding's size. The classifier has no
# dropout to search.
DEFAULT_SPACE = (
    Param("learning_rate", low=3e-4, high=3e-2, log=True),
    Param("units", choices=(16, 32, 64, 128)),
    Param("layers", low=1, high=2),
    Param("cell", choices=("lstm", "gru")),
    Param("bidirectional", choices=(False, True)),
    Param("embedding", choices=(16, 32, 64, 128)),
)


class ClassifyObjective(Objective):
    """Tunes ``lstmlab classify`` (registered in :data:`.objective.OBJECTIVES`).

    Parameters
    ----------
    options : dict
        The classify options the user typed, by argparse dest (``lr``, ``data``, ``units``, ...); the others
        take ``lstmlab classify``'s defaults (the built-in reviews, 4000 of them, unless ``--data`` is given).
    space : tuple of Param
    minutes : float or None
        Wall-clock budget of each trial (``--minutes-per-trial``; otherwise classify's ``--minutes``, if typed).
    """

    command = "classify"
    parameters = CLASSIFY_PARAMETERS
    value_unit = "cross-entropy, nats"
    columns = (("epochs", "epochs"), ("val accuracy", "val_accuracy"))
    run_hint = "lstmlab classify predict {run} FILE"  # how to use the best trial's run directory

    _data = None  # read once per worker, on the first trial

    @staticmethod
    def best_line(trial) -> str:
        acc = trial.user_attrs.get("val_accuracy")
        return (f"validation loss {trial.value:.4g} nats (cross-entropy)"
                + (f", validation accuracy {acc:.4f}" if acc is not None else ""))

    def default_space(self) -> tuple:
        return DEFAULT_SPACE

    def configs(self, params: dict, n_classes: int = 2):
        """``(TrainConfig, ModelConfig)`` of a trial with ``params`` over the typed / default options
        (ValueError naming the option or the parameter when a value is wrong)."""
        from ..classify.command import _TRACKED, _configs
        from ..classify.config import ModelConfig

        given = {_TRACKED[dest]: v for dest, v in self.options.items()}
        given.update({_FIELDS[name]: v for name, v in params.items()})
        if self.minutes is not None:
            given[("train", "minutes")] = self.minutes
        tcfg, model = _configs(None, given)  # clip 0 -> none, --data made absolute, the built-in reviews' limit
        vocab = len(self._data[1].tokenizer) if self._data is not None else tcfg.vocab_size
        return tcfg, ModelConfig(vocab_size=vocab, n_classes=n_classes, **model)

    def data(self):
        """``(labeled text, prepared parts)``, read and split once per process (no trial changes them)."""
        if self._data is None:
            from ..classify import data as D
            from ..classify.split import prepare

            tcfg, _ = self.configs({})
            texts = D.load(tcfg.data, tcfg.text, tcfg.label)
            self._data = (texts, prepare(texts, tcfg))
        return self._data

    def check(self) -> None:
        """Fail before any worker starts when the options, the data or a value of the space cannot make a run:
        every choice (or end) of every parameter, over the space's first values; nothing is written."""
        first = {p.name: (p.choices[0] if p.choices else p.low) for p in self.space}
        self.configs(first)  # the typed options alone, before reading the data
        self.data()
        for p in self.space:
            for value in p.choices or (p.low, p.high):
                try:
                    self.configs({**first, p.name: value})
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"--space: {p.name} = {value!r} cannot make a run: {exc}") from None

    def __call__(self, trial, run_dir: str) -> float:
        import optuna

        from ..classify.command import finish
        from ..classify.trainer import ClassifyTrainer
        from ..runs import Diverged, install_stop_handlers

        texts, prepared = self.data()
        tcfg, mcfg = self.configs(sample(trial, self.space), len(prepared.labels))
        trial.set_user_attr("run_dir", os.path.abspath(run_dir))
        trial.set_user_attr("worker_pid", os.getpid())
        def report(epoch: int, val_loss: float, val_accuracy: float) -> None:
            trial.report(val_loss, epoch)
            trial.set_user_attr("epochs", epoch)  # a pruned trial's table row shows it too
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation loss {val_loss:.4f} at epoch {epoch}")

        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "classify.log"), "a", encoding="utf-8") as log:
            trainer = ClassifyTrainer(run_dir, prepared, mcfg, tcfg, texts.digest(), out=log, on_validation=report)
            install_stop_handlers(trainer)
            try:
                reason = trainer.train()
            except Diverged as exc:  # a learning rate too high is an answer too: prune, keep the message
                trial.set_user_attr("diverged", str(exc))
                raise optuna.TrialPruned(str(exc)) from None
            if reason == "interrupted":  # Optuna marks the trial FAIL; the run directory can be resumed
                print(f"trial {trial.number} interrupted at step {trainer.progress.global_step}; its checkpoint is "
                      f"in {run_dir} (lstmlab classify --resume --out {run_dir})", flush=True)
                raise KeyboardInterrupt
            # The same report as lstmlab classify writes at the end of a run: the trial is an ordinary run.
            log.write(finish(trainer, run_dir, texts.source) + "\n")
        p = trainer.progress
        trial.set_user_attr("val_accuracy", next(r["val_accuracy"] for r in p.history if r["step"] == p.best_step))
        best = p.best_val
        return best if best is not None and math.isfinite(best) else float("nan")
