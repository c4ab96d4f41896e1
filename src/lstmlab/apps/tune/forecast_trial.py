"""What a ``lstmlab tune forecast`` trial runs: one ordinary ``lstmlab forecast`` run directory (checkpoints,
``log.csv``, curves, ``report.md`` / ``report.json`` / ``forecast.png``; ``lstmlab forecast predict`` and
``lstmlab forecast --resume`` read it), trained with the sampled parameters over the typed / default options.

The objective is the forecast trainer's own validation loss: the MSE of the scaled changes on the validation
windows, the number that picks ``best.safetensors``. It is comparable across trials because nothing a trial
samples moves the splits or the scaler: the fold boundaries depend on the row count, the horizon and the
fractions, and the scaler on the training rows alone. Every epoch's validation loss is reported to the trial
(the pruner's input); with ``--folds K`` the steps run on across the folds and the value is the mean of the
folds' best losses. The test windows are never looked at to choose a trial.
"""
from __future__ import annotations

import math
import os

from .trial_base import Objective
from .space import FORECAST_PARAMETERS, Param, sample


def default_space(lookback: int, season: int | None, fits) -> tuple:
    """The default forecast space: learning rate (log-uniform) first, then width, depth and cell, then the
    lookback among half, once and twice the typed / default one, keeping those the seasonal-naive baseline
    (``season <= lookback``) and the data (``fits(lookback)``) allow; no lookback when one value is left."""
    lookbacks = [lb for lb in sorted({max(1, lookback // 2), lookback, 2 * lookback})
                 if (season is None or season <= lb) and fits(lb)]
    space = (Param("learning_rate", low=3e-4, high=3e-2, log=True),
             Param("units", choices=(16, 32, 64, 128)),
             Param("layers", low=1, high=2),
             Param("cell", choices=("lstm", "gru")))
    return space + ((Param("lookback", choices=tuple(lookbacks)),) if len(lookbacks) > 1 else ())


class ForecastObjective(Objective):
    """Tunes ``lstmlab forecast`` (registered in :data:`.objective.OBJECTIVES`).

    Parameters
    ----------
    options : dict
        The forecast options the user typed, as :class:`..forecast.ForecastConfig` fields (``csv`` absolute);
        the others take ``lstmlab forecast``'s defaults (the built-in series' or a CSV's).
    space : tuple of Param
    minutes : None
        Not supported (a forecast trial is bounded by ``--epochs``); kept for the objectives' common spec.
    """

    command = "forecast"
    parameters = FORECAST_PARAMETERS
    value_unit = "MSE of the scaled changes"
    columns = (("epochs", "epochs"), ("val MAE", "val_mae"))
    run_hint = "lstmlab forecast predict {run}"  # how to use the best trial's run directory

    _series = None  # read once per worker, on the first trial

    @staticmethod
    def best_line(trial) -> str:
        mae = trial.user_attrs.get("val_mae")
        return (f"validation loss {trial.value:.4g} (MSE of the scaled changes)"
                + (f", validation MAE {mae:.4g} in the data's units" if mae is not None else ""))

    def base(self):
        """The config every trial starts from (ValueError naming the option when the typed ones are wrong)."""
        from ..forecast.command import new_config

        return new_config(self.options)

    def config(self, params: dict):
        from ..forecast.config import ForecastConfig

        return ForecastConfig.from_dict({**self.base().to_dict(), **params})

    def series(self):
        """``(series, source name)``, read once per process."""
        if self._series is None:
            from ..forecast.command import SOURCE_NAME
            from ..forecast.data import BUILTIN, builtin_path, read_series

            c = self.base()
            if c.csv == BUILTIN:
                self._series = (read_series(builtin_path(), c.target, c.features, c.date, source=BUILTIN), SOURCE_NAME)
            else:
                self._series = (read_series(c.csv, c.target, c.features, c.date), c.csv)
        return self._series

    def fits(self, lookback: int) -> bool:
        """Whether the data holds training, validation and test windows with ``lookback``."""
        from ..forecast.walkforward import plan_folds

        try:
            plan_folds(self.series()[0], self.config({"lookback": lookback}))
        except ValueError:
            return False
        return True

    def default_space(self) -> tuple:
        c = self.base()
        return default_space(c.lookback, c.season, self.fits)

    def check(self) -> None:
        """Fail before any worker starts when the options, the data or a value of the space cannot make a run:
        the first value of every parameter, then each choice (or end) of the cell and the lookback."""
        from ..forecast.walkforward import plan_folds

        first = {p.name: (p.choices[0] if p.choices else p.low) for p in self.space}
        series = self.series()[0]
        plan_folds(series, self.config(first))
        for p in self.space:
            if p.name in ("cell", "lookback"):
                for value in p.choices or (p.low, p.high):
                    try:
                        plan_folds(series, self.config({**first, p.name: value}))
                    except ValueError as exc:
                        raise ValueError(f"--space: {p.name} = {value!r} cannot make a run: {exc}") from None

    def __call__(self, trial, run_dir: str) -> float:
        import optuna

        from ..forecast.report import build_report, plot_forecast, write_report
        from ..forecast.trainer import ForecastTrainer, load_checkpoint
        from ..forecast.walkforward import fold_dir, plan_folds, score_fold
        from ..runs import Diverged, RunDir, install_stop_handlers

        cfg = self.config(sample(trial, self.space))
        series, source = self.series()
        trial.set_user_attr("run_dir", os.path.abspath(run_dir))
        trial.set_user_attr("worker_pid", os.getpid())
        epochs_before = 0  # the folds already trained: the pruner's steps run on across folds

        def report(epoch: int, val_loss: float, val_mae: float) -> None:
            trial.report(val_loss, epochs_before + epoch)
            trial.set_user_attr("epochs", epochs_before + epoch)  # a pruned trial's table row shows it too
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation loss {val_loss:.4f} at epoch {epochs_before + epoch}")

        os.makedirs(run_dir, exist_ok=True)
        results, bests, maes = [], [], []
        with open(os.path.join(run_dir, "forecast.log"), "a", encoding="utf-8") as log:
            for k, fold in enumerate(plan_folds(series, cfg)):
                run = RunDir(fold_dir(run_dir, k, cfg.folds))
                trainer = ForecastTrainer(run.path, series, cfg, k, fold, out=log, on_validation=report)
                install_stop_handlers(trainer)
                try:
                    reason = trainer.train()
                except Diverged as exc:  # a learning rate too high is an answer too: prune, keep the message
                    trial.set_user_attr("diverged", str(exc))
                    raise optuna.TrialPruned(str(exc)) from None
                if reason == "interrupted":  # Optuna marks the trial FAIL; the run directory can be resumed
                    print(f"trial {trial.number} interrupted in fold {k + 1}; its checkpoints are in {run_dir} "
                          f"(lstmlab forecast --resume --out {run_dir})", flush=True)
                    raise KeyboardInterrupt
                p = trainer.progress
                bests.append(p.best_val)
                maes.append(next(r["val_mae"] for r in p.history if r["step"] == p.best_step))  # best epoch's
                epochs_before += p.epoch
                best, *_ = load_checkpoint(run.best)
                results.append(score_fold(trainer, best))
        # The same files as lstmlab forecast writes at the end of a run: the trial is an ordinary run.
        text, data = build_report(cfg, series, results, best.count_params(), source)
        write_report(run_dir, text, data)
        plot_forecast(os.path.join(run_dir, "forecast.png"), cfg, series, results[-1])
        trial.set_user_attr("epochs", epochs_before)
        trial.set_user_attr("val_mae", sum(maes) / len(maes))
        value = sum(bests) / len(bests)
        return value if math.isfinite(value) else float("nan")
