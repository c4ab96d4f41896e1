"""What a trial runs: an objective builds one ordinary run directory from the sampled parameters and returns
its best validation loss, reporting every validation to the trial so that the pruner can stop it early.

Objectives are looked up by the command they tune (:data:`OBJECTIVES`); ``lstmlab train`` is the first. A
job that wants tuning (forecasting, classification) adds a class with the same members: ``command``,
``from_spec(spec)`` (rebuilt in every worker process from a JSON-able spec) and ``__call__(trial, run_dir)``,
and for the command line and the report ``parameters``, ``default_space()``, ``check()``, ``value_unit``,
``best_line(trial)``, ``columns`` and ``run_hint``. :mod:`.forecast_trial` is the second,
:mod:`.classify_trial` the third.
"""
from __future__ import annotations

import math
import os

from .classify_trial import ClassifyObjective
from .forecast_trial import ForecastObjective
from .trial_base import Objective
from .space import DEFAULT_SPACE, PARAMETERS, sample

OBJECTIVES: dict = {}


def objective(cls):
    OBJECTIVES[cls.command] = cls
    return cls


@objective
class TrainObjective(Objective):
    """Tunes ``lstmlab train``: each trial is a run directory that ``lstmlab train --resume`` and
    ``lstmlab generate`` accept.

    Parameters
    ----------
    options : dict
        The train options after defaults (``lr``, ``units``, ``corpus``, ... as ``lstmlab train`` names them).
    space : tuple of Param
    minutes : float or None
        Wall-clock budget of each trial.
    """

    command = "train"
    parameters = PARAMETERS  # parameter name -> the train option that fixes it
    value_unit = "nats/char"
    columns = (("steps", "steps"),)  # the report table's extra columns: (heading, user attribute)
    run_hint = "lstmlab generate / train --resume"  # how to use the best trial's run directory ({run}: it)

    _text = None  # read once per worker, on the first trial

    @staticmethod
    def best_line(trial) -> str:
        return f"validation loss {trial.value:.4f} nats ({trial.value / math.log(2):.4f} bits/char)"

    def default_space(self) -> tuple:
        return DEFAULT_SPACE

    def text(self):
        """The corpus and its vocabulary, read once per process."""
        if self._text is None:
            from ..textgen import Vocabulary, builtin_corpus, read_corpus
            from ..textgen.config import BUILTIN

            corpus = self.options["corpus"] or BUILTIN
            text = builtin_corpus() if corpus == BUILTIN else read_corpus(corpus)
            self._text = (text, Vocabulary.from_text(text))
        return self._text

    def configs(self, params: dict):
        """``(ModelConfig, TrainConfig, nesterov)`` of a trial with ``params`` over the typed / default options."""
        from ..textgen import ModelConfig, TrainConfig
        from ..textgen.config import BUILTIN

        o = {**self.options, **{k: v for k, v in params.items()}}
        optimizer = o["optimizer"]
        nesterov = optimizer == "sgd-nesterov"
        clip = o.get("clipnorm", o["clip"])
        tcfg = TrainConfig(seq_len=o["seq_len"], batch_size=o["batch_size"], optimizer="sgd" if nesterov else optimizer,
                           learning_rate=float(o.get("learning_rate", o["lr"])), clipnorm=float(clip) if clip else None,
                           epochs=20 if o["epochs"] is None else o["epochs"],
                           minutes=self.minutes if self.minutes is not None else o["minutes"], steps=o["steps"],
                           val_fraction=o["val_fraction"], seed=o["seed"], eval_every=o["eval_every"],
                           corpus=os.path.abspath(o["corpus"]) if o["corpus"] else BUILTIN)
        _, vocab = self.text()
        mcfg = ModelConfig(vocab_size=len(vocab), layers=o["layers"], units=o["units"], embedding=o["embedding"],
                           dropout=o["dropout"], cell=o["cell"], activation=o.get("activation", "tanh"))
        return mcfg, tcfg, nesterov

    def check(self) -> None:
        """Fail before any worker starts when the typed options or the corpus cannot make a run (one small
        model is built from the space's first values; nothing is written)."""
        import io

        from ..textgen import TextTrainer

        params = {p.name: (p.choices[0] if p.choices else p.low) for p in self.space}
        mcfg, tcfg, _ = self.configs(params)
        text, vocab = self.text()
        TextTrainer(os.devnull, text, vocab, mcfg, tcfg, out=io.StringIO())

    def __call__(self, trial, run_dir: str) -> float:
        import optuna

        from ...training import optimizers as O
        from ...training.losses import SparseCategoricalCrossentropy
        from ..runs import Diverged, install_stop_handlers
        from ..textgen import TextTrainer

        params = sample(trial, self.space)
        mcfg, tcfg, nesterov = self.configs(params)
        text, vocab = self.text()
        trial.set_user_attr("run_dir", os.path.abspath(run_dir))
        trial.set_user_attr("worker_pid", os.getpid())

        def report(step: int, val_loss: float) -> None:
            trial.report(val_loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation loss {val_loss:.4f} at step {step}")

        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "train.log"), "a", encoding="utf-8") as log:
            trainer = TextTrainer(run_dir, text, vocab, mcfg, tcfg, out=log, on_validation=report,
                                  sample_length=self.options.get("sample_length") or 200)
            if nesterov:  # the checkpoint's optimizer config keeps momentum and nesterov for --resume
                trainer.model.compile(O.SGD(tcfg.learning_rate, momentum=0.9, nesterov=True, clipnorm=tcfg.clipnorm),
                                      SparseCategoricalCrossentropy(from_logits=True))
            install_stop_handlers(trainer)
            try:
                reason = trainer.train(samples=not self.options.get("no_samples"))
            except Diverged as exc:  # a learning rate too high is an answer too: prune, keep the message
                trial.set_user_attr("diverged", str(exc))
                raise optuna.TrialPruned(str(exc)) from None
        if reason == "interrupted":  # Optuna marks the trial FAIL; its run directory can be resumed by hand
            print(f"trial {trial.number} interrupted at step {trainer.progress.global_step}; its checkpoint is in "
                  f"{run_dir} (lstmlab train --resume --out {run_dir})", flush=True)
            raise KeyboardInterrupt
        best = trainer.progress.best_val
        trial.set_user_attr("steps", trainer.progress.global_step)
        return best if best is not None and math.isfinite(best) else float("nan")


objective(ForecastObjective)  # lstmlab tune forecast (in its own file)
objective(ClassifyObjective)  # lstmlab tune classify (in its own file)
