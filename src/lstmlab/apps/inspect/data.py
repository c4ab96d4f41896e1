"""Run a model over one text and keep, for every LSTM layer, every step and every unit, what the equations computed.

The values come from the reference forward :func:`lstmlab.functional.lstm.lstm_forward` (not from the fast
path), so the page shows the equations of :mod:`lstmlab.functional.lstm` with the model's weights::

    (1) f_t = sigma(zf_t)   (2) i_t = sigma(zi_t)   (3) g_t = tanh(zg_t)
    (4) c_t = f_t * c_{t-1} + i_t * g_t   (5) o_t = sigma(zo_t)   (6) h_t = o_t * tanh(c_t)

Any :class:`~lstmlab.models.Sequential` works whose recurrent layers are plain LSTMs (``LSTM`` or
``RNN(LSTMCell)``, forward in time, no projection): the other layers (Embedding, Dropout, Dense, ...) are
called in inference mode. A GRU, a SimpleRNN, a peephole or layer-normalized LSTM, a Bidirectional wrapper
or a stack of cells has other (or more) gates, and is refused with a message naming the layer.

What the model outputs decides what else is kept: per-step scores over the vocabulary (a character model)
give the top-5 next-token predictions and the surprisal of the actual next token. For a classifier (``classes``
given), the layers above the last LSTM also run on its state after every step, so each token gets the class
probabilities the model would give if the text ended there (the last step's are the model's prediction).
Otherwise the output is kept as the final output. :func:`collect_examples` traces several texts, each from a
zero state, one after the other.

The forward runs in float32, the dtype the model trained in: its rounding (~1e-7) is far below the page's
quantization step (~4e-3), and it halves the time of the step-by-step loop (20,000 steps of a 2 x 256 model
in about 3 s instead of 6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...functional.lstm import lstm_forward
from ...layers import LSTMCell, RNN, Bidirectional, TimeDistributed

# The seven per-step quantities, in the order of the equations' reading: gates, candidate, cell, output.
QUANTITIES = ("i", "f", "g", "c", "tc", "o", "h")
TOP_K = 5


class UnsupportedModel(ValueError):
    """A model the page cannot show: names the layer and what it is."""


@dataclass
class LayerTrace:
    """One LSTM layer over the text: ``values[q]`` is (T, H) for every q of :data:`QUANTITIES`."""

    name: str
    units: int
    values: dict


@dataclass
class Trace:
    """Everything the page shows, at full precision.

    ``tokens[t]`` is the text of step t (one character for a character model). With next-token scores,
    ``top_ids``/``top_probs`` (T, 5) are the five most likely next tokens after step t and ``surprisal``
    (T,) is ``-log2 p(token t+1)`` (NaN at the last step, which has no next token). Otherwise
    ``final_output`` holds the model's output vector.
    """

    tokens: list
    vocab: list
    layers: list = field(default_factory=list)
    top_ids: np.ndarray | None = None
    top_probs: np.ndarray | None = None
    surprisal: np.ndarray | None = None
    final_output: np.ndarray | None = None
    classes: list | None = None  # class names, with class_probs (T, C): P(class | tokens up to step t)
    class_probs: np.ndarray | None = None
    starts: list = field(default_factory=lambda: [0])  # steps where a text starts (the state is zero before)
    targets: list | None = None  # the true class of each text, when known
    token_kind: str = "character"  # what one step reads: "character" or "word" (the page's labels)

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def _kind(layer) -> str:
    cell = getattr(layer, "cell", None)
    return type(cell).__name__.removesuffix("Cell") if cell is not None else type(layer).__name__


def check_supported(model) -> list:
    """The model's recurrent layers, each a plain forward LSTM; raise :class:`UnsupportedModel` otherwise."""
    lstms = []
    for layer in model.layers:
        if isinstance(layer, (Bidirectional, TimeDistributed)):
            raise UnsupportedModel(f"model: layer {layer.name!r} is a {type(layer).__name__} wrapper; inspect shows "
                                   "plain LSTM layers only")
        if not isinstance(layer, RNN):
            continue
        cell = layer.cell
        if type(cell) is not LSTMCell:  # subclasses (peephole, layer-norm) have other equations
            raise UnsupportedModel(
                f"model: layer {layer.name!r} is a {_kind(layer)}; inspect shows the gates of LSTM layers "
                f"(i, f, g, c, o, h) only, and a {_kind(layer)} has other gates")
        if cell.proj_size is not None or layer.go_backwards:
            what = "a projection LSTM" if cell.proj_size is not None else "an LSTM run backwards in time"
            raise UnsupportedModel(f"model: layer {layer.name!r} is {what}; inspect shows plain forward LSTMs only")
        lstms.append(layer)
    if not lstms:
        raise UnsupportedModel("model: no LSTM layer; inspect shows what the gates of LSTM layers do")
    return lstms


def _lstm_trace(layer, x):
    """Run ``layer``'s weights through the reference forward in float32; ``(hs (1, T, H), LayerTrace)``."""
    cell = layer.cell
    weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
    kernel, recurrent = weights[0], weights[1]  # (D, 4H), (H, 4H)
    bias = weights[2] if cell.use_bias else None  # (4H,)
    hs, _, cache = lstm_forward(x, kernel, recurrent, bias, activation=cell.activation,
                                recurrent_activation=cell.recurrent_activation)
    H = cell.units
    gates = cache["gates"][:, 0]  # (T, 4H): batch of one, blocks i, f, g, o
    values = {"i": gates[:, :H], "f": gates[:, H:2 * H], "g": gates[:, 2 * H:3 * H], "o": gates[:, 3 * H:],
              "c": cache["cs"][:, 0], "tc": cache["tcs"][:, 0], "h": cache["hs"][:, 0]}  # each (T, H)
    return hs, LayerTrace(layer.name, H, {q: np.ascontiguousarray(values[q]) for q in QUANTITIES})


