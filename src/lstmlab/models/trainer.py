"""compile / fit / evaluate / predict: what every model (Sequential, functional, subclassed) trains with.

A model supplies the forward and backward (``_outputs``, ``backward``, ``_trainable_pairs``) and the shapes
of its inputs and outputs; this mixin turns data into batches (``training.data_adapters``), losses into
gradients and gradients into optimizer updates, with Keras's arguments and logs.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..functional._validate import internal_activations
from ..training import callbacks as cb
from ..training import losses as L
from ..training import metrics as M
from ..training import optimizers as O
from ..training.data_adapters import Batches, leaves
from ..training.progress import Progbar
from ._arguments import check_batch_size, check_bool, check_int, check_verbose


def _check_callbacks(callbacks):
    if callbacks is not None and (not isinstance(callbacks, (list, tuple))
                                  or not all(isinstance(c, cb.Callback) for c in callbacks)):
        shown = type(callbacks).__name__ if not isinstance(callbacks, (list, tuple)) else \
            "a list holding " + ", ".join(sorted({type(c).__name__ for c in callbacks
                                                  if not isinstance(c, cb.Callback)}))
        raise ValueError(f"callbacks: expected a list of Callback instances, got {shown}")


def _distribution(callbacks):
    """The callback that spreads ``fit`` over processes (:class:`lstmlab.distributed.DataParallel`), if any.

    Recognised by its methods, so that models never import the distributed package (which sits above them):
    ``prepare(model)`` before the data is batched (the ranks agree on weights and seed), ``shuffle_seed(model)``,
    ``split_batch(x, y, sample_weight)`` -> this process's rows of a global batch (None when it has none),
    ``before_update(loss, grads)`` -> the averaged ``(loss, grads)``, and ``is_root`` (only the root prints).
    """
    found = [c for c in callbacks or [] if callable(getattr(c, "split_batch", None))
             and callable(getattr(c, "before_update", None))]
    if len(found) > 1:
        raise ValueError(f"callbacks: expected at most one DataParallel callback, got {len(found)}")
    return found[0] if found else None


def _check_steps(name: str, value):
    return None if value is None else check_int(name, value, 1)


class Trainer:
    """Keras's training API over a model's forward and backward."""

    # -- compile -----------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs) -> None:
        """Choose the optimizer, the loss (one for all outputs, a list, or a dict by output name) and metrics.

        Keras's ``weighted_metrics``, ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted and have no effect here (there is no graph to compile).
        """
        ignored = {"weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"}
        unknown = sorted(set(kwargs) - ignored)
        if unknown:
            raise ValueError(f"compile: unknown argument(s) {', '.join(unknown)}")
        self.optimizer = O.get(optimizer)
        names = self._output_names()
        self.loss = None if loss is None else self._per_output("loss", loss, names, L.get)
        self._losses = [None] * len(names) if loss is None else (
            self.loss if isinstance(self.loss, list) else [self.loss] * len(names))
        if loss_weights is None:
            self._loss_weights = [1.0] * len(names)
        else:
            self._loss_weights = [float(w) for w in self._per_output("loss_weights", loss_weights, names, float,
                                                                     broadcast=False)]
        self._metric_specs = self._metric_lists(metrics, names)
        self.metrics = self._metric_specs  # as given, per output
        self.compiled = True
        if self._train_seed is None:
            self._train_seed = backend.draw_seed()

    @staticmethod
    def _per_output(argument, value, names, make, broadcast=True):
        """One value per output from one value, a list aligned with the outputs, or a dict by output name."""
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"{argument}: no output named {unknown[0]!r}; the outputs are {', '.join(names)}")
            return [None if value.get(n) is None else make(value[n]) for n in names]
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError(f"{argument}: expected {len(names)} entries (one per output: {', '.join(names)}), "
                                 f"got {len(value)}")
            return [None if v is None else make(v) for v in value]
        if not broadcast:
            raise ValueError(f"{argument}: expected a list or dict with one entry per output, got {value!r}")
        one = make(value)
        return one if len(names) == 1 else [one] * len(names)

    @staticmethod
    def _metric_lists(metrics, names) -> list:
        """The metric specs of each output."""
        if metrics is None:
            return [[] for _ in names]
        if isinstance(metrics, dict):
            unknown = sorted(set(metrics) - set(names))
            if unknown:
                raise ValueError(f"metrics: no output named {unknown[0]!r}; the outputs are {', '.join(names)}")
            per = [metrics.get(n) or [] for n in names]
        elif len(names) > 1 and isinstance(metrics, (list, tuple)) and metrics and all(
                isinstance(m, (list, tuple)) or m is None for m in metrics):
            if len(metrics) != len(names):
                raise ValueError(f"metrics: expected {len(names)} lists (one per output), got {len(metrics)}")
            per = [m or [] for m in metrics]
        elif isinstance(metrics, (list, tuple)):
            per = [list(metrics)] + [[] for _ in names[1:]]
        else:
            raise ValueError(f"metrics: expected a list of metric names or Metric instances, got {metrics!r}")
        per = [[m] if isinstance(m, (str, M.Metric, dict)) else list(m) for m in per]
        per = [[M.METRICS.get(m, argument="metrics") if isinstance(m, dict) else m for m in specs] for specs in per]
        for specs in per:
            for m in specs:
                if not isinstance(m, M.Metric):
                    M.METRICS.lookup(m, argument="metrics")
        return per

    def _compile_config(self) -> dict:
        def spec(m):  # a name as given, or an instance with its configuration (AUC(curve="PR", name="pr"))
            if isinstance(m, str):
                return m
            try:
                return M.METRICS.serialize(m)
            except (ValueError, AttributeError, TypeError):
                return m.name
        losses = [None if l is None else L.serialize(l) for l in self._losses]
        metrics = [[spec(m) for m in specs] for specs in self._metric_specs]
        return {"optimizer": O.serialize(self.optimizer), "loss": losses[0] if len(losses) == 1 else losses,
                "metrics": metrics[0] if len(metrics) == 1 else metrics, "loss_weights": self._loss_weights}

    def _require_compiled(self, what: str):
        if not self.compiled or all(l is None for l in getattr(self, "_losses", [None])):
            raise ValueError(f"model {self.name!r}: call compile(optimizer, loss) before {what}()")

    # -- metrics and logs ----------------------------------------------------
    def _metric_names(self) -> list[str]:
        names = self._output_names()
        out = []
        for k, specs in enumerate(self._metric_specs):
            for s in specs:
                base = "accuracy" if s in ("accuracy", "acc") else (s if isinstance(s, str) else s.name)
                out.append(base if len(names) == 1 else f"{names[k]}_{base}")
        return out

    def _make_metrics(self, preds) -> list:
        mets = []
        for k, specs in enumerate(self._metric_specs):
            for s in specs:
                m = M.get(s, self._losses[k], preds[k].shape[-1] if preds[k].ndim else 1)
                if isinstance(s, M.Metric):
                    m.reset()
                mets.append((k, m))
        return mets

    def _update_metrics(self, mets, ys, preds, masks) -> None:
        for k, m in mets:
            m.update(ys[k], preds[k], masks[k])

    # -- one batch -----------------------------------------------------------
    def _seed_layers(self, step: int) -> None:
        for k, layer in enumerate(self._all_layers()):  # dropout masks are a function of (seed, step, layer)
            layer.rng = np.random.default_rng([self._train_seed, step, k])

    @property
    def seed(self) -> int | None:
        """The seed of training's random draws: dropout masks are a function of (seed, step, layer), and
        ``fit``'s shuffling of (seed, epoch). Drawn at ``compile`` unless set; saved with the model, so a
        resumed run continues exactly as an uninterrupted one."""
        return self._train_seed

    @seed.setter
    def seed(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {value!r}")
        self._train_seed = int(value)

    def _targets(self, y) -> list:
        """``y`` as one array per output (a dict by output name, a list, or one array for one output)."""
        names = self._output_names()
        if isinstance(y, dict):
            missing = [n for n, l in zip(names, self._losses) if l is not None and n not in y]
            if missing:
                raise ValueError(f"y: no targets for output {missing[0]!r}; got keys {', '.join(map(str, y))}")
            return [y.get(n) for n in names]
        if len(names) == 1:
            return [y]
        if not isinstance(y, (list, tuple)) or len(y) != len(names):
            raise ValueError(f"y: model {self.name!r} has {len(names)} outputs ({', '.join(names)}); expected a list "
                             f"or dict of {len(names)} target arrays")
        return list(y)

    def _loss_and_gradients(self, x, y, sw, training: bool):
        """Forward, the total data loss and (when training) backward: ``(loss, per-output losses, preds, masks)``."""
        preds, masks = self._outputs(x, training=training)
        ys = self._targets(y)
        total, parts, dys = 0.0, [], []
        for k, (fn, weight) in enumerate(zip(self._losses, self._loss_weights)):
            if fn is None:
                parts.append(None)
                dys.append(None)
                continue
            if ys[k] is None:
                raise ValueError("y: expected an array of samples, got None" if len(ys) == 1 else
                                 f"y: no targets for output {self._output_names()[k]!r}")
            value, dy = fn(ys[k], preds[k], masks[k], sample_weight=sw)
            parts.append(value)
            total += weight * value
            dys.append(dy * weight if weight != 1.0 else dy)
        if training:
            self.backward(dys if len(dys) > 1 else dys[0])
        return total, parts, preds, masks

    def _train_step(self, x, y, sw=None, guard=None):
        """Forward, loss, backward and one optimizer update; ``guard(loss, grads)`` may refuse the update."""
        self._seed_layers(self.optimizer.iterations)
        loss, parts, preds, masks = self._loss_and_gradients(x, y, sw, training=True)
        loss += self.regularization_loss()
        pairs = self._trainable_pairs()
        grads = [g for _, g in pairs]
        if guard is not None:
            replaced = guard(loss, grads)
            if replaced is not None:  # data-parallel training: the loss and gradients averaged over processes
                loss, grads = replaced
        self.optimizer.apply([w for w, _ in pairs], grads)
        return loss, parts, preds, masks

    def _idle_step(self, guard):
        """A data-parallel step of a process whose share of the global batch is empty: it contributes zero
        gradients with weight zero to ``guard``'s average, then applies the same update as the others."""
        weights = [w for w in self.weights if w.trainable]
        loss, grads = guard(0.0, [np.zeros_like(w.value) for w in weights])
        self.optimizer.apply(weights, grads)
        return loss, [loss], None, None

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False,
                       before_update=None):
        """One optimizer step on one batch; returns the loss (and metrics, as a list, when compiled with some).

        ``before_update(loss, grads)``, when given (not a Keras argument), is called with the batch's loss
        and the trainable weights' gradients before the optimizer changes anything; raising there leaves
        the weights untouched (a trainer's check for a NaN or exploding loss). It may return a pair
        ``(loss, grads)`` that replaces both: the gradients applied and the loss returned (data-parallel
        training returns their averages over all processes, :mod:`lstmlab.distributed`).
        """
        self._require_compiled("train_on_batch")
        x, y, sw = self._one_batch(x, y, sample_weight, class_weight)
        loss, parts, preds, masks = self._train_step(x, y, sw, guard=before_update)
        return self._batch_result(loss, parts, y, preds, masks, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss (plus regularization) on one batch in inference mode; stateful layers carry their state."""
        self._require_compiled("test_on_batch")
        x, y, sw = self._one_batch(x, y, sample_weight, None)
        loss, parts, preds, masks = self._loss_and_gradients(x, y, sw, training=False)
        return self._batch_result(loss + self.regularization_loss(), parts, y, preds, masks, return_dict)

    def _one_batch(self, x, y, sample_weight, class_weight):
        data = Batches(x, y, sample_weight, batch_size=max(1, self._count(x)), class_weight=class_weight,
                       n_inputs=self._n_inputs(), n_outputs=len(self._output_names()))
        return next(iter(data.epoch(0)))

    @staticmethod
    def _count(x) -> int:
        first = leaves(x)[0] if isinstance(x, (list, dict)) and leaves(x) else x
        try:
            return len(first)
        except TypeError:
            return 1

    def _batch_result(self, loss, parts, y, preds, masks, return_dict):
        logs = self._logs(loss, parts, None, None)
        mets = self._make_metrics(preds) if preds is not None else []
        if mets:
            self._update_metrics(mets, self._targets(y), preds, masks)
            logs.update({n: m.result() for n, (_, m) in zip(self._metric_names(), mets)})
        if return_dict:
            return logs
        return loss if len(logs) == 1 else list(logs.values())

    def _logs(self, loss, parts, sums, seen) -> dict:
        logs = {"loss": loss}
        names = self._output_names()
        if len(names) > 1:
            for n, p in zip(names, parts if sums is None else [s / seen if s is not None else None for s in sums]):
                if p is not None:
                    logs[f"{n}_loss"] = p
        return logs

    # -- fit -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq: int = 1):
        """Train for ``epochs`` epochs; returns a :class:`~lstmlab.training.callbacks.History`.

        ``x`` may be arrays (lists or dicts of them for several inputs), a ``PyDataset``, a generator or an
        iterable of batches (see :mod:`lstmlab.training.data_adapters`). ``validation_split`` holds out the
        *last* fraction of array samples (before shuffling), as Keras does. Shuffling and dropout are
        functions of the model's seed and the epoch / step number, so training resumed from a saved model
        continues exactly as an uninterrupted run would.
        """
        self._require_compiled("fit")
        if x is None:
            raise ValueError("x: expected an array of samples, got None")
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        initial_epoch = check_int("initial_epoch", initial_epoch, 0)
        epochs = check_int("epochs", epochs, 0 if initial_epoch else 1)  # epochs <= initial_epoch: nothing to do
        verbose = check_verbose(verbose)
        shuffle = check_bool("shuffle", shuffle) if shuffle != "batch" else True
        steps_per_epoch = _check_steps("steps_per_epoch", steps_per_epoch)
        validation_steps = _check_steps("validation_steps", validation_steps)
        validation_freq = check_int("validation_freq", validation_freq, 1)
        _check_callbacks(callbacks)
        dist = _distribution(callbacks)
        if dist is not None:
            dist.prepare(self)  # rank 0's weights and seed everywhere, before the data is shuffled
            verbose = verbose if dist.is_root else 0
        if (isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating))
                or not 0.0 <= validation_split < 1.0):
            raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
        kw = {"n_inputs": self._n_inputs(), "n_outputs": len(self._output_names())}
        shuffle_seed = self._train_seed if dist is None else dist.shuffle_seed(self)
        data = Batches(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, shuffle_seed, class_weight,
                       **kw)
        if validation_split > 0:
            if data.kind != "arrays":
                raise ValueError("validation_split: only supported for arrays; pass validation_data for a "
                                 f"{type(x).__name__}")
            if validation_data is not None:
                raise ValueError("validation_split: give validation_split or validation_data, not both")
            n_val = int(math.floor(data.n * validation_split))
            if n_val == 0 or n_val == data.n:
                raise ValueError(f"validation_split: {validation_split} of {data.n} samples leaves "
                                 f"{n_val} for validation")
            from ..training.data_adapters import take
            cut = np.arange(data.n - n_val, data.n)
            validation_data = (take(data.x, cut), take(data.y, cut)) + (
                () if data.sample_weight is None else (take(data.sample_weight, cut),))
            keep = np.arange(data.n - n_val)
            data = Batches(take(data.x, keep), take(data.y, keep), take(data.sample_weight, keep), batch_size,
                           steps_per_epoch, shuffle, shuffle_seed, **kw)
        val = None
        if validation_data is not None:
            val = self._validation_batches(validation_data, validation_batch_size or batch_size, validation_steps, kw)
        if data.kind == "arrays":
            self._check_stateful_batches(data.n, batch_size, "x")
        self._before_fit(data)
        history = cb.History()
        cbs = list(callbacks or []) + [history]
        for c in cbs:
            c.set_model(self)
            c.set_params({"epochs": epochs, "steps": data.steps, "verbose": verbose})
        self.stop_training = False
        for c in cbs:
            c.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            for c in cbs:
                c.on_epoch_begin(epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            logs = self._fit_epoch(data, epoch, cbs, verbose, dist)
            if val is not None and not self.stop_training and (epoch + 1) % validation_freq == 0:
                logs.update({f"val_{k}": v for k, v in self._evaluate_batches(val, 0).items()})
            if verbose == 2:
                print(" - ".join([f"{self._last_step}/{data.steps or self._last_step}"]
                                 + [f"{k}: {v:.4f}" for k, v in logs.items()]))
            elif verbose == 1:
                self._bar.update(self._last_step, logs, finished=True)
            data.on_epoch_end()
            for c in cbs:
                c.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for c in cbs:
            c.on_train_end({})
        self.history = history
        return history

    def _before_fit(self, data) -> None:
        """A hook for models that must check something about the data first (nothing by default)."""

    def _validation_batches(self, validation_data, batch_size, steps, kw):
        if isinstance(validation_data, tuple):
            if len(validation_data) not in (2, 3):
                raise ValueError("validation_data: expected (x_val, y_val) or (x_val, y_val, sample_weight), got "
                                 f"a tuple of {len(validation_data)} items")
            return Batches(*validation_data, batch_size=batch_size, steps=steps, what="validation_data", **kw)
        if isinstance(validation_data, list) and len(validation_data) == 2:
            return Batches(*validation_data, batch_size=batch_size, steps=steps, what="validation_data", **kw)
        if isinstance(validation_data, (np.ndarray, dict, list)):
            raise ValueError("validation_data: expected a tuple (x_val, y_val), a PyDataset or a generator")
        return Batches(validation_data, batch_size=batch_size, steps=steps, what="validation_data", **kw)

    def _fit_epoch(self, data, epoch, cbs, verbose, dist=None) -> dict:
        self._bar = Progbar(data.steps, verbose=1 if verbose == 1 else 0)
        loss_sum, part_sums, seen, mets, logs = 0.0, None, 0, None, {}
        step = 0
        for step, (xb, yb, swb) in enumerate(data.epoch(epoch), start=1):
            for c in cbs:
                c.on_train_batch_begin(step - 1, {})
            n = self._count(xb)  # the global batch: the loss below is its mean when distributed
            if dist is None:
                loss, parts, preds, masks = self._train_step(xb, yb, swb)
            else:
                shard = dist.split_batch(xb, yb, swb)  # this process's rows
                if shard is None:
                    loss, parts, preds, masks = self._idle_step(dist.before_update)
                else:
                    xb, yb, swb = shard
                    loss, parts, preds, masks = self._train_step(xb, yb, swb, guard=dist.before_update)
            if mets is None and preds is not None:
                mets = self._make_metrics(preds)
            if mets and preds is not None:
                self._update_metrics(mets, self._targets(yb), preds, masks)
            loss_sum += loss * n
            part_sums = [None if p is None else p * n + (0.0 if part_sums is None else part_sums[k])
                         for k, p in enumerate(parts)]
            seen += n
            logs = self._logs(loss_sum / seen, None, part_sums, seen)
            logs.update({name: m.result() for name, (_, m) in zip(self._metric_names(), mets or [])})
            self._bar.update(step, logs)
            for c in cbs:
                c.on_train_batch_end(step - 1, {**logs, "loss": loss})
            if self.stop_training:
                break
        if step == 0:
            raise ValueError(f"x: the training data of epoch {epoch + 1} has no batches")
        self._last_step = step
        return logs

    # -- evaluate / predict ----------------------------------------------------
    def _evaluate_batches(self, data, epoch) -> dict:
        loss_sum, part_sums, seen, mets = 0.0, None, 0, None
        for xb, yb, swb in data.epoch(epoch):
            loss, parts, preds, masks = self._loss_and_gradients(xb, yb, swb, training=False)
            n = self._count(xb)
            loss_sum += loss * n
            part_sums = [None if p is None else p * n + (0.0 if part_sums is None else part_sums[k])
                         for k, p in enumerate(parts)]
            seen += n
            if mets is None:
                mets = self._make_metrics(preds) if preds is not None else []
            if mets:
                self._update_metrics(mets, self._targets(yb), preds, masks)
        if seen == 0:
            raise ValueError(f"{data.what}: expected at least one batch, got none")
        out = self._logs(loss_sum / seen + self.regularization_loss(), None, part_sums, seen)
        out.update({name: m.result() for name, (_, m) in zip(self._metric_names(), mets or [])})
        return out

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict: bool = False):
        """Loss (plus regularization) and metrics over the data; a float, a list, or a dict with ``return_dict``."""
        self._require_compiled("evaluate")
        if x is None:
            raise ValueError("x: expected an array of samples, got None")
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        verbose = check_verbose(verbose) if verbose != "auto" else 0
        return_dict = check_bool("return_dict", return_dict)
        data = Batches(x, y, sample_weight, batch_size, _check_steps("steps", steps), n_inputs=self._n_inputs(),
                       n_outputs=len(self._output_names()))
        if data.kind == "arrays":
            self._check_stateful_batches(data.n, batch_size, "x")
        result = self._evaluate_batches(data, 0)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` in inference mode, computed ``batch_size`` samples at a time."""
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        if verbose != "auto":
            check_verbose(verbose)
        data = Batches(x, None, None, batch_size, _check_steps("steps", steps), n_inputs=self._n_inputs())
        if data.kind == "arrays":
            self._check_stateful_batches(data.n, batch_size, "x")
        outs = [self._predict_batch(xb) for xb, _, _ in data.epoch(0)]
        if not outs:
            raise ValueError("x: expected at least one batch to predict, got none")
        if isinstance(outs[0], list):
            return [np.concatenate([o[k] for o in outs], axis=0) for k in range(len(outs[0]))]
        return np.concatenate(outs, axis=0)

    def predict_on_batch(self, x):
        return self._predict_batch(self._one_batch(x, None, None, None)[0])

    def _predict_batch(self, x):
        with internal_activations():
            preds, _ = self._outputs(x, training=False)
        return preds[0] if len(preds) == 1 else preds

    # -- state ---------------------------------------------------------------
    def _stateful(self) -> bool:
        return any(getattr(l, "stateful", False) for l in self._all_layers())

    def _check_stateful_batches(self, n: int, batch_size: int, what: str) -> None:
        if self._stateful() and n % batch_size:
            raise ValueError(f"batch_size: a stateful model needs the number of samples ({n}) in {what} to be a "
                             f"multiple of batch_size ({batch_size})")
