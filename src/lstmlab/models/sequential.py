"""``Sequential``: a stack of layers with Keras's build / compile / fit / evaluate / predict / save."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..functional._validate import internal_activations
from ..layers import LAYERS, Dense, Layer
from ..layers.base import unique_name
from ..training import callbacks as cb
from ..training import losses as L
from ..training import metrics as M
from ..training import optimizers as O
from ..training.progress import Progbar
from . import saving
from ._arguments import (as_samples, check_batch_size, check_bool, check_int, check_verbose,
                         require_samples)
from .saving import MODELS
from .summary import summary_lines


@MODELS.register
class Sequential:
    """A linear stack of layers.

    >>> model = Sequential([layers.Embedding(100, 8, input_length=10), layers.LSTM(16), layers.Dense(1)])
    >>> model.compile("adam", "mse")
    """

    def __init__(self, layers=None, name: str | None = None):
        self.name = name if name is not None else unique_name("sequential")
        self.layers: list[Layer] = []
        self.built = False
        self._declared_input_shape = None
        self.optimizer = self.loss = None
        self.metrics: list = []
        self._metric_specs: list = []
        self.compiled = False
        self.stop_training = False
        self._train_seed = None
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # -- structure ---------------------------------------------------------
    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise ValueError(f"layer: expected an lstmlab layer, got {type(layer).__name__}")
        if any(l.name == layer.name for l in self.layers):
            raise ValueError(f"layer: the model already has a layer named {layer.name!r}; layer names must be unique")
        if getattr(layer, "return_state", False):
            raise ValueError(f"layer: {layer.name!r} has return_state=True; a Sequential model passes one tensor "
                             "between layers (call the layer directly to get its states)")
        self.layers.append(layer)
        if len(self.layers) == 1 and layer.batch_input_shape is not None:
            self.build(layer.batch_input_shape)
        elif self.built:
            self.build(self._declared_input_shape)

    def build(self, input_shape) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch first, ``None`` = any)."""
        shape = tuple(input_shape)
        self._declared_input_shape = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
                layer.built = True
            shape = layer.compute_output_shape(shape)
            if isinstance(shape, list):
                raise ValueError(f"layer: {layer.name!r} returns several tensors; Sequential needs one per layer")
        self.built = True

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.trainable]

    def get_weights(self):
        return [w.numpy() for w in self.weights]

    def set_weights(self, values) -> None:
        values = list(values)
        ws = self.weights
        if len(values) != len(ws):
            raise ValueError(f"weights: model {self.name!r} expects {len(ws)} arrays, got {len(values)}")
        for w, v in zip(ws, values):
            w.assign(v)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def reset_states(self) -> None:
        for layer in self.layers:
            layer.reset_states()

    def summary(self, line_length: int | None = None, print_fn=None) -> None:
        for line in summary_lines(self, line_length):
            (print_fn or print)(line)

    # -- running -----------------------------------------------------------
    def _check_x(self, x):
        x = as_samples("x", x)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"x: expected finite values, got {bad} NaN or Inf value(s) in an array of shape {x.shape}")
        want = self._declared_input_shape
        if want is not None:
            ok = x.ndim == len(want) and all(w is None or w == s for w, s in zip(want[1:], x.shape[1:]))
            if not ok:
                shown = "(" + ", ".join("batch" if k == 0 else ("None" if w is None else str(w))
                                        for k, w in enumerate(want)) + ")"
                raise ValueError(f"x: model {self.name!r} expects input of shape {shown}, got {x.shape}")
        return x

    def _forward(self, x, training: bool, skip_last: bool = False):
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers")
        x = self._check_x(x)
        if not self.built:
            self.build(self._shape_from_data(x))
        mask = None
        with internal_activations():  # x was checked above; what flows between layers is not user input
            for layer in self.layers[:-1] if skip_last else self.layers:
                x = layer(x, training=training, mask=mask)
                mask = layer.output_mask
        return x, mask

    def _fused_output(self) -> bool:
        """True when the loss is a sparse cross-entropy from the logits of a linear last Dense and nothing
        else needs the logits (no metrics): the output layer and the loss then run fused
        (``Dense.softmax_cross_entropy``), equal to the separate computation, without its N x V arrays."""
        last = self.layers[-1] if self.layers else None
        return (isinstance(self.loss, L.SparseCategoricalCrossentropy) and self.loss.from_logits
                and not self._metric_specs and type(last) is Dense and last.activation.name == "linear")

    def _fused_loss(self, x, y, training: bool):
        """Forward to the last layer's input, then the fused output layer and loss: ``(loss, dh, mask)``."""
        h, mask = self._forward(x, training=training, skip_last=True)
        last = self.layers[-1]
        out_shape = h.shape[:-1] + (last.units,)
        y = self.loss.prepare_targets(y, np.broadcast_to(np.zeros((), h.dtype), out_shape))
        with internal_activations():
            loss, dh = last.softmax_cross_entropy(h, y, mask, training=training)
        last.output_mask = mask
        return loss, dh, mask

    def _shape_from_data(self, x) -> tuple:
        """The input shape a model infers from its first batch: batch and time stay free."""
        shape = [None] + list(x.shape[1:])
        sequence_first = x.ndim >= 3 or (x.ndim == 2 and type(self.layers[0]).__name__ == "Embedding")
        if sequence_first:
            shape[1] = None
        return tuple(shape)

    def __call__(self, x, training: bool = False):
        return self._forward(x, training)[0]

    def backward(self, dy, skip_last: bool = False):
        """Backpropagate ``dy`` through all layers after a ``training=True`` call; fills each ``layer.grads``.

        ``skip_last``: ``dy`` is the gradient of the last layer's input (the fused output layer filled that
        layer's grads itself).
        """
        with internal_activations():
            for layer in reversed(self.layers[:-1] if skip_last else self.layers):
                dy = layer.backward(dy)
        return dy

    def regularization_loss(self) -> float:
        return sum(layer.regularization_loss() for layer in self.layers)

    # -- compile / train ---------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        self.optimizer = O.get(optimizer)
        self.loss = None if loss is None else L.get(loss)
        self._metric_specs = list(metrics or [])
        for m in self._metric_specs:
            if not isinstance(m, M.Metric):
                M.METRICS.lookup(m, argument="metrics")
        self.compiled = True
        if self._train_seed is None:
            self._train_seed = backend.draw_seed()

    def _compile_config(self) -> dict:
        return {"optimizer": O.serialize(self.optimizer), "loss": None if self.loss is None else L.serialize(self.loss),
                "metrics": [m if isinstance(m, str) else m.name for m in self._metric_specs]}

    def _require_compiled(self, what: str):
        if not self.compiled or self.loss is None:
            raise ValueError(f"model {self.name!r}: call compile(optimizer, loss) before {what}()")

    def _make_metrics(self, y_pred_units: int):
        return [M.get(s, self.loss, y_pred_units) for s in self._metric_specs]

    def _metric_names(self) -> list[str]:
        return ["accuracy" if s in ("accuracy", "acc") else (s if isinstance(s, str) else s.name)
                for s in self._metric_specs]

    def _seed_layers(self, step: int) -> None:
        for k, layer in enumerate(self.layers):  # dropout masks are a function of (seed, step, layer)
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

    def _train_step(self, x, y, guard=None):
        """Forward, loss, backward and one optimizer update.

        ``guard(loss, grads)``, when given, runs before the update and may raise
        to leave the weights untouched (a trainer's NaN / divergence check).
        """
        self._seed_layers(self.optimizer.iterations)
        if self._fused_output():
            y_pred = None  # never formed: the logits live one block at a time inside the fused loss
            loss, dh, mask = self._fused_loss(x, y, training=True)
            loss += self.regularization_loss()
            self.backward(dh, skip_last=True)
        else:
            y_pred, mask = self._forward(x, training=True)
            loss, dy = self.loss(y, y_pred, mask)
            loss += self.regularization_loss()
            self.backward(dy)
        pairs = [(w, g) for layer in self.layers for w, g in zip(layer.weights, layer.grads) if w.trainable]
        if guard is not None:
            guard(loss, [g for _, g in pairs])
        self.optimizer.apply([w for w, _ in pairs], [g for _, g in pairs])
        return loss, y_pred, mask

    def train_on_batch(self, x, y, before_update=None):
        """One optimizer step on one batch; returns the loss (and metrics, as a list, when compiled with some).

        ``before_update(loss, grads)``, when given (not a Keras argument), is called with the batch's loss
        and the trainable weights' gradients before the optimizer changes anything; raising there leaves
        the weights untouched (a trainer's check for a NaN or exploding loss).
        """
        self._require_compiled("train_on_batch")
        x, y = self._check_xy(x, y)
        loss, y_pred, mask = self._train_step(x, y, guard=before_update)
        return self._with_metrics(loss, y, y_pred, mask)

    def test_on_batch(self, x, y):
        """The loss (plus regularization) on one batch in inference mode; stateful layers carry their state.

        Returns the loss, or ``[loss, *metrics]`` when compiled with metrics, as Keras does.
        """
        self._require_compiled("test_on_batch")
        x, y = self._check_xy(x, y)
        loss, y_pred, mask = self._test_step(x, y)
        return self._with_metrics(loss + self.regularization_loss(), y, y_pred, mask)

    def _test_step(self, x, y):
        """One batch in inference: ``(data loss, y_pred, mask)``; y_pred is None when the output layer and the
        loss ran fused (nothing needs the logits then)."""
        if self._fused_output():
            loss, _, mask = self._fused_loss(x, y, training=False)
            return loss, None, mask
        y_pred, mask = self._forward(x, training=False)
        return self.loss(y, y_pred, mask)[0], y_pred, mask

    def _with_metrics(self, loss, y, y_pred, mask):
        """A batch's result as Keras returns it: the loss, or ``[loss, *metrics]`` when compiled with some."""
        if not self._metric_specs:
            return loss
        mets = self._make_metrics(y_pred.shape[-1])
        for m in mets:
            m.update(y, y_pred, mask)
        return [loss] + [m.result() for m in mets]

    def _check_xy(self, x, y):
        x = self._check_x(x)
        y = as_samples("y", y)
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
            raise ValueError(f"y: expected finite values, got {int(y.size - np.count_nonzero(np.isfinite(y)))} "
                             f"NaN or Inf value(s)")
        if len(x) != len(y):
            raise ValueError(f"x, y: expected the same number of samples, got {len(x)} and {len(y)}")
        return x, y

    def _stateful(self) -> bool:
        return any(getattr(l, "stateful", False) for l in self.layers)

    def _check_stateful_batches(self, n: int, batch_size: int, what: str) -> None:
        if self._stateful() and n % batch_size:
            raise ValueError(f"batch_size: a stateful model needs the number of samples ({n}) in {what} to be a "
                             f"multiple of batch_size ({batch_size})")

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, initial_epoch: int = 0):
        """Train for ``epochs`` epochs; returns a :class:`~lstmlab.training.callbacks.History`.

        ``validation_split`` holds out the *last* fraction of the samples (before shuffling), as Keras does.
        Shuffling and dropout are functions of the model's seed and the epoch / step number, so training
        resumed from a saved model continues exactly as an uninterrupted run would.
        """
        self._require_compiled("fit")
        require_samples("x", as_samples("x", x))
        x, y = self._check_xy(x, y)
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        initial_epoch = check_int("initial_epoch", initial_epoch, 0)
        epochs = check_int("epochs", epochs, 0 if initial_epoch else 1)  # epochs <= initial_epoch: nothing to do
        verbose = check_verbose(verbose)
        shuffle = check_bool("shuffle", shuffle)
        if (isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating))
                or not 0.0 <= validation_split < 1.0):
            raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
        if callbacks is not None and (not isinstance(callbacks, (list, tuple))
                                      or not all(isinstance(c, cb.Callback) for c in callbacks)):
            shown = type(callbacks).__name__ if not isinstance(callbacks, (list, tuple)) else \
                "a list holding " + ", ".join(sorted({type(c).__name__ for c in callbacks
                                                      if not isinstance(c, cb.Callback)}))
            raise ValueError(f"callbacks: expected a list of Callback instances, got {shown}")
        if validation_data is None and validation_split > 0:
            n_val = int(math.floor(len(x) * validation_split))
            if n_val == 0 or n_val == len(x):
                raise ValueError(f"validation_split: {validation_split} of {len(x)} samples leaves "
                                 f"{n_val} for validation")
            validation_data = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected a tuple (x_val, y_val)")
            validation_data = self._check_xy(*validation_data)
            require_samples("validation_data", validation_data[0])
        n = len(x)
        self._check_stateful_batches(n, batch_size, "x")
        steps = math.ceil(n / batch_size)
        history = cb.History()
        cbs = list(callbacks or []) + [history]
        for c in cbs:
            c.set_model(self)
            c.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        for c in cbs:
            c.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            for c in cbs:
                c.on_epoch_begin(epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            order = (np.random.default_rng([self._train_seed, 1, epoch]).permutation(n) if shuffle
                     else np.arange(n))
            bar = Progbar(steps, verbose=1 if verbose == 1 else 0)
            loss_sum, seen, mets = 0.0, 0, None
            logs = {}
            for step in range(steps):
                idx = order[step * batch_size : (step + 1) * batch_size]
                for c in cbs:
                    c.on_train_batch_begin(step, {})
                loss, y_pred, mask = self._train_step(x[idx], y[idx])
                if mets is None:
                    mets = self._make_metrics(y_pred.shape[-1]) if self._metric_specs else []
                for m in mets:
                    m.update(y[idx], y_pred, mask)
                loss_sum += loss * len(idx)
                seen += len(idx)
                logs = {"loss": loss_sum / seen, **{name: m.result() for name, m in zip(self._metric_names(), mets)}}
                bar.update(step + 1, logs)
                for c in cbs:
                    c.on_train_batch_end(step, {**logs, "loss": loss})
                if self.stop_training:
                    break
            if validation_data is not None and not self.stop_training:
                val = self._evaluate(*validation_data, batch_size)
                logs.update({f"val_{k}": v for k, v in val.items()})
            if verbose == 2:
                print(" - ".join([f"{step + 1}/{steps}"] + [f"{k}: {v:.4f}" for k, v in logs.items()]))
            else:
                bar.update(step + 1, logs, finished=True)
            for c in cbs:
                c.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for c in cbs:
            c.on_train_end({})
        self.history = history
        return history

    def _evaluate(self, x, y, batch_size):
        loss_sum, seen, mets = 0.0, 0, None
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss, y_pred, mask = self._test_step(xb, yb)
            loss_sum += loss * len(xb)
            seen += len(xb)
            if mets is None:
                mets = self._make_metrics(y_pred.shape[-1]) if self._metric_specs else []
            for m in mets:
                m.update(yb, y_pred, mask)
        out = {"loss": loss_sum / seen + self.regularization_loss()}
        out.update({name: m.result() for name, m in zip(self._metric_names(), mets or [])})
        return out

    def evaluate(self, x, y, batch_size=None, verbose=0, return_dict: bool = False):
        """Loss (plus regularization) and metrics over ``x, y``; a float, a list, or a dict with ``return_dict``."""
        self._require_compiled("evaluate")
        require_samples("x", as_samples("x", x))  # the loss is a mean over the samples: of none, undefined
        x, y = self._check_xy(x, y)
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        verbose = check_verbose(verbose)
        return_dict = check_bool("return_dict", return_dict)
        self._check_stateful_batches(len(x), batch_size, "x")
        result = self._evaluate(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())

    def predict(self, x, batch_size=None, verbose=0):
        """Outputs for ``x`` in inference mode, computed ``batch_size`` samples at a time."""
        require_samples("x", as_samples("x", x))  # no batch to run, so no output shape to return
        x = self._check_x(x)
        batch_size = check_batch_size(32 if batch_size is None else batch_size)
        check_verbose(verbose)
        self._check_stateful_batches(len(x), batch_size, "x")
        outs = [self(x[s : s + batch_size], training=False) for s in range(0, len(x), batch_size)]
        return np.concatenate(outs, axis=0)

    def predict_on_batch(self, x):
        return self(x, training=False)

    # -- config and files --------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self.name, "layers": [LAYERS.serialize(l) for l in self.layers],
                "build_input_shape": None if self._declared_input_shape is None else list(self._declared_input_shape)}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        model = cls([LAYERS.deserialize(spec) for spec in config["layers"]], name=config.get("name"))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
        return model

    def save(self, path, include_optimizer: bool = True, metadata: dict | None = None) -> None:
        """Write the model (config, weights, optimizer state) to one safetensors file, atomically.

        ``metadata``: a JSON-able dict stored beside the model (what an application needs to describe a
        run: a vocabulary, its progress); read it back with ``lstmlab.models.load_model_with_metadata``.
        """
        if not self.built:
            raise ValueError(f"model {self.name!r}: build or call the model before saving it")
        saving.save_model(self, path, include_optimizer, metadata)

    def save_weights(self, path) -> None:
        saving.save_model(self, path, include_optimizer=False)

    def load_weights(self, path) -> None:
        tensors, meta = saving.read_model_file(path)
        saving.restore_into(self, tensors, meta, str(path))
