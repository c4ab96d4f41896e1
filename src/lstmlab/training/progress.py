"""A Keras-style progress bar: ``12/50 [=====>......] - ETA: 3s - loss: 0.4123``.

On a terminal the bar redraws in place; in a log file (not a TTY) only the
finished line of each epoch is written, so logs stay readable.
"""
from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


class Progbar:
    """Progress over ``target`` steps (None: unknown, a generator's epoch); ``update(step, values)`` with a dict
    of named numbers."""

    def __init__(self, target: int | None, width: int = 30, verbose: int = 1, stream=None, interval: float = 0.05):
        self.target, self.width, self.verbose = (None if target is None else int(target)), width, verbose
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.start = time.monotonic()
        self._last_draw = 0.0

    def _line(self, step: int, values: dict, finished: bool) -> str:
        elapsed = time.monotonic() - self.start
        if self.target is None:  # as Keras shows an epoch of unknown length
            line = f"{step}/Unknown {format_duration(elapsed)} {format_duration(elapsed / max(step, 1))}/step"
            return line + "".join(f" - {k}: {v:.4f}" for k, v in values.items())
        digits = len(str(self.target))
        frac = step / self.target if self.target else 1.0
        filled = int(self.width * frac)
        bar = "=" * filled + (">" if filled < self.width else "") + "." * max(0, self.width - filled - 1)
        line = f"{step:>{digits}}/{self.target} [{bar[:self.width]}]"
        if finished:
            per_step = elapsed / max(step, 1)
            line += f" - {format_duration(elapsed)} {format_duration(per_step)}/step"
        else:
            eta = elapsed / max(step, 1) * (self.target - step)
            line += f" - ETA: {format_duration(eta)}"
        for k, v in values.items():
            if isinstance(v, int):
                line += f" - {k}: {v}"
                continue
            tiny = v != 0 and abs(v) < 1e-3
            line += f" - {k}: {v:.4e}" if tiny else f" - {k}: {v:.4f}"
        return line

    def update(self, step: int, values: dict, finished: bool = False) -> None:
        if self.verbose == 0:
            return
        now = time.monotonic()
        if not finished and (not self.interactive or now - self._last_draw < self.interval):
            return
        self._last_draw = now
        line = self._line(step, values, finished)
        if self.interactive:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if finished else ""))
        elif finished:
            self.stream.write(line + "\n")
        self.stream.flush()
