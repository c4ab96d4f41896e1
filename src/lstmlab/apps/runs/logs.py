"""A run's CSV log (one row per validation) and its learning curves, both written atomically."""
from __future__ import annotations

import csv
import io

from ...io.safetensors import atomic_write
from ..plotting import MISSING, pyplot, save_png


def log_text(history) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    return buf.getvalue()


def read_text(path) -> str | None:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def write_log(path, history) -> None:
    if not history:
        return
    atomic_write(path, log_text(history).encode())


def plot_curves(path, history, *, ylabel: str, title: str, x: str = "step",
                series=(("train_loss", "train"), ("val_loss", "validation"))) -> str | None:
    """Write the learning curves (``series``: (column, label) pairs of ``history`` against column ``x``);
    returns a note instead when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return MISSING.format(name="curves.png")
    xs = [r[x] for r in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, label in series:
        ax.plot(xs, [r[column] for r in history], label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, path)
    return None
