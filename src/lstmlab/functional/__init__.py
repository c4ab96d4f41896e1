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

__all__ = [
    "ACTIVATIONS", "Activation", "get_activation", "softmax", "log_softmax",
    "dense_forward", "dense_backward", "DenseGrads",
    "lstm_forward", "lstm_backward", "LSTMGrads",
    "gru_forward", "gru_backward", "GRUGrads",
    "rnn_forward", "rnn_backward", "RNNGrads",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
]
