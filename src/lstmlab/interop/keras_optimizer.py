"""Compile settings and optimizer state in Keras 3 files: ``compile_config`` and ``optimizer/vars``.

A compiled Keras model's ``config.json`` holds ``compile_config`` (the optimizer, loss, metrics and
loss weights as Keras objects or names), and its ``model.weights.h5`` holds the optimizer's variables
under ``optimizer/vars/0, 1, ...`` in the order Keras creates them::

    0                 iterations (int64 scalar)
    1                 learning_rate (float32 scalar; absent when the rate is a schedule)
    then the slots, for the trainable weights in Keras's order (``model.trainable_variables``):
    SGD               momentum of each weight                          (only with momentum > 0)
    RMSprop           velocity of each weight, then momentum of each (momentum > 0), then
                      average_gradient of each (centered)
    Adagrad           accumulator of each weight
    Adam, AdamW       (momentum, velocity) of weight 1, of weight 2, ... then velocity_hat of each (amsgrad)
    Nadam             (momentum, velocity) per weight as Adam, then u_product (a scalar)
    Adamax            (momentum, norm) per weight

Keras's and lstmlab's update rules are the same (tests/test_optimizers_keras3.py), so with these the next
step in either library continues the other's training exactly. Nadam's ``u_product`` is a function of
``iterations`` in lstmlab (recomputed, so the file's value is checked to be a finite scalar and not used).

Every name is looked up in a table, never imported; what lstmlab cannot reproduce (an optimizer or loss
it lacks, EMA, gradient accumulation, label smoothing, a loss scale) is refused with an error that names
it, and ``compile=False`` loads the model without it.
"""
from __future__ import annotations

import numpy as np

from ..training import losses as L
from ..training import metrics as M
from ..training import optimizers as O
from ..training import schedules as S
from ..registry import accepted_arguments
from .keras_config import check_object

# lstmlab's registry name <-> Keras's class, and the (interleaved) groups of slots Keras creates, in order.
OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adam": "Adam", "adamw": "AdamW",
              "nadam": "Nadam", "adamax": "Adamax"}
_OPTIMIZER_OF = {k: v for v, k in OPTIMIZERS.items()}
SLOT_GROUPS = {"sgd": (("momentum",),), "rmsprop": (("velocity",), ("momentum",), ("average_gradient",)),
               "adagrad": (("accumulator",),), "adam": (("m", "v"), ("v_hat",)), "adamw": (("m", "v"), ("v_hat",)),
               "nadam": (("m", "v"),), "adamax": (("m", "u"),)}
ANY = object()  # a Keras-only argument whose value changes nothing lstmlab computes
# Keras optimizer arguments lstmlab has no use for, with the value that means "unused".
_OPTIMIZER_ONLY = {"name": ANY, "use_ema": False, "ema_momentum": ANY, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None}
_KERAS_OPTIMIZER_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                             "loss_scale_factor": None, "gradient_accumulation_steps": None}
LOSSES = {"mean_squared_error": "MeanSquaredError", "mean_absolute_error": "MeanAbsoluteError",
          "binary_crossentropy": "BinaryCrossentropy", "categorical_crossentropy": "CategoricalCrossentropy",
          "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy"}
_LOSS_OF = {k: v for v, k in LOSSES.items()}
_LOSS_ONLY = {"name": ANY, "reduction": "sum_over_batch_size", "label_smoothing": 0.0, "axis": -1,
              "ignore_class": None, "dtype": None}
METRICS = {"mean_absolute_error": "MeanAbsoluteError", "mean_squared_error": "MeanSquaredError",
           "precision": "Precision", "recall": "Recall", "auc": "AUC",
           "top_k_categorical_accuracy": "TopKCategoricalAccuracy",
           "sparse_top_k_categorical_accuracy": "SparseTopKCategoricalAccuracy"}
_METRIC_OF = {k: v for v, k in METRICS.items()}
SCHEDULES = ("ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay")
MAX_NADAM_STEPS = 1 << 22
_COMPILE_IGNORED = ("run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss")


def _obj(module: str, class_name: str, config: dict) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _drop(config: dict, unused: dict, where: str, what: str) -> dict:
    """``config`` without Keras-only arguments; one that is set to something lstmlab cannot do is refused."""
    out = {}
    for key, value in config.items():
        if key in unused:
            if unused[key] is not ANY and value is not None and value != unused[key]:
                raise ValueError(f"{where}: {key}={value!r}: lstmlab's {what} has no {key}; only "
                                 f"{unused[key]!r} (unused) can be read")
            continue
        out[key] = value
    return out


# -- lstmlab -> Keras ---------------------------------------------------------------
def _schedule_to_keras(schedule) -> dict:
    spec = S.SCHEDULES.serialize(schedule)
    if spec["class_name"] not in SCHEDULES:
        raise ValueError(f"learning_rate: the {spec['class_name']} schedule has no Keras 3 equivalent; save with "
                         "include_optimizer=False or as .safetensors")
    return _obj("keras.optimizers.schedules", spec["class_name"], {"name": spec["class_name"], **spec["config"]})


