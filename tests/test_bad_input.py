"""Bad input raises ValueError naming the argument, what it got and what was expected."""
import numpy as np
import pytest

from helpers import random_problem
from lstmlab import functional as F

FORWARD = {"lstm": F.lstm_forward, "gru": F.gru_forward, "rnn": F.rnn_forward}


def params(kind, **override):
    p = random_problem(kind, 2, 3, 4, 5, seed=0)
    p.update(override)
    return p


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
class TestRecurrent:
    def test_x_wrong_rank(self, kind):
        with pytest.raises(ValueError, match=r"^x: expected a 3-D array \(batch, time, features\), got 2-D array of shape \(3, 4\)$"):
            FORWARD[kind](**params(kind, x=np.zeros((3, 4))))

    def test_x_features_mismatch_kernel(self, kind):
        n = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
        with pytest.raises(ValueError, match=rf"^kernel: expected shape \(6, {n * 5}\) \(input_dim=6 from x's last axis, {n}\*units\), got \(4, {n * 5}\)$"):
            FORWARD[kind](**params(kind, x=np.zeros((2, 3, 6))))

    def test_recurrent_kernel_mismatch(self, kind):
        n = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
        with pytest.raises(ValueError, match=rf"^recurrent_kernel: expected shape \(5, {n * 5}\) .*got \(4, {n * 5}\)$"):
            FORWARD[kind](**params(kind, recurrent_kernel=np.zeros((4, n * 5))))

    def test_bias_mismatch(self, kind):
        with pytest.raises(ValueError, match=r"^bias: expected shape .* for units=5, got \(7,\)$"):
            FORWARD[kind](**params(kind, bias=np.zeros(7)))

    def test_h0_mismatch(self, kind):
        with pytest.raises(ValueError, match=r"^h0: expected shape \(2, 5\) \(batch=2, units=5\), got \(3, 5\)$"):
            FORWARD[kind](**params(kind, h0=np.zeros((3, 5))))

    def test_integer_x(self, kind):
        with pytest.raises(ValueError, match=r"^x: expected a floating-point array \(float32 or float64\), got dtype int64"):
            FORWARD[kind](**params(kind, x=np.ones((2, 3, 4), np.int64)))

    def test_integer_weights(self, kind):
        p = params(kind)
        with pytest.raises(ValueError, match=r"^kernel: expected a floating-point array .* got dtype int32"):
            FORWARD[kind](**dict(p, kernel=p["kernel"].astype(np.int32)))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_x(self, kind, bad):
        x = np.zeros((2, 3, 4))
        x[1, 2, 0] = bad
        with pytest.raises(ValueError, match=r"^x: expected finite values, got 1 NaN or Inf value\(s\) in an array of shape \(2, 3, 4\)$"):
            FORWARD[kind](**params(kind, x=x))

    def test_non_finite_state(self, kind):
        h0 = np.zeros((2, 5))
        h0[0, 0] = np.nan
        with pytest.raises(ValueError, match=r"^h0: expected finite values"):
            FORWARD[kind](**params(kind, h0=h0))

    def test_empty_sequence(self, kind):
        with pytest.raises(ValueError, match=r"^x: expected at least one sequence and one time step, got shape \(2, 0, 4\)$"):
            FORWARD[kind](**params(kind, x=np.zeros((2, 0, 4))))

    def test_unknown_activation_lists_valid_names(self, kind):
        with pytest.raises(ValueError, match=r"^activation: unknown activation 'tahn'; expected one of hard_sigmoid, linear, relu, sigmoid, softmax, softsign, tanh$"):
            FORWARD[kind](**params(kind), activation="tahn")

    def test_bad_mask_shape(self, kind):
        with pytest.raises(ValueError, match=r"^mask: expected shape \(2, 3\) \(batch, time\) matching x, got \(3, 2\)$"):
            FORWARD[kind](**params(kind), mask=np.ones((3, 2), bool))

    def test_bad_upstream_gradient_shape(self, kind):
        out = FORWARD[kind](**params(kind))
        back = {"lstm": lambda: F.lstm_backward(np.zeros((2, 4, 5)), None, None, out[2]),
                "gru": lambda: F.gru_backward(np.zeros((2, 4, 5)), None, out[2]),
                "rnn": lambda: F.rnn_backward(np.zeros((2, 4, 5)), None, out[2])}[kind]
        with pytest.raises(ValueError, match=r"^dhs: expected shape \(2, 3, 5\), got \(2, 4, 5\)$"):
            back()


def test_lstm_kernel_width_not_multiple_of_gates():
    with pytest.raises(ValueError, match=r"^kernel: expected shape \(input_dim, 4\*units\) with a positive multiple of 4 columns, got \(4, 10\)$"):
        F.lstm_forward(np.zeros((1, 2, 4)), np.zeros((4, 10)), np.zeros((2, 8)))


def test_gru_bias_needs_two_rows():
    p = random_problem("gru", 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"^bias: expected shape \(2, 15\) for units=5, got \(15,\)$"):
        F.gru_forward(**dict(p, bias=np.zeros(15)))


def test_dense_bad_input():
    with pytest.raises(ValueError, match=r"^kernel: expected shape \(3, \?\) \(input_dim=3 from x's last axis, units\), got \(4, 2\)$"):
        F.dense_forward(np.zeros((5, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^x: expected finite values"):
        F.dense_forward(np.full((5, 3), np.nan), np.zeros((3, 2)))


def test_cross_entropy_bad_targets():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^targets: expected class ids in \[0, 3\), got 3$"):
        F.softmax_cross_entropy_forward(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"^targets: expected class ids in \[0, 3\), got -1$"):
        F.softmax_cross_entropy_forward(logits, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=r"^targets: expected shape \(4,\) \(integer class ids, one per row of logits\), got \(5,\)$"):
        F.softmax_cross_entropy_forward(logits, np.zeros(5, int))
    with pytest.raises(ValueError, match=r"^logits: expected finite values"):
        F.softmax_cross_entropy_forward(np.full((4, 3), np.inf), np.zeros(4, int))