def _is_probability(layer) -> bool:
    act = getattr(layer, "activation", None)
    return getattr(act, "name", act) == "softmax"


def collect(model, ids, tokens, vocab, classes=None) -> Trace:
    """Run ``model`` over the token ids ``ids`` (T,) and collect a :class:`Trace`.

    Parameters
    ----------
    model : Sequential
        Recurrent layers must be plain LSTMs (:func:`check_supported`); the first layer takes ids.
    ids : array of int, (T,)
    tokens : list of str, length T
        The display text of each step.
    vocab : sequence of str
        The display text of each id (for the predictions).
    classes : sequence of str, optional
        A classifier's class names: the last LSTM must return its last state only (a Dense on top), and two
        classes may come from one sigmoid unit (P(second class)).
    """
    lstms = check_supported(model)
    if classes is not None and lstms[-1].return_sequences:
        raise UnsupportedModel(f"model: layer {lstms[-1].name!r} returns sequences; per-step class scores need the "
                               "last LSTM to return its last state (a classifier's shape)")
    ids = np.asarray(ids)
    T = len(ids)
    if T < 1 or len(tokens) != T:
        raise ValueError(f"text: expected at least one token (and one display string per token), got {T}")
    trace = Trace(tokens=list(tokens), vocab=list(vocab))
    x = ids[None]  # (1, T) a batch of one sequence
    last = model.layers[-1]
    for layer in model.layers:
        if isinstance(layer, RNN):
            hs, lt = _lstm_trace(layer, np.asarray(x, np.float32))  # (1, T, H)
            trace.layers.append(lt)
            if classes is not None and layer is lstms[-1]:
                x = hs[0]  # (T, H): a batch of T texts, the one ending at each step
            else:
                x = hs if layer.return_sequences else hs[:, -1]  # (1, T, H) or (1, H)
        else:
            x = layer(x, training=False)  # dropout is the identity; no state is touched
    out = np.asarray(x, np.float64)
    if classes is not None:
        trace.classes = list(classes)
        trace.class_probs = _class_probabilities(out, len(classes), last)  # (T, C)
    elif out.ndim == 3 and out.shape[1] == T and out.shape[2] == len(vocab):
        _predictions(trace, out[0], ids, probabilities=_is_probability(last))
    else:
        trace.final_output = out.reshape(-1)
    return trace


def _predictions(trace: Trace, scores, ids, probabilities: bool) -> None:
    """Top-5 next tokens and the surprisal (bits) of the actual next token, from (T, V) scores."""
    if probabilities:
        p = scores / scores.sum(axis=1, keepdims=True)  # (T, V)
    else:
        z = scores - scores.max(axis=1, keepdims=True)  # (T, V) softmax of the logits, stable
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
    k = min(TOP_K, p.shape[1])
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]  # (T, k) most likely first
    trace.top_ids = top.astype(np.int64)
    trace.top_probs = np.take_along_axis(p, top, axis=1)  # (T, k)
    s = np.full(len(ids), np.nan)
    nxt = p[np.arange(len(ids) - 1), ids[1:]]  # (T-1,) probability given to the token that came next
    s[:-1] = -np.log2(np.maximum(nxt, 1e-300))
    trace.surprisal = s


def _class_probabilities(out, n_classes: int, last) -> np.ndarray:
    """(T, C) probabilities from the classifier's (T, C) output, or (T, 1) P(second class) for two classes."""
    act = getattr(getattr(last, "activation", None), "name", None)
    if out.shape[1] == 1 and n_classes == 2:
        p = out[:, 0] if act == "sigmoid" else 1.0 / (1.0 + np.exp(-out[:, 0]))  # (T,) a logit if not a sigmoid
        return np.stack([1.0 - p, p], axis=1)  # (T, 2)
    if out.shape[1] != n_classes:
        raise UnsupportedModel(f"model: its output has {out.shape[1]} scores per text; expected one per class "
                               f"({n_classes})")
    if act == "softmax":
        return out
    z = np.exp(out - out.max(axis=1, keepdims=True))  # (T, C) softmax of logits, stable
    return z / z.sum(axis=1, keepdims=True)


def _join(arrays) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(arrays, axis=0))  # (sum of T_k, ...) along time


def collect_examples(model, examples, vocab, classes, targets=None) -> Trace:
    """Trace several texts one after the other, each from a zero state (a classifier reads one text at a time).

    ``examples`` is a list of ``(ids (T_k,), display tokens)``; the trace joins them, and ``starts`` marks where
    each begins (the page's equation (4) then uses c_{t-1} = 0 there).
    """
    if not examples:
        raise ValueError("text: expected at least one example, got none")
    parts = [collect(model, ids, tokens, vocab, classes=classes) for ids, tokens in examples]
    first = parts[0]
    layers = [LayerTrace(lt.name, lt.units, {q: _join([p.layers[k].values[q] for p in parts]) for q in QUANTITIES})
              for k, lt in enumerate(first.layers)]
    starts = np.cumsum([0] + [len(p.tokens) for p in parts[:-1]]).tolist()
    return Trace(tokens=[t for p in parts for t in p.tokens], vocab=list(vocab), layers=layers,
                 classes=list(classes), class_probs=_join([p.class_probs for p in parts]), starts=starts,
                 targets=None if targets is None else list(targets))
