"""The forecast report: the model against persistence and seasonal-naive, per horizon step, in plain words.

Printed and written to the run directory as ``report.md`` and ``report.json`` (no timings in either, so a
resumed run's report equals an uninterrupted one's), with ``forecast.png``: forecast against actual on
the last fold's test part. The verdict compares the MAE over all steps and targets, pooled over the test
windows of every fold: the model *beats* a baseline only when its MAE is lower *and* the Diebold-Mariano
test (the errors of overlapping windows are correlated; see :func:`.metrics.diebold_mariano`) rejects equal
accuracy at the 5% level. A random walk's test part is short and its errors noisy: a few percent lower MAE
there is luck, and the report says the model does not beat persistence.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ...io.safetensors import atomic_write
from ..plotting import MISSING, pyplot, save_png
from .config import ForecastConfig
from .data import Series
from .metrics import diebold_mariano, errors, mean_mae, percent_kind

ALPHA = 0.05  # the Diebold-Mariano test's level: a lower MAE with p >= ALPHA is not reported as a win
NAMES = {"persistence": "persistence", "seasonal_naive": "seasonal-naive"}


def _pooled(results, key: str) -> np.ndarray:
    return np.concatenate([r.forecasts[key] if key != "actual" else r.actual for r in results])  # (N, H, n_t)


def verdict(model_name: str, baseline: str, model_mae: float, base_mae: float, dm: float = 0.0,
            p: float = 1.0) -> dict:
    """One sentence comparing the model's MAE with a baseline's; it *beats* the baseline only when its MAE is
    lower and the Diebold-Mariano test says so at the ``ALPHA`` level (``dm``, ``p``)."""
    change = (model_mae - base_mae) / base_mae if base_mae > 0 else (0.0 if model_mae == 0 else np.inf)
    beats = bool(model_mae < base_mae and p < ALPHA)
    nums = f"MAE {model_mae:.4g} against {base_mae:.4g}"
    test = f"Diebold-Mariano p = {p:.2g}" if p >= 1e-4 else "Diebold-Mariano p < 1e-4"
    if beats:
        text = f"the {model_name} beats {baseline} on this series: {nums} ({-100 * change:.0f}% lower, {test})"
    elif change < 0:
        text = (f"the {model_name} does not beat {baseline} on this series: {nums} is {-100 * change:.1f}% lower, "
                f"but not significantly ({test}; a win needs p < {ALPHA:g})")
    else:
        text = (f"the {model_name} does not beat {baseline} on this series: {nums} "
                f"({100 * change:.1f}% higher, {test})")
    return {"baseline": baseline, "model_mae": model_mae, "baseline_mae": base_mae, "dm_statistic": dm,
            "p_value": p, "beats": beats, "text": text}


def _table(title: str, rows, columns, first: str = "step") -> list:
    lines = ([title, ""] if title else []) + ["| " + " | ".join([first, *columns]) + " |",
                                              "|---" * (len(columns) + 1) + "|"]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(f"{v:.4g}" for v in values) + " |")
    return lines + [""]


def build_report(cfg: ForecastConfig, series: Series, results, n_params: int, source_name: str):
    """``(text, data)``: the markdown report and the same numbers as a JSON-able dict."""
    methods = ["model"] + [k for k in ("persistence", "seasonal_naive") if k in results[0].forecasts]
    kinds = percent_kind(series.values[:, :series.n_targets])
    actual = _pooled(results, "actual")  # (N, H, n_t)
    metrics = {m: errors(actual, _pooled(results, m), kinds) for m in methods}
    model_name = cfg.cell_name
    columns = [f"{model_name}" if m == "model" else NAMES[m] + (f" ({cfg.season})" if m == "seasonal_naive" else "")
               for m in methods]
    lag = -(-cfg.horizon // cfg.stride) - 1  # neighbouring windows share target rows up to this lag
    verdicts = [verdict(model_name, NAMES[m] + (f" (season {cfg.season})" if m == "seasonal_naive" else ""),
                        mean_mae(metrics["model"]), mean_mae(metrics[m]),
                        *diebold_mariano(actual, _pooled(results, "model"), _pooled(results, m), lag))
                for m in methods[1:]]
    span = (f", {series.date_texts[0]} .. {series.date_texts[-1]}" if series.date_texts else "")
    L = [f"# lstmlab forecast: {', '.join(cfg.target)}", "",
         f"- data: {source_name}, {len(series)} rows{span}"
         + (f"; input features: {', '.join(cfg.features)}" if cfg.features else ""),
         *[f"- note: {n}" for n in series.notes],
         f"- windows: lookback {cfg.lookback}, horizon {cfg.horizon} (one model predicts all {cfg.horizon} steps), "
         f"stride {cfg.stride}",
         f"- model: {cfg.layers} x {model_name}({cfg.units}) -> Dense({cfg.horizon * series.n_targets}), "
         f"{n_params:,} parameters; it sees and predicts changes from the last observed value",
         f"- evaluation: {len(results)} chronological test fold(s); the scaler was fitted and the model trained on "
         "the rows before each fold's validation block only, which picked the best epoch"]
    for r in results:
        f = r.fold
        L.append(f"- fold {r.index + 1}: train rows 0-{f.train_end - 1} ({r.n_windows['train']} windows), validation "
                 f"{f.train_end}-{f.val_end - 1} ({r.n_windows['val']}), test {f.val_end}-{f.test_end - 1} "
                 f"({r.n_windows['test']}); best epoch {r.best_epoch} of {r.epochs}")
    if cfg.season is None:
        L.append("- seasonal-naive baseline: skipped (give --season N, the period in rows)")
    L += ["", f"## Verdict (MAE over all {cfg.horizon} steps, {len(actual)} test windows)", ""]
    L += [f"- {v['text']}" for v in verdicts] + [""]
    for j, target in enumerate(cfg.target):
        L.append(f"## {target}: test errors by horizon step")
        L.append("")
        for key, title in (("mae", "MAE"), ("rmse", "RMSE"), ("pct", kinds[j] + " (%)")):
            rows = [(str(h + 1), [metrics[m][key][h][j] for m in methods]) for h in range(cfg.horizon)]
            rows.append(("mean", [float(np.mean([metrics[m][key][h][j] for h in range(cfg.horizon)]))
                                  for m in methods]))
            L += _table(f"{title}:", rows, columns)
    if len(results) > 1:
        L += ["## MAE per fold", ""]
        rows = []
        for r in results:
            m = {k: mean_mae(errors(r.actual, r.forecasts[k], kinds)) for k in methods}
            rows.append((f"fold {r.index + 1}", [m[k] for k in methods]))
        L += _table("", rows, columns, first="fold")
    text = "\n".join(L).rstrip() + "\n"
    data = {"config": cfg.to_dict(), "rows": len(series), "notes": list(series.notes), "percent_metric": kinds,
            "folds": [{"index": r.index + 1, **r.fold.to_dict(), "windows": r.n_windows, "best_epoch": r.best_epoch}
                      for r in results],
            "metrics": metrics, "verdicts": verdicts, "parameters": n_params}
    return text, data


def write_report(out: str, text: str, data: dict) -> None:
    atomic_write(os.path.join(out, "report.md"), text.encode("utf-8"))
    atomic_write(os.path.join(out, "report.json"), (json.dumps(data, indent=1) + "\n").encode("utf-8"))


def plot_forecast(path: str, cfg: ForecastConfig, series: Series, result) -> str | None:
    """Actual values against the model's and the baselines' 1-step and H-step forecasts on the last fold's
    test part (first target); returns a note instead when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return MISSING.format(name="forecast.png")
    f, H = result.fold, cfg.horizon
    lo = max(0, f.val_end - 2 * cfg.lookback)
    rows = np.arange(lo, f.test_end)
    x = [series.dates[i] for i in rows] if series.dates else rows
    at = lambda offsets: [series.dates[i] for i in offsets] if series.dates else offsets  # noqa: E731
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(x, series.values[rows, 0], color="black", lw=1.5, label="actual")
    first = result.starts + cfg.lookback  # (N,) rows of step 1
    ax.plot(at(first), result.forecasts["model"][:, 0, 0], lw=1, label=f"{cfg.cell_name}, step 1")
    if H > 1:
        ax.plot(at(first + H - 1), result.forecasts["model"][:, H - 1, 0], lw=1, label=f"{cfg.cell_name}, step {H}")
    ax.plot(at(first + H - 1), result.forecasts["persistence"][:, H - 1, 0], lw=1, ls="--",
            label=f"persistence, step {H}")
    if "seasonal_naive" in result.forecasts:
        ax.plot(at(first + H - 1), result.forecasts["seasonal_naive"][:, H - 1, 0], lw=1, ls=":",
                label=f"seasonal-naive ({cfg.season}), step {H}")
    ax.axvline(x[f.val_end - lo], color="gray", lw=0.8)
    ax.set_title(f"{cfg.target[0]}: forecast against actual on the test part (fold {result.index + 1})")
    ax.set_ylabel(cfg.target[0])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path)
    return None
