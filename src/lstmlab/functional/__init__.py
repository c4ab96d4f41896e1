"""Pure math: every forward with its backward beside it, no state.

A forward returns its outputs and a cache; the matching backward is a pure
function of the upstream gradients and that cache.
"""
from .activations import ACTIVATIONS, Activation, get_activation, log_softmax, softmax
from .dense import DenseGrads, dense_backward, dense_forward
from .gru import GRUGrads, gru_backward, gru_forward
from .losses import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .lstm import LSTMGrads, lstm_backward, lstm_forward
from .rnn import RNNGrads, rnn_backward, rnn_forward
from . import gru_reset_before, layernorm_lstm, peephole_lstm, projection_lstm  # one-step cell math
from .gru_reset_before import gru_reset_before_step, gru_reset_before_step_backward
from .layernorm_lstm import layernorm_lstm_step, layernorm_lstm_step_backward
from .peephole_lstm import peephole_lstm_step, peephole_lstm_step_backward
from .projection_lstm import projection_lstm_step, projection_lstm_step_backward
from .recurrence import recurrence_backward, recurrence_forward

__all__ = [
    "ACTIVATIONS", "Activation", "get_activation", "softmax", "log_softmax",
    "dense_forward", "dense_backward", "DenseGrads",
    "lstm_forward", "lstm_backward", "LSTMGrads",
    "gru_forward", "gru_backward", "GRUGrads",
    "rnn_forward", "rnn_backward", "RNNGrads",
    "recurrence_forward", "recurrence_backward",
    "peephole_lstm", "peephole_lstm_step", "peephole_lstm_step_backward",
    "projection_lstm", "projection_lstm_step", "projection_lstm_step_backward",
    "layernorm_lstm", "layernorm_lstm_step", "layernorm_lstm_step_backward",
    "gru_reset_before", "gru_reset_before_step", "gru_reset_before_step_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
]
