"""Stopping a run cleanly: Ctrl-C / SIGTERM ask the trainer to stop after the current step and save; a loss
that is not finite or has exploded stops before the update (the last good checkpoint stays intact)."""
from __future__ import annotations

import math
import signal

import numpy as np


class Diverged(RuntimeError):
    """The loss became NaN/Inf or exploded; the weights were not updated."""


class RunTrainer:
    """What every application's trainer shares with the run machinery: it records a stop request (the loop
    saves and returns at the next step) and writes its lines to ``self.out``."""

    stop_signal: int | None = None
    out = None

    def request_stop(self, signum: int) -> None:
        self.stop_signal = signum

    def _print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()


def install_stop_handlers(trainer) -> None:
    """SIGINT and SIGTERM call ``trainer.request_stop(signum)`` instead of killing the process."""
    def handler(signum, frame):
        trainer.request_stop(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def divergence_guard(step: int, loss: float, grads, limit: float) -> None:
    """Raise :class:`Diverged` when ``loss`` is not finite or above ``limit``, or a gradient is not finite."""
    if not math.isfinite(loss) or loss > limit:
        raise Diverged(f"training diverged at step {step} (loss {loss:.4g})")
    if not all(np.all(np.isfinite(g)) for g in grads):
        raise Diverged(f"training diverged at step {step} (non-finite gradients)")
