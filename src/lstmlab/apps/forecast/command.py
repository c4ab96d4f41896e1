"""``lstmlab forecast`` (train, the default action) and ``lstmlab forecast predict``: arguments -> the library.

Errors a user can cause are ValueErrors naming the option; ``lstmlab.cli.main`` prints them as one line and
exits 2. A stop signal saves and exits 128 + its number; a divergence keeps the last good checkpoint and
exits 1.
"""
from __future__ import annotations

import os
import sys
import time

from .config import ForecastConfig
from .data import BUILTIN, BUILTIN_DEFAULTS

# Options whose default is None on the parser, so --resume knows which ones were typed. dest -> config field.
_TRACKED = {"csv": "csv", "target": "target", "features": "features", "date": "date", "lookback": "lookback",
            "horizon": "horizon", "stride": "stride", "season": "season", "folds": "folds",
            "val_fraction": "val_fraction", "test_fraction": "test_fraction", "cell": "cell", "layers": "layers",
            "units": "units", "epochs": "epochs", "batch_size": "batch_size", "lr": "learning_rate", "seed": "seed"}
REPORT_FILES = ("report.md", "report.json", "forecast.png")
SOURCE_NAME = "the built-in NOAA Mauna Loa monthly CO2 series (public domain; see apps/forecast/data/SOURCE.md)"


def add_parser(sub) -> None:
    p = sub.add_parser("forecast", help="forecast a time series from a CSV file, against honest baselines",
                       description=(
                           "Train a recurrent forecaster on windows of a time series (chronological train / "
                           "validation / test splits, scaling fitted on the training rows only) and report its "
                           "errors per horizon step next to the persistence and seasonal-naive baselines. With no "
                           "arguments it runs on the built-in NOAA Mauna Loa monthly CO2 series."))
    p.add_argument("--csv", help="the CSV (or TSV) file with a header row (default: the built-in CO2 series)")
    p.add_argument("--target", nargs="+", help="the column(s) to forecast (default for the built-in: co2_ppm)")
    p.add_argument("--features", nargs="+", help="extra input columns (names, or one comma-separated list)")
    p.add_argument("--date", help="a date column: rows are sorted by it and gaps are reported")
    p.add_argument("--out", help="run directory (default: runs/forecast-<date>-<time>)")
    g = p.add_argument_group("windows and evaluation")
    g.add_argument("--lookback", type=int, help="rows the model sees (default 24)")
    g.add_argument("--horizon", type=int, help="rows it forecasts, all at once (default 6)")
    g.add_argument("--stride", type=int, help="rows between window starts (default 1)")
    g.add_argument("--season", type=int, help="period in rows for the seasonal-naive baseline (built-in: 12)")
    g.add_argument("--folds", type=int, help="walk-forward test folds (default 1)")
    g.add_argument("--val-fraction", type=float, help="validation rows before each test block (default 0.15)")
    g.add_argument("--test-fraction", type=float, help="rows held out for testing, all folds (default 0.15)")
    g = p.add_argument_group("model and training")
    g.add_argument("--cell", help="lstm, gru, rnn or another registered cell (default lstm)")
    g.add_argument("--layers", type=int, help="recurrent layers (default 1)")
    g.add_argument("--units", type=int, help="units per layer (default 32)")
    g.add_argument("--epochs", type=int, help="epochs per fold (default 40)")
    g.add_argument("--batch-size", type=int, help="windows per step (default 32)")
    g.add_argument("--lr", type=float, help="Adam learning rate (default 3e-3)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g = p.add_argument_group("run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    g.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    p.set_defaults(func=cmd_forecast)
    actions = p.add_subparsers(dest="forecast_action", parser_class=type(p))
    q = actions.add_parser("predict", help="forecast the rows after the end of a CSV with a trained run",
                           description="Print the next --horizon values after the last row of the CSV.")
    q.add_argument("run", metavar="RUN_DIR", help="a run directory of 'lstmlab forecast'")
    q.add_argument("--csv", dest="predict_csv", metavar="CSV", help="the CSV to continue (default: the run's own)")
    q.set_defaults(func=cmd_predict)


def _given(args) -> dict:
    given = {field: getattr(args, dest) for dest, field in _TRACKED.items() if getattr(args, dest) is not None}
    if "features" in given:
        given["features"] = [c.strip() for item in given["features"] for c in item.split(",") if c.strip()]
    if "csv" in given:
        if not given["csv"].strip():
            raise ValueError(f"--csv: expected a path, got {given['csv']!r}")
        given["csv"] = os.path.abspath(given["csv"])
    return given


def new_config(given: dict) -> ForecastConfig:
    """The config of a new run: what was typed, over the built-in series' defaults or a user CSV's."""
    if "csv" in given:
        if "target" not in given:
            raise ValueError("--target: expected the column(s) to forecast in --csv FILE, got none")
        base = {"date": None, "season": None}
    else:
        base = {"csv": BUILTIN, **BUILTIN_DEFAULTS}
    return ForecastConfig(**{**base, **given})


def resumed_config(saved: ForecastConfig, given: dict, epochs_done: int) -> ForecastConfig:
    """The saved config with the options that may change on --resume (--epochs, --csv to the same data)."""
    names = {field: f"--{dest.replace('_', '-')}" for dest, field in _TRACKED.items()}
    for field, value in given.items():
        if field not in ("epochs", "csv") and value != getattr(saved, field):
            raise ValueError(f"{names[field]}: cannot change on --resume ({getattr(saved, field)} -> {value})")
    if given.get("epochs", saved.epochs) < epochs_done:
        raise ValueError(f"--epochs: the run has already completed {epochs_done} epochs; expected at least "
                         f"{epochs_done}, got {given['epochs']}")
    return ForecastConfig.from_dict({**saved.to_dict(), **{k: given[k] for k in ("epochs", "csv") if k in given}})


def _holds_run(out: str) -> bool:
    from ..runs import RunDir

    return (RunDir(out).holds_run() or RunDir(os.path.join(out, "fold-1")).holds_run()
            or any(os.path.exists(os.path.join(out, f)) for f in REPORT_FILES))


def _clear(out: str) -> None:
    from ..runs import RunDir

    RunDir(out).clear()
    for name in sorted(os.listdir(out)):
        if name.startswith("fold-") and os.path.isdir(os.path.join(out, name)):
            RunDir(os.path.join(out, name)).clear()
    for name in REPORT_FILES:
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))


