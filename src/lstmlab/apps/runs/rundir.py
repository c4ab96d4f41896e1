"""A run directory and a run's progress: where the files go, and how far training got."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Progress:
    """How far a run got; saved in every checkpoint, so a resumed run continues where it stopped."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_val: float | None = None
    best_step: int | None = None
    elapsed: float = 0.0
    history: list = field(default_factory=list)


@dataclass
class RunDir:
    """The files of one run: the latest checkpoint, the best one, the CSV log and the curves."""

    path: str

    @property
    def checkpoint(self):
        return os.path.join(self.path, "checkpoint.safetensors")

    @property
    def best(self):
        return os.path.join(self.path, "best.safetensors")

    @property
    def log(self):
        return os.path.join(self.path, "log.csv")

    @property
    def plot(self):
        return os.path.join(self.path, "curves.png")

    @property
    def best_or_latest(self):
        """The checkpoint a finished run is used from: the best one, else the latest."""
        return self.best if os.path.exists(self.best) else self.checkpoint

    def holds_run(self) -> bool:
        return any(os.path.exists(p) for p in (self.checkpoint, self.best, self.log))

    def clear(self) -> None:
        """Remove a previous run's files (``--force``), and stale temporary files. Another process removing the
        same files at once (the ranks of an MPI job) is no error."""
        for path in (self.checkpoint, self.best, self.log, self.plot):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        self.remove_stale_temps()

    def stale_temps(self) -> list[str]:
        """Temporary files of atomic writes (``.tmp-<random><name>``) that a killed process left behind."""
        names = tuple(os.path.basename(p) for p in (self.checkpoint, self.best, self.log, self.plot))
        try:
            entries = os.listdir(self.path)
        except OSError:
            return []
        return [os.path.join(self.path, e) for e in sorted(entries) if e.startswith(".tmp-") and e.endswith(names)]

    def remove_stale_temps(self) -> int:
        """Delete :meth:`stale_temps` (only one process may run in a run directory); returns how many."""
        removed = 0
        for path in self.stale_temps():
            try:
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed


def run_checkpoint(run: str) -> str:
    """The checkpoint a command reads from its ``RUN_DIR`` argument: the run's best, else its latest; or a
    checkpoint file given directly. A ValueError names ``RUN_DIR`` when there is none."""
    if os.path.isdir(run):
        rd = RunDir(run)
        path = rd.best_or_latest
        if not os.path.exists(path):
            raise ValueError(f"RUN_DIR: {run!r} holds no checkpoint (expected {rd.best} or {rd.checkpoint})")
        return path
    if os.path.isfile(run):
        return run
    raise ValueError(f"RUN_DIR: no run directory or checkpoint at {run!r}")
