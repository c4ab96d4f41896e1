"""The long-range task generators and a seconds-long run of 'lstmlab experiment'."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.apps.longrange import tasks as TK


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("T", [20, 100, 200])
def test_adding_1997_markers_and_target(T):
    r = rng(T)
    for _ in range(300):
        length = int(r.integers(T, T + T // 10 + 1))
        x, target, (i1, i2) = TK.adding_1997_sequence(r, length, T)
        assert x.shape == (length, 2) and T <= length <= T + T // 10
        values, markers = x[:, 0], x[:, 1]
        assert np.all((values >= -1) & (values <= 1))
        assert 0 <= i1 < 10 and 0 <= i2 < T // 2 - 1 and i1 != i2  # X1 in the first ten, X2 before T/2
        assert set(np.flatnonzero(markers == 1.0)) == {i1, i2}
        for end in (0, length - 1):  # first and last pair are -1 unless marked
            assert markers[end] == (1.0 if end in (i1, i2) else -1.0)
        assert np.count_nonzero(markers == 0) == length - 2 - sum(e not in (i1, i2) for e in (0, length - 1))
        if 0 in (i1, i2):
            assert values[0] == 0.0  # the rare first-pair mark counts as zero
        assert target == pytest.approx(0.5 + (values[i1] + values[i2]) / 4.0)
        assert 0.0 <= target <= 1.0


def test_adding_1997_batch_shares_a_length_in_range():
    x, y = TK.adding_1997(rng(1), 64, 50)
    assert x.dtype == np.float32 and x.shape[0] == 64 and 50 <= x.shape[1] <= 55 and y.shape == (64, 1)
    marked = x[:, :, 1] == 1.0
    sums = (x[:, :, 0] * marked).sum(axis=1)
    np.testing.assert_allclose(y[:, 0], 0.5 + sums / 4.0, rtol=1e-6)


def test_adding_modern_target_and_baseline():
    x, y = TK.adding_modern(rng(2), 20000, 100)
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :50].sum(axis=1) == 1) and np.all(markers[:, 50:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] <= 1))
    baseline = float(np.mean((y - 1.0) ** 2))  # always predicting 1
    assert baseline == pytest.approx(1 / 6, abs=0.005)


def test_temporal_order_positions_and_classes():
    r = rng(3)
    classes = {("X", "X"): 0, ("X", "Y"): 1, ("Y", "X"): 2, ("Y", "Y"): 3}
    seen = set()
    for _ in range(400):
        length = int(r.integers(100, 111))
        seq, label, (t1, t2) = TK.temporal_order_sequence(r, length)
        s = "".join(TK.TEMPORAL_SYMBOLS[i] for i in seq)
        assert 100 <= len(s) <= 110 and s[0] == "E" and s[-1] == "B"
        assert 10 <= t1 <= 20 and 50 <= t2 <= 60
        assert [k for k, c in enumerate(s) if c in "XY"] == [t1, t2]
        assert set(s[1:-1].replace("X", "").replace("Y", "")) <= set("abcd")
        assert label == classes[(s[t1], s[t2])]
        seen.add(label)
    assert seen == {0, 1, 2, 3}
    x, y = TK.temporal_order(r, 8)
    assert x.shape[2] == 8 and np.all(x.sum(-1) == 1) and y.shape == (8,)


def test_embedded_reber_strings_are_accepted_and_targets_follow_the_grammar():
    r = rng(4)
    for _ in range(500):
        s = TK.embedded_reber_string(r)
        assert TK.embedded_reber_accepts(s), s
        assert s[1] == s[-2]  # the long-range dependency
        sets = TK.embedded_reber_next_sets(s)
        assert len(sets) == len(s) - 1
        assert all(s[k + 1] in allowed for k, allowed in enumerate(sets))  # the real next symbol is allowed
    assert not TK.embedded_reber_accepts("BTBTXSEPE")  # wrong branch symbol at the end
    assert not TK.embedded_reber_accepts("BTBTXXETE")  # E where the grammar allows T or V
    assert TK.embedded_reber_accepts("BPBPVVEPE")
    x, y, mask, strings = TK.embedded_reber(r, 16)
    lengths = mask.sum(axis=1)
    assert list(lengths) == [len(s) - 1 for s in strings]
    assert np.all(x[~mask] == 0) and np.all(x[mask].sum(-1) == 1)


def test_copy_memory_layout():
    x, y = TK.copy_memory(rng(5), 4, 30)
    ids = x.argmax(-1)
    assert x.shape == (4, 50, 10) and y.shape == (4, 50)
    assert np.all(ids[:, :10] < 8) and np.all(ids[:, 10:39] == 8) and np.all(ids[:, 39] == 9) and np.all(ids[:, 40:] == 8)
    assert np.all(y[:, :40] == 8) and np.array_equal(y[:, 40:], ids[:, :10])


@pytest.mark.parametrize("make", [lambda r: TK.adding_1997(r, 8, 30), lambda r: TK.adding_modern(r, 8, 30),
                                  lambda r: TK.temporal_order(r, 8), lambda r: TK.embedded_reber(r, 8)[:3],
                                  lambda r: TK.copy_memory(r, 8, 30)])
def test_generators_are_deterministic_with_a_seed(make):
    a, b, c = make(rng(9)), make(rng(9)), make(rng(10))
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert any(not np.array_equal(u, v) or u.shape != v.shape for u, v in zip(a, c))


def test_experiment_cli_smoke(tmp_path):
    out = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "lstmlab", "experiment", "adding", "--cells", "lstm,rnn", "--length", "12",
                        "--seeds", "2", "--steps", "40", "--eval-every", "20", "--test-size", "64", "--units", "8",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    table = (out / "results.md").read_text()
    assert "| cell | solved (seeds) | test MSE | share within threshold | steps to solve | CPU s / seed |" in table
    assert "| LSTM | " in table and "| SimpleRNN | " in table and "/2 |" in table
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == 4 and {run["cell"] for run in data["runs"]} == {"lstm", "rnn"}
    assert all(len(run["curve"]) == 2 for run in data["runs"])
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_experiment_sweep_and_other_tasks(tmp_path):
    for task, extra in (("temporal-order", []), ("reber", []), ("copy", ["--length", "5"]),
                        ("adding-modern", ["--sweep", "12,16"])):
        out = tmp_path / task
        r = subprocess.run([sys.executable, "-m", "lstmlab", "experiment", task, "--cells", "gru", "--seeds", "1",
                            "--steps", "4", "--eval-every", "2", "--test-size", "16", "--units", "4",
                            "--out", str(out), *extra], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (task, r.stderr)
        text = (out / "results.md").read_text()
        assert "| GRU | " in text
        if task == "adding-modern":
            assert "| cell | T = 12 | T = 16 |" in text


def test_experiment_bad_arguments():
    def bad(*args):
        r = subprocess.run([sys.executable, "-m", "lstmlab", "experiment", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1
        return r.stderr
    assert "--cells: expected a comma-separated subset of lstm, gru, rnn, peephole_lstm, layer_norm_lstm, got 'lstm,transformer'" in bad("adding", "--cells", "lstm,transformer")
    assert "--sweep: expected comma-separated integers, got '10,x'" in bad("adding", "--sweep", "10,x")
    assert "invalid choice: 'parity'" in bad("parity")
    assert "--length: the adding problem needs length >= 12, got 5" in bad("adding", "--length", "5")