def optimizer_to_keras(optimizer) -> dict:
    spec = O.serialize(optimizer)
    name = spec["class_name"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} has no Keras 3 equivalent; save with include_optimizer=False "
                         "or as .safetensors")
    config = dict(spec["config"])
    if isinstance(optimizer.learning_rate, S.LearningRateSchedule):
        config["learning_rate"] = _schedule_to_keras(optimizer.learning_rate)
    return _obj("keras.optimizers", OPTIMIZERS[name], {"name": name, **config, **_KERAS_OPTIMIZER_DEFAULTS})


def _loss_to_keras(loss):
    if loss is None:
        return None
    spec = L.serialize(loss)
    if spec["class_name"] not in LOSSES:
        raise ValueError(f"loss {spec['class_name']!r} has no Keras 3 equivalent")
    config = {"name": spec["class_name"], "reduction": "sum_over_batch_size", **spec["config"]}
    if "from_logits" in config and spec["class_name"] != "sparse_categorical_crossentropy":
        config.update(label_smoothing=0.0, axis=-1)
    return _obj("keras.losses", LOSSES[spec["class_name"]], config)


def _metric_to_keras(metric):
    if isinstance(metric, str):
        M.METRICS.lookup(metric, argument="metrics")  # Keras resolves the same names ("mae", "accuracy", ...)
        return metric
    spec = M.METRICS.serialize(metric)
    if spec["class_name"] not in METRICS:
        raise ValueError(f"metric {spec['class_name']!r} has no Keras 3 equivalent")
    config = {"name": spec["class_name"], **spec["config"], "dtype": "float32"}
    return _obj("keras.metrics", METRICS[spec["class_name"]], config)


