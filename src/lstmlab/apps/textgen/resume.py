"""Which options may change when a run is resumed, and applying the ones that may.

A checkpoint fixes what its tensors and its position depend on:

* the architecture (``layers``, ``units``, ``embedding``, ``cell``): the weights have those shapes;
* the vocabulary and the text: checked by the corpus digest, not here;
* ``batch_size``: the model is built stateful for that many parallel streams, the checkpoint carries their
  states (one row per stream) and the stream layout of the text depends on it;
* ``seq_len`` inside an epoch: the position in the epoch is counted in windows of that length and the carried
  states end at a window boundary; at an epoch boundary (states reset) a new length is safe;
* ``optimizer``: its slots (Adam's moments, ...) belong to that algorithm;
* ``val_fraction`` and ``seed``: they fix the split into training and held-out text, the initial weights and
  each epoch's stream offset, so the run would no longer be one run.

Everything else applies: the learning rate (in the optimizer too), clipping, the time budget, the number of
epochs, the validation interval and the dropout rate (the existing Dropout layers get the new rate; the weights
are untouched).
"""
from __future__ import annotations

from dataclasses import replace

from ...layers import Dropout
from .config import ModelConfig, TrainConfig

_ARCH = {"layers": "--layers", "units": "--units", "embedding": "--embedding", "cell": "--cell"}
_FIXED = {"optimizer": ("--optimizer", "the checkpoint's optimizer state (its moments or accumulators) belongs "
                                       "to {old}"),
          "val_fraction": ("--val-fraction", "it would move the boundary between training and held-out text"),
          "seed": ("--seed", "it fixed the initial weights and every epoch's stream offset")}


class ResumeError(ValueError):
    """An option that cannot change on resume; the message says why."""


def _num(v) -> str:
    return "off" if v is None else f"{v:g}"


def plan_resume(mcfg: ModelConfig, tcfg: TrainConfig, step_in_epoch: int, epochs_done: int, given: dict):
    """``(model_config, train_config, changes)`` for resuming with the options the user passed.

    ``given`` maps config field names (``units``, ``learning_rate``, ``clipnorm`` with 0 meaning off, ...) to
    the values the user typed; options not typed are absent. Raises :class:`ResumeError` for an option that
    cannot change; an option repeated with its stored value is not a change.
    """
    for name, option in _ARCH.items():
        if name in given and given[name] != getattr(mcfg, name):
            raise ResumeError(f"{option}: cannot change on --resume ({getattr(mcfg, name)} -> {given[name]}): the "
                              f"checkpoint's weights have the shapes of {mcfg.layers} x {mcfg.cell.upper()}"
                              f"({mcfg.units}) with embedding {mcfg.embedding}; start a new run to change them")
    for name, (option, why) in _FIXED.items():
        if name in given and given[name] != getattr(tcfg, name):
            raise ResumeError(f"{option}: cannot change on --resume ({getattr(tcfg, name)} -> {given[name]}): "
                              + why.format(old=getattr(tcfg, name)))
    if "batch_size" in given and given["batch_size"] != tcfg.batch_size:
        raise ResumeError(f"--batch-size: cannot change on --resume ({tcfg.batch_size} -> {given['batch_size']}): "
                          f"the model is built for {tcfg.batch_size} parallel streams of the text and the "
                          "checkpoint carries their states; start a new run to change it")
    if "seq_len" in given and given["seq_len"] != tcfg.seq_len and step_in_epoch:
        raise ResumeError(f"--seq-len: cannot change on --resume in the middle of an epoch ({tcfg.seq_len} -> "
                          f"{given['seq_len']}): the checkpoint is {step_in_epoch} windows of {tcfg.seq_len} "
                          "characters into its epoch and carries the states at that point; a new window length "
                          "can start only at an epoch boundary")
    if "epochs" in given and given["epochs"] != tcfg.epochs and given["epochs"] <= epochs_done:
        raise ResumeError(f"--epochs: the run has already completed {epochs_done} epochs; expected more than "
                          f"{epochs_done}, got {given['epochs']}")
    if "dropout" in given and given["dropout"] != mcfg.dropout and not mcfg.dropout:
        raise ResumeError(f"--dropout: cannot change on --resume (0 -> {given['dropout']:g}): the run was built "
                          "without dropout layers; start a new run to add them")
    changes = []
    t_new, m_new = {}, {}
    for name, option, old_cfg, new in (("learning_rate", "--lr", tcfg, t_new), ("clipnorm", "--clip", tcfg, t_new),
                                       ("epochs", "--epochs", tcfg, t_new), ("minutes", "--minutes", tcfg, t_new),
                                       ("steps", "--steps", tcfg, t_new),
                                       ("eval_every", "--eval-every", tcfg, t_new), ("seq_len", "--seq-len", tcfg, t_new),
                                       ("dropout", "--dropout", mcfg, m_new)):
        if name not in given:
            continue
        value = given[name]
        if name == "clipnorm" and value == 0:
            value = None
        old = getattr(old_cfg, name)
        if value != old:
            new[name] = value
            fmt = _num if name in ("learning_rate", "clipnorm", "minutes", "dropout") else str
            changes.append(f"{option} {'each epoch' if old is None and name == 'eval_every' else fmt(old)} -> "
                           f"{fmt(value)}")
    return replace(mcfg, **m_new), replace(tcfg, **t_new), changes


def apply_to_model(model, mcfg: ModelConfig, tcfg: TrainConfig) -> None:
    """Give the loaded model the (possibly new) learning rate, clipping and dropout rate; weights are untouched."""
    opt = model.optimizer
    opt.learning_rate = tcfg.learning_rate
    opt.clipnorm = tcfg.clipnorm
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.rate = float(mcfg.dropout)
