"""A stacked bidirectional LSTM against PyTorch's nn.LSTM(num_layers=2, bidirectional=True)."""
import numpy as np
import pytest

import lstmlab
from helpers import assert_close
from lstmlab import layers as L

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("B,T,D,H", [(3, 7, 5, 4), (1, 12, 16, 16), (8, 2, 1, 3)])
def test_stacked_bidirectional_lstm_matches_pytorch(dtype, tol, B, T, D, H):
    rng = np.random.default_rng(B * 100 + T)
    model = lstmlab.Sequential([
        L.Bidirectional(L.LSTM(H, return_sequences=True, dtype=dtype), dtype=dtype),
        L.Bidirectional(L.LSTM(H, return_sequences=True, dtype=dtype), dtype=dtype),
    ])
    model.build((None, T, D))
    for w in model.weights:
        w.value[...] = rng.uniform(-0.6, 0.6, w.shape)  # random non-zero biases too
    ref = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True).to(getattr(torch, dtype))
    with torch.no_grad():
        for layer_k, bi in enumerate(model.layers):
            for suffix, sub in (("", bi.forward_layer), ("_reverse", bi.backward_layer)):
                getattr(ref, f"weight_ih_l{layer_k}{suffix}").copy_(torch.from_numpy(sub.kernel.value.T.copy()))
                getattr(ref, f"weight_hh_l{layer_k}{suffix}").copy_(torch.from_numpy(sub.recurrent_kernel.value.T.copy()))
                getattr(ref, f"bias_ih_l{layer_k}{suffix}").copy_(torch.from_numpy(sub.bias.value.copy()))
                getattr(ref, f"bias_hh_l{layer_k}{suffix}").zero_()
    x = rng.standard_normal((B, T, D)).astype(dtype)
    dy = rng.standard_normal((B, T, 2 * H)).astype(dtype)

    ours = model(x, training=True)
    dx = model.backward(dy)
    tx = torch.from_numpy(x).requires_grad_()
    theirs, _ = ref(tx)
    (theirs * torch.from_numpy(dy)).sum().backward()

    assert_close("outputs", ours, theirs.detach().numpy(), tol)
    assert_close("dx", dx, tx.grad.numpy(), tol)
    for layer_k, bi in enumerate(model.layers):
        grads = dict(zip([w.path for w in bi.weights], bi.grads))
        for suffix, sub in (("", bi.forward_layer), ("_reverse", bi.backward_layer)):
            t = lambda n: getattr(ref, f"{n}_l{layer_k}{suffix}").grad.numpy()  # noqa: E731
            assert_close(f"{sub.name} dkernel", grads[f"{sub.name}/kernel"], t("weight_ih").T, tol)
            assert_close(f"{sub.name} drecurrent_kernel", grads[f"{sub.name}/recurrent_kernel"], t("weight_hh").T, tol)
            assert_close(f"{sub.name} dbias", grads[f"{sub.name}/bias"], t("bias_ih"), tol)
