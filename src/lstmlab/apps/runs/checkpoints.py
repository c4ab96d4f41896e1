"""Checkpoints of a run: the model file (weights, optimizer state, carried states) with the run's description
and progress in its metadata, read back with every field checked."""
from __future__ import annotations

import json
import math
import os

from ...io.errors import ModelFileError
from ...io.safetensors import atomic_write, load_file
from ...models import load_model_with_metadata
from .logs import log_text, read_text, write_log
from .rundir import Progress


class CheckpointError(ModelFileError):
    """A checkpoint that cannot be read as a run of this application: names the file and the field at fault."""

    def __init__(self, path, field: str | None, problem: str):
        super().__init__(path, field, problem)
        self.args = (str(self.args[0]).replace("path:", "checkpoint:", 1),)


def save_checkpoint(model, path, extra: dict) -> None:
    """``model`` and the run's description (``extra``: its kind, configs, progress, ...), atomically."""
    model.save(path, metadata=extra)


def read_checkpoint(path, kind: str, fields: dict):
    """``(model, extra, progress)`` of a checkpoint of application ``kind``.

    ``fields`` maps each key ``extra`` must hold to its JSON type (``str``, ``dict``, ``list``); any problem is
    one :class:`CheckpointError` naming the file and the field.
    """
    try:
        model, extra = load_model_with_metadata(path)
    except ModelFileError as exc:
        raise CheckpointError(exc.path, exc.field, exc.problem) from None
    except ValueError as exc:
        raise CheckpointError(path, None, str(exc)) from None
    if extra.get("kind") != kind:
        raise CheckpointError(path, "extra.kind", f"an lstmlab model but not a {kind.rsplit('.', 1)[-1]} run")
    for key, type_ in {**fields, "progress": dict}.items():
        if not isinstance(extra.get(key), type_):
            shown = {str: "string", dict: "object", list: "array"}.get(type_, type_.__name__)
            raise CheckpointError(path, f"extra.{key}", f"expected a JSON {shown}, got {type(extra.get(key)).__name__}")
    try:
        progress = Progress(**extra["progress"])
    except TypeError as exc:
        raise CheckpointError(path, "extra.progress", f"a corrupted run description ({exc})") from None
    check_progress(path, progress)
    return model, extra, progress


def check_progress(path, p: Progress) -> None:
    for name in ("epoch", "step_in_epoch", "global_step"):
        v = getattr(p, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CheckpointError(path, f"extra.progress.{name}", f"expected a non-negative integer, got {v!r}")
    for name in ("best_val", "elapsed"):
        v = getattr(p, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise CheckpointError(path, f"extra.progress.{name}", f"expected a finite number, got {v!r}")
    if not isinstance(p.history, list) or not all(isinstance(r, dict) for r in p.history):
        raise CheckpointError(path, "extra.progress.history", "expected a list of JSON objects")


def checkpoint_step(path) -> int | None:
    """The ``global_step`` stored in the checkpoint file at ``path`` (None when it is missing or unreadable)."""
    try:
        _, meta = load_file(path)
        return int(json.loads(meta["extra"])["progress"]["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def repair_interrupted_writes(run, progress: Progress, plot) -> None:
    """On resume, finish what a kill interrupted after the checkpoint was written: ``best`` (when the
    checkpoint is the best so far), then the log and the plot (``plot(path, history)``), which the
    checkpoint's history describes."""
    p = progress
    if p.best_step is not None and p.best_step == p.global_step and checkpoint_step(run.best) != p.best_step:
        if os.path.exists(run.checkpoint):
            with open(run.checkpoint, "rb") as f:
                atomic_write(run.best, f.read())
    if p.history and log_text(p.history) != read_text(run.log):
        write_log(run.log, p.history)
        plot(run.plot, p.history)
