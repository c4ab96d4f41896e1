"""PyTorch as an independent oracle for the LSTM, GRU and simple RNN.

Weights are copied across (transposed, and for the GRU reordered from Keras's
z, r, h to PyTorch's r, z, n).  Our single LSTM / RNN bias goes into
``bias_ih`` and ``bias_hh`` is zero; the GRU's two bias rows map one to one.
Biases and initial states are random and non-zero; the upstream gradient is
random.  Outputs, final states and every gradient must agree.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import assert_close, backward, forward, random_problem  # noqa: E402

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def random_shapes(n, seed):
    rng = np.random.default_rng(seed)
    return [
        (int(rng.integers(1, 9)), int(rng.integers(1, 13)), int(rng.integers(1, 17)), int(rng.integers(1, 17)), k)
        for k in range(n)
    ]


SHAPES = random_shapes(24, 2026) + [(1, 1, 1, 1, 99), (8, 12, 16, 16, 98)]


def gru_to_torch(w, H):
    """Keras column blocks z, r, h -> PyTorch row blocks r, z, n."""
    z, r, h = w[..., 0:H], w[..., H : 2 * H], w[..., 2 * H :]
    return np.concatenate([r, z, h], axis=-1)


def gru_from_torch(w, H):
    """PyTorch blocks r, z, n -> Keras blocks z, r, h (inverse of gru_to_torch)."""
    r, z, n = w[..., 0:H], w[..., H : 2 * H], w[..., 2 * H :]
    return np.concatenate([z, r, n], axis=-1)


def torch_run(kind, p, dhs, dfin, dtype):
    H = p["h0"].shape[1]
    D = p["x"].shape[2]
    td = TORCH_DTYPE[dtype]
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    m = cls(D, H, batch_first=True).to(td)
    if kind == "gru":
        w_ih, w_hh = gru_to_torch(p["kernel"], H).T, gru_to_torch(p["recurrent_kernel"], H).T
        b_ih, b_hh = gru_to_torch(p["bias"][0], H), gru_to_torch(p["bias"][1], H)
    else:
        w_ih, w_hh = p["kernel"].T, p["recurrent_kernel"].T
        b_ih, b_hh = p["bias"], np.zeros_like(p["bias"])
    with torch.no_grad():
        for name, v in [("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)]:
            getattr(m, name).copy_(torch.from_numpy(np.ascontiguousarray(v)))
    x = torch.from_numpy(p["x"]).requires_grad_()
    h0 = torch.from_numpy(p["h0"])[None].clone().requires_grad_()
    if kind == "lstm":
        c0 = torch.from_numpy(p["c0"])[None].clone().requires_grad_()
        out, (hn, cn) = m(x, (h0, c0))
        fin = (hn[0], cn[0])
    else:
        out, hn = m(x, h0)
        fin = (hn[0],)
    loss = (out * torch.from_numpy(dhs)).sum() + sum((f * torch.from_numpy(d)).sum() for f, d in zip(fin, dfin))
    loss.backward()
    g = {"x": x.grad.numpy(), "h0": h0.grad[0].numpy()}
    if kind == "lstm":
        g["c0"] = c0.grad[0].numpy()
    wi, wh = m.weight_ih_l0.grad.numpy().T, m.weight_hh_l0.grad.numpy().T
    bi, bh = m.bias_ih_l0.grad.numpy(), m.bias_hh_l0.grad.numpy()
    if kind == "gru":
        g.update(kernel=gru_from_torch(wi, H), recurrent_kernel=gru_from_torch(wh, H),
                 bias=np.stack([gru_from_torch(bi, H), gru_from_torch(bh, H)]))
    else:
        g.update(kernel=wi, recurrent_kernel=wh, bias=bi)
        # Ours is the only bias, so its gradient must equal either of PyTorch's two.
        assert_close("bias_hh grad", bh, bi, TOLERANCE[dtype])
    return out.detach().numpy(), tuple(f.detach().numpy() for f in fin), g


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("B,T,D,H,seed", SHAPES, ids=[f"B{b}T{t}D{d}H{h}" for b, t, d, h, _ in SHAPES])
def test_matches_pytorch(kind, dtype, B, T, D, H, seed):
    p = random_problem(kind, B, T, D, H, seed=seed, dtype=dtype)
    assert np.all(p["bias"] != 0) and np.all(p["h0"] != 0)
    rng = np.random.default_rng(seed + 7)
    hs, fin, cache = forward(kind, p)
    assert hs.dtype == dtype
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    dfin = [rng.standard_normal(f.shape).astype(dtype) for f in fin]
    ours = backward(kind, dhs, dfin, cache)
    t_out, t_fin, theirs = torch_run(kind, p, dhs, dfin, dtype)
    tol = TOLERANCE[dtype]
    assert_close(f"{kind} outputs", hs, t_out, tol)
    for k, (a, b) in enumerate(zip(fin, t_fin)):
        assert_close(f"{kind} final state {'hc'[k]}", a, b, tol)
    for name in theirs:
        assert ours[name].dtype == dtype, name
        assert_close(f"{kind} d{name}", ours[name], theirs[name], tol)