def compile_to_keras(model) -> dict:
    """Keras's ``compile_config`` of a compiled lstmlab model (one entry per output where there are several)."""
    losses = [_loss_to_keras(l) for l in model._losses]
    metrics = [[_metric_to_keras(m) for m in specs] for specs in model._metric_specs]
    single = len(losses) == 1
    weights = None if all(w == 1.0 for w in model._loss_weights) else list(model._loss_weights)
    return {"optimizer": optimizer_to_keras(model.optimizer), "loss": losses[0] if single else losses,
            "loss_weights": weights, "metrics": metrics[0] if single else metrics, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _slot_layout(optimizer) -> list[tuple]:
    """The slot groups Keras creates for ``optimizer``, in Keras's order, each group interleaved per weight."""
    groups = SLOT_GROUPS[O.serialize(optimizer)["class_name"]]
    return [tuple(s for s in group if s in optimizer.slot_names) for group in groups
            if any(s in optimizer.slot_names for s in group)]


def optimizer_variables(model, trainable: list) -> list[np.ndarray]:
    """The optimizer's variables as Keras saves them; ``trainable`` is the trainable weights in Keras's order.

    A slot the optimizer has not made yet (no step taken) is written at its initial value, as Keras builds it.
    """
    opt = model.optimizer
    values = [np.asarray(opt.iterations, np.int64)]
    if not isinstance(opt.learning_rate, S.LearningRateSchedule):
        values.append(np.asarray(opt.learning_rate, np.float32))
    for group in _slot_layout(opt):
        for w in trainable:
            for slot in group:
                value = opt.slots[slot].get(w.path)
                values.append(opt._initial_slot(slot, w.value) if value is None else value)
    if isinstance(opt, O.Nadam):
        dtype = trainable[0].value.dtype if trainable else np.float32
        values.append(np.asarray(opt._u_product(opt.iterations), dtype))
    return values


# -- Keras -> lstmlab ---------------------------------------------------------------
def _number_or_schedule(value, where: str):
    if isinstance(value, dict):
        cls, config = check_object(value, where, SCHEDULES, "learning-rate schedule")
        config = dict(config)
        if "name" not in accepted_arguments(S.SCHEDULES.lookup(cls))[0]:
            config.pop("name", None)  # ExponentialDecay is not named in lstmlab
        return S.SCHEDULES.deserialize({"class_name": cls, "config": config}, argument=where)
    return value


def optimizer_from_keras(spec, where: str):
    cls, config = check_object(spec, where, set(_OPTIMIZER_OF), "optimizer")
    name = _OPTIMIZER_OF[cls]
    config = _drop(config, _OPTIMIZER_ONLY, where, f"{cls} optimizer")
    if "learning_rate" in config:
        config["learning_rate"] = _number_or_schedule(config["learning_rate"], f"{where}.learning_rate")
    return O.OPTIMIZERS.deserialize({"class_name": name, "config": config}, argument=where)


def _loss_from_keras(spec, where: str):
    if spec is None:
        return None
    if isinstance(spec, str):
        return L.LOSSES.get(spec, argument=where)
    cls, config = check_object(spec, where, set(_LOSS_OF), "loss")
    config = _drop(config, _LOSS_ONLY, where, cls)
    return L.LOSSES.deserialize({"class_name": _LOSS_OF[cls], "config": config}, argument=where)


def _metric_from_keras(spec, where: str):
    if isinstance(spec, str):
        M.METRICS.lookup(spec, argument=where)
        return spec
    cls, config = check_object(spec, where, set(_METRIC_OF), "metric")
    unused = {"dtype": "float32"}
    if "name" not in accepted_arguments(M.METRICS.lookup(_METRIC_OF[cls]))[0]:
        unused["name"] = _METRIC_OF[cls]  # our MAE and MSE metrics are named by their class only
    config = _drop(config, unused, where, f"{cls} metric")
    return M.METRICS.deserialize({"class_name": _METRIC_OF[cls], "config": config}, argument=where)


def _per_output(value, where: str, leaf):
    """``leaf`` applied to one entry, a list of them or a dict of them by output name."""
    if isinstance(value, dict) and not _is_leaf(value):
        return {str(k): leaf(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        return [leaf(v, f"{where}[{k}]") for k, v in enumerate(value)]
    return leaf(value, where)


def _is_leaf(value) -> bool:
    """A metric or loss by name, or one Keras object (a dict of them by output name is not a leaf)."""
    return isinstance(value, str) or isinstance(value, dict) and "class_name" in value


def _metric_list(value, where: str):
    """Our ``metrics`` argument from Keras's: a list, a list of lists (one per output), or a dict by output."""
    if value is None:
        return None
    if _is_leaf(value):
        return [_metric_from_keras(value, where)]
    if isinstance(value, dict):
        return {str(k): _metric_list(v, f"{where}[{k!r}]") for k, v in value.items()}
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of metrics, got {type(value).__name__}")
    return [_metric_list(v, f"{where}[{k}]") if isinstance(v, list) or v is None
            else _metric_from_keras(v, f"{where}[{k}]") for k, v in enumerate(value)]


def compile_from_keras(cc, where: str = "compile_config") -> dict:
    """Arguments of ``model.compile`` from Keras's ``compile_config`` (each name checked, nothing imported)."""
    if not isinstance(cc, dict):
        raise ValueError(f"{where}: expected an object, got {type(cc).__name__}")
    known = {"optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", *_COMPILE_IGNORED}
    unknown = sorted(set(cc) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    if cc.get("weighted_metrics") not in (None, [], {}):
        raise ValueError(f"{where}.weighted_metrics: lstmlab has no weighted metrics; load with compile=False "
                         "and compile the model again")
    weights = cc.get("loss_weights")
    if weights is not None:
        numbers = list(weights.values()) if isinstance(weights, dict) else (
            weights if isinstance(weights, list) else [weights])
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in numbers):
            raise ValueError(f"{where}.loss_weights: expected numbers, got {weights!r:.80}")
        if not isinstance(weights, (list, dict)):
            weights = None if weights == 1 else [weights]
    return {"optimizer": optimizer_from_keras(cc.get("optimizer"), f"{where}.optimizer"),
            "loss": _per_output(cc.get("loss"), f"{where}.loss", _loss_from_keras),
            "metrics": _metric_list(cc.get("metrics"), f"{where}.metrics"), "loss_weights": weights}


def restore_optimizer(model, trainable: list, reader) -> None:
    """Fill ``model.optimizer``'s step count, learning rate and slots from Keras's ``optimizer/vars``.

    ``reader.optimizer_var(k, shape, kind, what)`` returns dataset ``k`` after checking its shape and kind
    ("i" or "f"); ``reader.optimizer_count()`` counts them (bounded before anything is read). A Keras
    optimizer that never took a step saves only its iterations and learning rate; its slots then start at
    their initial values here too.
    """
    opt = model.optimizer
    layout = _slot_layout(opt)
    has_lr = not isinstance(opt.learning_rate, S.LearningRateSchedule)
    head = 1 + has_lr
    full = head + sum(len(g) for g in layout) * len(trainable) + isinstance(opt, O.Nadam)
    count = reader.optimizer_count()
    if count not in (head, full):
        raise ValueError(f"optimizer/vars: a {type(opt).__name__} optimizer for {len(trainable)} trainable weights "
                         f"has {full} variables, the file holds {count}")
    iterations = int(reader.optimizer_var(0, (), "i", "iterations"))
    if iterations < 0:
        raise ValueError(f"optimizer/vars/0: iterations: expected a count >= 0, got {iterations}")
    if isinstance(opt, O.Nadam) and iterations > MAX_NADAM_STEPS:  # lstmlab's Nadam keeps one product per step
        raise ValueError(f"optimizer/vars/0: iterations: {iterations} Nadam steps, more than the "
                         f"{MAX_NADAM_STEPS} lstmlab's Nadam follows; load with compile=False")
    opt.iterations = iterations
    if has_lr:
        opt.learning_rate = float(reader.optimizer_var(1, (), "f", "learning_rate"))
    if count == head:
        return
    k = head
    for group in layout:
        for w in trainable:
            for slot in group:
                value = reader.optimizer_var(k, w.shape, "f", f"{slot} of {w.path}")
                opt.slots[slot][w.path] = value.astype(w.value.dtype)
                k += 1
    if isinstance(opt, O.Nadam):
        reader.optimizer_var(k, (), "f", "u_product")  # a function of iterations in lstmlab: checked, then recomputed