def _load(cfg: ForecastConfig):
    from .data import builtin_path, read_series

    if cfg.csv == BUILTIN:
        return read_series(builtin_path(), cfg.target, cfg.features, cfg.date, source=BUILTIN), SOURCE_NAME
    return read_series(cfg.csv, cfg.target, cfg.features, cfg.date), cfg.csv


def cmd_forecast(args) -> int:
    from ..runs import Diverged, checkpoint_step
    from .report import build_report, plot_forecast, write_report
    from .trainer import load_checkpoint
    from .walkforward import first_checkpoint, plan_folds, run_folds

    if args.out is not None and not args.out.strip():
        raise ValueError(f"--out: expected a path, got {args.out!r}")
    if args.resume and args.force:
        raise ValueError("--resume and --force: expected at most one of them")
    given = _given(args)
    out = args.out or os.path.join("runs", time.strftime("forecast-%Y%m%d-%H%M%S"))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file; expected a directory")
    if args.resume:
        if not os.path.exists(first_checkpoint(out)):
            raise ValueError(f"--resume: {out!r} holds no forecast checkpoint to resume")
        _, saved, *_, progress, extra = load_checkpoint(first_checkpoint(out))
        cfg = resumed_config(saved, given, progress.epoch)
        series, source = _load(cfg)
        if series.digest != extra["data_sha256"]:
            raise ValueError(f"--resume: the data in {cfg.csv!r} is not the series this run was trained on")
    else:
        if _holds_run(out) and not args.force:
            raise ValueError(f"--out: {out!r} already holds a run; use --resume to continue it or --force to "
                             "overwrite it")
        cfg = new_config(given)
        series, source = _load(cfg)
    plan_folds(series, cfg)  # too few rows, a stride too large: refused before anything is written
    if args.force and os.path.isdir(out):
        _clear(out)
    os.makedirs(out, exist_ok=True)
    print(f"data: {source}: {len(series)} rows; target {', '.join(cfg.target)}"
          + (f"; features {', '.join(cfg.features)}" if cfg.features else ""))
    for note in series.notes:
        print(f"note: {note}")
    print(f"model: {cfg.layers} x {cfg.cell_name}({cfg.units}); lookback {cfg.lookback}, horizon {cfg.horizon}; "
          f"run directory: {out}" + ("  (resuming)" if args.resume else ""))
    try:
        status, results = run_folds(out, series, cfg, resume=args.resume)
    except Diverged as exc:
        step = checkpoint_step(first_checkpoint(out)) if cfg.folds == 1 else None
        kept = (f"the last good checkpoint (step {step}) in {out} is intact" if step is not None else
                "the checkpoints written before it are intact" if cfg.folds > 1 else "no checkpoint had been written yet")
        sys.stderr.write(f"lstmlab: error: {exc}; {kept}; start again with a lower learning rate: --force --lr "
                         f"{cfg.learning_rate / 10:g}\n")
        return 1
    if status == "interrupted":
        print(f"resume with: lstmlab forecast --resume --out {out}")
        return 128 + int(results)
    n_params = load_checkpoint(first_checkpoint(out))[0].count_params()
    text, data = build_report(cfg, series, results, n_params, source)
    write_report(out, text, data)
    note = plot_forecast(os.path.join(out, "forecast.png"), cfg, series, results[-1])
    print()
    print(text, end="")
    print()
    if note:
        print(note)
    print(f"written: {os.path.join(out, 'report.md')}, report.json" + ("" if note else ", forecast.png")
          + f", learning curves and checkpoints in {out}" + (" (fold-*/)" if cfg.folds > 1 else ""))
    print(f"forecast beyond the last row with: lstmlab forecast predict {out}" + ("" if cfg.csv == BUILTIN else
                                                                                 " --csv NEW.csv"))
    return 0


def cmd_predict(args) -> int:
    from .predict import forecast_beyond

    if args.predict_csv is not None and not args.predict_csv.strip():
        raise ValueError(f"--csv: expected a path, got {args.predict_csv!r}")
    cfg, series, labels, forecast = forecast_beyond(args.run, args.predict_csv)
    last = series.date_texts[-1] if series.date_texts else f"row {len(series)}"
    print(f"# the {cfg.horizon} rows after {last}, the last of {len(series)} rows, forecast by {args.run}")
    print(",".join(["step", cfg.date or "after_last_row", *cfg.target]))
    for h, (label, row) in enumerate(zip(labels, forecast), start=1):
        print(",".join([str(h), label, *(f"{v:.6g}" for v in row)]))
    return 0
