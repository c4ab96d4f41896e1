"""LSTM speed on this machine: lstmlab against PyTorch, ONNX Runtime and the GEMM floor, in one run.

    python benchmarks/bench_lstm.py            # full run (about 20 minutes: 3 rounds)
    python benchmarks/bench_lstm.py --quick    # fewer repeats, one round
    python benchmarks/bench_lstm.py --isa avx2 # the layer table with that kernel variant forced

Prints markdown tables of medians and ratios:

1. inference and training (forward + backward) of one LSTM layer, float32,
   batch-first, for the configs (batch, time, input, hidden) of the issue;
2. the GEMM floor: only the matrix multiplies the algorithm needs, on NumPy's
   BLAS (input projection, one recurrent GEMM per step, and for training the
   recurrent GEMM of BPTT plus the three weight/input-gradient GEMMs), and
   the same products on lstmlab's own GEMM (the "own-GEMM floor": what is
   left between it and lstmlab is the time spent around the products);
3. peak memory of a training step (tracemalloc) against the theoretical
   activation cache;
4. the char-model recipe of the text-generation issue (embedding 64,
   2 x LSTM(256), batch 64, sequence 100, Adam, clipping): training
   characters per second, ours and PyTorch's, and the per-character latency
   of generation;
5. the IMDB-shape model of issue 17 (Embedding(20000, 128, mask_zero) ->
   Bidirectional(LSTM(64), sequences) -> Bidirectional(LSTM(64)) -> Dense(1)),
   one training step on 32 reviews of 30-200 tokens padded to 200: masked
   (padding skipped, and the masked blend) and unmasked, against PyTorch
   padded and with pack_padded_sequence;
6. one LSTM layer's training step with recurrent_dropout=0.2 against none;
7. one GRU layer (reset_after=True), inference and training, for the same
   configs, against PyTorch's nn.GRU and ONNX Runtime's GRU op;
8. bf16 inference (``LSTM(units, dtype="bfloat16")``: bf16 products, float32
   sums, ``_fast/lstm_bf16.c``) against lstmlab's float32 inference, PyTorch
   and ONNX Runtime float32, same configs, with the largest difference of its
   outputs from float32 (``--only bf16``; needs a CPU with AVX512_BF16, else
   the NumPy reference runs and the table says so).

    python benchmarks/bench_lstm.py --quick --only imdb   # one table

Needs: pip install -r benchmarks/requirements.txt
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "src"))

import lstmlab  # noqa: E402
from lstmlab._fast import gemm, workspace  # noqa: E402
from lstmlab._fast import lstm as fast_lstm  # noqa: E402

CONFIGS = [(64, 100, 128, 256), (32, 100, 64, 128), (128, 50, 512, 512), (1, 500, 64, 256)]


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            i = info[0]
            return f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} kernels, {i.get('num_threads')} threads)"
    except ImportError:
        pass
    return "unknown (pip install threadpoolctl to see it)"


# -- the contenders ---------------------------------------------------------------------------------------
def make_problem(B, T, D, H, seed=0):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    return dict(
        x=rng.standard_normal((B, T, D)).astype(np.float32),
        W=rng.uniform(-s, s, (D, 4 * H)).astype(np.float32),
        U=rng.uniform(-s, s, (H, 4 * H)).astype(np.float32),
        b=rng.uniform(-s, s, 4 * H).astype(np.float32),
        dy=rng.standard_normal((B, T, H)).astype(np.float32),
    )


def ours(p):
    def infer():  # what a layer called with training=False runs: no cache kept for a backward
        return fast_lstm.lstm_forward(p["x"], p["W"], p["U"], p["b"], need_cache=False)[0]

    def train():
        hs, _, cache = fast_lstm.lstm_forward(p["x"], p["W"], p["U"], p["b"])
        fast_lstm.lstm_backward(p["dy"], None, None, cache)

    return infer, train


def gemm_floor(p):
    """Only the GEMMs, on NumPy's BLAS, run both ways: one call per product with BLAS's own threads, and
    split over the batch in one thread per core with single-threaded BLAS. The faster of the two is the floor."""
    x, W, U = p["x"], p["W"], p["U"]
    B, T, D = x.shape
    H = U.shape[0]

    def gemms(lo, hi):
        m = hi - lo
        x2 = x[lo:hi].reshape(m * T, D)
        z = np.empty((m * T, 4 * H), np.float32)
        h = np.zeros((m, H), np.float32)
        zt = np.empty((m, 4 * H), np.float32)
        dz = np.random.default_rng(1).standard_normal((m * T, 4 * H)).astype(np.float32)
        dzt = dz[:m].copy()
        hp = np.random.default_rng(2).standard_normal((m * T, H)).astype(np.float32)

        def infer():
            np.matmul(x2, W, out=z)  # input projection of all steps
            for _ in range(T):
                np.matmul(h, U, out=zt)  # one recurrent GEMM per step

        def train():
            infer()
            for _ in range(T):
                np.matmul(dzt, U.T, out=h)  # BPTT: dh_{t-1} = dz_t @ U.T
            dz @ W.T  # dx
            x2.T @ dz  # dkernel
            hp.T @ dz  # drecurrent_kernel

        return infer, train

    whole = gemms(0, B)
    split = split_over_batch(gemms, B, initializer=_single_threaded_blas)
    return (whole[0], split[0]), (whole[1], split[1])


def split_over_batch(gemms, B, initializer=None):
    """``(infer, train)`` running ``gemms(lo, hi)``'s functions for the two halves of the batch at once, one
    thread each (one thread for the whole batch when B = 1 or there is one core)."""
    n = 2 if B >= 2 and (os.cpu_count() or 1) >= 2 else 1
    edges = [0, B // 2, B] if n == 2 else [0, B]
    parts = [gemms(a, b) for a, b in zip(edges[:-1], edges[1:])]
    pool = ThreadPoolExecutor(n, initializer=initializer)

    def split(k):
        return lambda: [f.result() for f in [pool.submit(part[k]) for part in parts]]

    return split(0), split(1)


def own_gemm_floor(p):
    """The same GEMMs on lstmlab's own GEMM (src/lstmlab/_fast/sgemm.c), the recurrent kernel packed once per
    call as lstmlab does, split over the batch in one thread per core: what lstmlab's products alone cost,
    so "vs own floor" is the time lstmlab spends around them. The per-step products run in one C call per
    loop (lk_sgemm_prepacked_steps), with no Python between the steps."""
    from lstmlab import _fast

    if not _fast.SGEMM:
        return None
    K = _fast.KERNELS
    x, W, U = p["x"], p["W"], p["U"]
    B, T, D = x.shape
    H = U.shape[0]
    packed, packed_t = gemm.packed_for_steps(U, False, T).copy(), gemm.packed_for_steps(U, True, T).copy()

    def gemms(lo, hi):
        m = hi - lo
        x2 = x[lo:hi].reshape(m * T, D)
        z = np.empty((m * T, 4 * H), np.float32)
        hs = np.random.default_rng(2).standard_normal((m, T, H)).astype(np.float32)
        dz = np.random.default_rng(1).standard_normal((m, T, 4 * H)).astype(np.float32)
        dh = np.empty((m, H), np.float32)
        zp = np.empty((m, 4 * H), np.float32)
        dx = np.empty((m * T, D), np.float32)

        def infer():
            gemm.matmul(x2, W, out=z)  # input projection of all steps
            # one recurrent GEMM per step, h_{t-1} rows T*H apart as in the loop
            K.lk_sgemm_prepacked_steps(T, m, 4 * H, H, hs.ctypes.data, T * H, H, packed.ctypes.data, 0.0,
                                       zp.ctypes.data, 4 * H, 0)

        def train():
            infer()
            # BPTT: dh_{t-1} = dz_t @ U.T
            K.lk_sgemm_prepacked_steps(T, m, H, 4 * H, dz.ctypes.data, T * 4 * H, 4 * H, packed_t.ctypes.data, 0.0,
                                       dh.ctypes.data, H, 0)
            dz2 = dz.reshape(m * T, 4 * H)
            gemm.matmul(dz2, W.T, out=dx)  # dx
            gemm.matmul(x2.T, dz2)  # dkernel
            gemm.matmul(hs.reshape(m * T, H).T, dz2)  # drecurrent_kernel

        return infer, train

    return split_over_batch(gemms, B)


def _single_threaded_blas():
    from lstmlab import _fast

    if _fast.SET_THREADS_LOCAL is not None:
        _fast.SET_THREADS_LOCAL(1)


def torch_lstm(p):
    import torch

    B, T, D = p["x"].shape
    H = p["U"].shape[0]
    m = torch.nn.LSTM(D, H, batch_first=True)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["W"].T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(p["U"].T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(p["b"]))
        m.bias_hh_l0.zero_()
    x = torch.from_numpy(p["x"])
    xg = x.clone().requires_grad_()
    dy = torch.from_numpy(p["dy"])

    def infer():
        with torch.no_grad():
            return m(x)[0].numpy()

    def train():
        m.zero_grad()
        xg.grad = None
        out, _ = m(xg)
        out.backward(dy)

    return infer, train


def onnx_lstm(p):

    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    B, T, D = p["x"].shape
    H = p["U"].shape[0]

    def iofc(w):  # Keras / PyTorch blocks i, f, c, o -> ONNX i, o, f, c
        i, f, c, o = np.split(w, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    W = numpy_helper.from_array(iofc(p["W"]).T[None].astype(np.float32), "W")  # (1, 4H, D)
    R = numpy_helper.from_array(iofc(p["U"]).T[None].astype(np.float32), "R")  # (1, 4H, H)
    Bias = numpy_helper.from_array(np.concatenate([iofc(p["b"]), np.zeros(4 * H, np.float32)])[None], "B")
    # ORT's CPU LSTM is time-major only (layout=1 is refused); its input is transposed once, outside the timing.
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H)
    graph = helper.make_graph([node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, D])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=[W, R, Bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"X": np.ascontiguousarray(p["x"].transpose(1, 0, 2))}

    def infer():
        return sess.run(None, feed)[0]  # (T, num_directions, B, H)

    def infer_batch_first():
        return infer()[:, 0].transpose(1, 0, 2)

    infer.batch_first = infer_batch_first

    return infer


# -- the GRU (reset_after=True, Keras's default and PyTorch's variant) ---------------------------------------
def make_gru_problem(B, T, D, H, seed=0):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    return dict(
        x=rng.standard_normal((B, T, D)).astype(np.float32),
        W=rng.uniform(-s, s, (D, 3 * H)).astype(np.float32),  # columns z, r, h
        U=rng.uniform(-s, s, (H, 3 * H)).astype(np.float32),
        b=rng.uniform(-s, s, (2, 3 * H)).astype(np.float32),  # input row, recurrent row
        dy=rng.standard_normal((B, T, H)).astype(np.float32),
    )


def ours_gru(p):
    from lstmlab._fast import gru as fast_gru

    def infer():
        return fast_gru.gru_forward(p["x"], p["W"], p["U"], p["b"], need_cache=False)[0]

    def train():
        _, _, cache = fast_gru.gru_forward(p["x"], p["W"], p["U"], p["b"])
        fast_gru.gru_backward(p["dy"], None, cache)

    return infer, train


def torch_gru(p):
    import torch

    B, T, D = p["x"].shape
    H = p["U"].shape[0]

    def rzn(w):  # Keras's blocks z, r, h -> PyTorch's r, z, n
        z, r, h = np.split(w, 3, axis=-1)
        return np.ascontiguousarray(np.concatenate([r, z, h], axis=-1))

    m = torch.nn.GRU(D, H, batch_first=True)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(rzn(p["W"]).T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(rzn(p["U"]).T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(rzn(p["b"][0])))
        m.bias_hh_l0.copy_(torch.from_numpy(rzn(p["b"][1])))
    x = torch.from_numpy(p["x"])
    xg = x.clone().requires_grad_()
    dy = torch.from_numpy(p["dy"])

    def infer():
        with torch.no_grad():
            return m(x)[0].numpy()

    def train():
        m.zero_grad()
        xg.grad = None
        out, _ = m(xg)
        out.backward(dy)

    return infer, train


def onnx_gru(p):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    B, T, D = p["x"].shape
    H = p["U"].shape[0]
    # ONNX's GRU has Keras's gate order z, r, h; linear_before_reset=1 is reset_after=True
    W = numpy_helper.from_array(p["W"].T[None].copy(), "W")  # (1, 3H, D)
    R = numpy_helper.from_array(p["U"].T[None].copy(), "R")  # (1, 3H, H)
    Bias = numpy_helper.from_array(p["b"].reshape(1, 6 * H).copy(), "B")  # (1, 6H) Wb then Rb
    node = helper.make_node("GRU", ["X", "W", "R", "B"], ["Y"], hidden_size=H, linear_before_reset=1)
    graph = helper.make_graph([node], "gru", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, D])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=[W, R, Bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"X": np.ascontiguousarray(p["x"].transpose(1, 0, 2))}  # time-major, transposed outside the timing

    def infer():
        return sess.run(None, feed)[0]  # (T, 1, B, H)

    infer.batch_first = lambda: infer()[:, 0].transpose(1, 0, 2)
    return infer


def gru_worker(spec: dict) -> dict:
    """One GRU contender on one config: the reference's output checked, then the medians."""
    B, T, D, H = spec["config"]
    p = make_gru_problem(B, T, D, H)
    previous = lstmlab._fast.SET_THREADS_LOCAL(1) if lstmlab._fast.SET_THREADS_LOCAL else None
    reference = lstmlab.functional.gru_forward(p["x"], p["W"], p["U"], p["b"])[0]
    if previous is not None:
        lstmlab._fast.SET_THREADS_LOCAL(previous)
    if spec["kind"] == "ort-gru":
        infer = onnx_gru(p)
        np.testing.assert_allclose(infer.batch_first(), reference, rtol=1e-4, atol=1e-5)
        return {"inference": median_ms(infer, spec["repeats"])}
    infer, train = (ours_gru if spec["kind"] == "ours-gru" else torch_gru)(p)
    np.testing.assert_allclose(infer(), reference, rtol=1e-4, atol=1e-5)  # the same math before timing it
    return {"inference": median_ms(infer, spec["repeats"]), "training": median_ms(train, spec["repeats"])}


# -- bf16 inference (dtype="bfloat16") -------------------------------------------------------------------------
def bf16_worker(spec: dict) -> dict:
    """One inference contender of the bf16 table on one config, its output checked before it is timed: lstmlab's
    bf16 path against its NumPy reference (and its distance from float32 reported), the float32 ones against
    the float32 reference."""
    from lstmlab._fast import lstm_bf16 as fast_bf16
    from lstmlab.functional import bf16 as ref_bf16

    B, T, D, H = spec["config"]
    p = make_problem(B, T, D, H)
    previous = lstmlab._fast.SET_THREADS_LOCAL(1) if lstmlab._fast.SET_THREADS_LOCAL else None
    reference = lstmlab.functional.lstm_forward(p["x"], p["W"], p["U"], p["b"])[0]
    if spec["kind"] == "bf16-ours":
        reference_bf16 = ref_bf16.lstm_bf16_forward(p["x"], p["W"], p["U"], p["b"])[0]
    if previous is not None:
        lstmlab._fast.SET_THREADS_LOCAL(previous)
    if spec["kind"] == "bf16-ours":
        infer = lambda: fast_bf16.lstm_bf16_forward(p["x"], p["W"], p["U"], p["b"])[0]  # noqa: E731
        out = infer()
        # 1e-3, not 1e-5: over 100 steps an h_t that sits on a bf16 rounding boundary rounds the other way in
        # one of the two float32 summation orders now and then, and that one-ulp step of bf16(h) (2^-8
        # relative) then travels through the recurrence (measured: up to 9e-5 at (64, 100, 128, 256))
        np.testing.assert_allclose(out, reference_bf16, rtol=1e-3, atol=1e-3)
        return {"inference": median_ms(infer, spec["repeats"]), "in_c": float(fast_bf16.available()),
                "max_diff": float(np.abs(out - reference).max()), "mean_diff": float(np.abs(out - reference).mean())}
    if spec["kind"] == "bf16-ort":
        infer = onnx_lstm(p)
        np.testing.assert_allclose(infer.batch_first(), reference, rtol=1e-4, atol=1e-5)
    else:
        infer = ours(p)[0] if spec["kind"] == "bf16-ours-f32" else torch_lstm(p)[0]
        np.testing.assert_allclose(infer(), reference, rtol=1e-4, atol=1e-5)
    return {"inference": median_ms(infer, spec["repeats"])}


def section_bf16(repeats: int, rounds: int) -> None:
    print("## bf16 inference, LSTM(units, dtype=\"bfloat16\") (median ms; ratios: float32 time / bf16 time, "
          "above 1 means bf16 is faster)\n")
    print("| config (B, T, D, H) | lstmlab bf16 | lstmlab float32 | PyTorch float32 | ONNX Runtime float32 "
          "| float32 / bf16 | PyTorch / bf16 | ORT / bf16 | max abs diff vs float32 | mean abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = ("bf16-ours", "bf16-ours-f32", "bf16-torch", "bf16-ort")
    in_c = True
    for config in CONFIGS:
        res = dict(zip(kinds, rounds_of([{"kind": k, "config": config, "repeats": repeats} for k in kinds], rounds)))
        b = res["bf16-ours"]["inference"]
        in_c = in_c and bool(res["bf16-ours"]["in_c"])
        f, t, r = (res[k]["inference"] if res[k] else None for k in kinds[1:])
        print(f"| {tuple(config)} | {b:.2f} | {f:.2f} | {fmt(t)} | {fmt(r)} | {ratio(f, b)} | {ratio(t, b)} | "
              f"{ratio(r, b)} | {res['bf16-ours']['max_diff']:.1e} | {res['bf16-ours']['mean_diff']:.1e} |")
    if not in_c:
        print("\n(no AVX512_BF16 on this CPU, or kernels not built: the bf16 column is the NumPy reference)")
    print()


def section_bf16_accuracy(checkpoint: str, streams: int = 32, length: int = 400) -> None:
    """A trained character model (``lstmlab train``) as shipped: its float32 model against the same weights in a
    model whose LSTM layers have dtype="bfloat16" (what ``lstmlab generate RUN --dtype bfloat16`` samples
    from; the Dense output layer stays float32), on held-out text from zero state."""
    from lstmlab.apps.textgen.corpus import builtin_corpus, split_ids
    from lstmlab.apps.textgen.model import build_model, with_dtype
    from lstmlab.apps.textgen.trainer import load_checkpoint
    from lstmlab._fast import lstm_bf16 as fast_bf16

    trained, vocab, mcfg, tcfg, progress, _ = load_checkpoint(checkpoint)
    f32 = build_model(mcfg, batch_size=streams, seq_len=length)  # the trained weights, this batch size
    f32.set_weights(trained.get_weights())
    bf16 = with_dtype(f32, "bfloat16")
    held_out = split_ids(vocab.encode(builtin_corpus()), tcfg.val_fraction)[1]
    ids = held_out[:streams * (length + 1)].reshape(streams, length + 1)
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def softmax(model):
        model.reset_states()
        logits = model.predict(inputs, batch_size=streams, verbose=0)  # (B, T, V)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    calls = fast_bf16.CALLS["forward"]
    ref, p = softmax(f32), softmax(bf16)
    where = "C loop" if fast_bf16.CALLS["forward"] > calls else "NumPy reference (no AVX512_BF16)"
    print(f"## Accuracy: {mcfg.layers} x LSTM({mcfg.units}) character model, step {progress.best_step} (held-out "
          f"loss {progress.best_val:.4f} nats), {streams} held-out streams x {length} characters from zero "
          f"state; bf16 through the {where}\n")
    print("| LSTM layers | max abs diff of softmax | mean abs diff | top-1 changed | cross-entropy (bits/char) |")
    print("|---|---:|---:|---:|---:|")
    for name, q in (("float32", ref), ('dtype="bfloat16"', p)):
        d = np.abs(q - ref)
        changed = np.mean(q.argmax(-1) != ref.argmax(-1))
        xent = -np.mean(np.log2(np.take_along_axis(q, targets[..., None], -1)))
        print(f"| {name} | {d.max():.2e} | {d.mean():.2e} | {100 * changed:.2f}% | {xent:.4f} |")
    print()


# -- workers: each measurement runs in its own process ------------------------------------------------------
# PyTorch's OpenMP threads keep spinning after its calls and slow down whatever runs next in the same process
# (measured: the char-model step of lstmlab went from 255 to 331 ms once torch had run a matmul). So every
# contender is timed in a fresh process with its own default settings, all launched by this one run.
def worker(spec: dict) -> dict:
    kind, repeats = spec["kind"], spec["repeats"]
    if kind in ("ours", "torch", "ort", "floor", "own-floor"):
        B, T, D, H = spec["config"]
        p = make_problem(B, T, D, H)
        # The reference on one BLAS thread: OpenBLAS's threads spin for a while after a call and would take the
        # cores from whatever is timed next (measured: lstmlab's (32, 100, 64, 128) inference, 2.2 -> 4.0 ms).
        previous = lstmlab._fast.SET_THREADS_LOCAL(1) if lstmlab._fast.SET_THREADS_LOCAL else None
        reference = lstmlab.functional.lstm_forward(p["x"], p["W"], p["U"], p["b"])[0]
        if previous is not None:
            lstmlab._fast.SET_THREADS_LOCAL(previous)
        if kind == "ours":
            infer, train = ours(p)
            np.testing.assert_allclose(infer(), reference, rtol=1e-4, atol=1e-5)
            return {"inference": median_ms(infer, repeats), "training": median_ms(train, repeats)}
        if kind == "torch":
            infer, train = torch_lstm(p)
            np.testing.assert_allclose(infer(), reference, rtol=1e-4, atol=1e-5)  # the same math before timing it
            return {"inference": median_ms(infer, repeats), "training": median_ms(train, repeats)}
        if kind == "ort":
            infer = onnx_lstm(p)
            np.testing.assert_allclose(infer.batch_first(), reference, rtol=1e-4, atol=1e-5)
            return {"inference": median_ms(infer, repeats)}
        if kind == "own-floor":
            floor = own_gemm_floor(p)
            return {"inference": median_ms(floor[0], repeats), "training": median_ms(floor[1], repeats)} if floor else {}
        (inf_whole, inf_split), (train_whole, train_split) = gemm_floor(p)
        return {"inference": min(median_ms(inf_whole, repeats), median_ms(inf_split, repeats)),
                "training": min(median_ms(train_whole, repeats), median_ms(train_split, repeats))}
    if kind == "memory":
        B, T, D, H = spec["config"]
        _, train = ours(make_problem(B, T, D, H))
        train()  # the reusable buffers now exist (allocated before tracing): counted separately, below
        tracemalloc.start()
        train()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {"peak": peak, "workspace": workspace.workspace_bytes()}
    if kind in ("ours-char", "torch-char"):
        return char_step(kind, repeats)
    if kind in ("ours-gen", "torch-gen"):
        return generation(kind)
    if kind in ("ours-imdb", "torch-imdb"):
        return imdb_step(kind, spec["mode"], repeats)
    if kind == "ours-dropout":
        return dropout_step(spec["config"], spec["rate"], repeats)
    if kind in ("ours-gru", "torch-gru", "ort-gru"):
        return gru_worker(spec)
    if kind.startswith("bf16-"):
        return bf16_worker(spec)
    raise ValueError(kind)


def run_worker(spec: dict) -> dict | None:
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if r.returncode != 0:
        if "ModuleNotFoundError" in r.stderr or "ImportError" in r.stderr:
            return None  # that contender is not installed
        raise RuntimeError(f"worker {spec} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def char_models(V=100, E=64, H=256, layers=2, B=64, T=100, seed=0):
    """The text-generation issue's default model (stateful, fixed batch B), compiled with its recipe."""
    lstmlab.set_random_seed(seed)
    from lstmlab.apps.textgen import ModelConfig, TrainConfig
    from lstmlab.apps.textgen.model import build_model, compile_model

    model = build_model(ModelConfig(vocab_size=V, layers=layers, units=H, embedding=E), B)
    compile_model(model, TrainConfig(batch_size=B, seq_len=T or 1))
    return model


def torch_char_model(V: int, E: int = 64, H: int = 256, layers: int = 2):
    """The same char model in PyTorch: Embedding -> nn.LSTM(layers) -> Linear; ``net(x, state) -> (logits, state)``."""
    import torch

    class CharNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, E)
            self.lstm = torch.nn.LSTM(E, H, num_layers=layers, batch_first=True)
            self.out = torch.nn.Linear(H, V)

        def forward(self, x, state=None):
            y, state = self.lstm(self.emb(x), state)
            return self.out(y), state

    return CharNet()


def clip_each(net, max_norm: float) -> None:
    """Clip each parameter's gradient norm separately, as lstmlab's (Keras's) clipnorm does."""
    import torch

    for q in net.parameters():
        torch.nn.utils.clip_grad_norm_([q], max_norm)


def char_step(kind: str, repeats: int) -> dict:
    V, B, T = 100, 64, 100
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    if kind == "ours-char":
        model = char_models(V=V, B=B, T=T)
        return {"ms": median_ms(lambda: model.train_on_batch(x, y), repeats)}
    import torch

    torch.manual_seed(0)
    net = torch_char_model(V)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt)[0].reshape(-1, V), yt.reshape(-1))
        loss.backward()
        clip_each(net, 5.0)
        opt.step()

    return {"ms": median_ms(torch_step, repeats)}


def generation(kind: str, n: int = 1000) -> dict:
    V = 100
    if kind == "ours-gen":
        from lstmlab.apps.textgen import Vocabulary
        from lstmlab.apps.textgen.model import CharSampler

        sampler = CharSampler(char_models(V=V, B=1, T=None), Vocabulary("".join(chr(32 + k) for k in range(V))))
        for k in range(20):
            sampler.step(k)
        t = time.perf_counter()
        for k in range(n):
            sampler.step(k % V)
        return {"us": (time.perf_counter() - t) / n * 1e6}
    import torch

    net = torch_char_model(V)
    state = None
    with torch.no_grad():
        ids = torch.zeros((1, 1), dtype=torch.long)
        for _ in range(20):
            _, state = net(ids, state)
        t = time.perf_counter()
        for _ in range(n):
            _, state = net(ids, state)
        return {"us": (time.perf_counter() - t) / n * 1e6}


# -- issue 17: masks (the IMDB shape) and recurrent dropout --------------------------------------------------
IMDB = dict(vocab=20000, embedding=128, units=64, batch=32, steps=200, shortest=30)


def imdb_batch(padding: str):
    """32 reviews of 30..200 tokens (ids 1..vocab-1), padded with 0 to 200 on one side; labels; lengths."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(IMDB["shortest"], IMDB["steps"] + 1, IMDB["batch"])  # (B,)
    x = np.zeros((IMDB["batch"], IMDB["steps"]), np.int64)  # (B, T)
    for b, n in enumerate(lengths):
        tokens = rng.integers(1, IMDB["vocab"], n)
        if padding == "pre":
            x[b, IMDB["steps"] - n:] = tokens
        else:
            x[b, :n] = tokens
    y = rng.integers(0, 2, (IMDB["batch"], 1)).astype(np.float32)
    return x, y, lengths


def imdb_step(kind: str, mode: str, repeats: int) -> dict:
    """One Adam training step of the IMDB-shape model. Ours: mode "skip" (mask_zero, rows sorted so padding
    is skipped), "blend" (mask_zero, rows unsorted: padded steps computed, then blended) or "none" (no mask,
    every step of the padding computed). PyTorch: "padded" (no mask) or "packed" (pack_padded_sequence)."""
    E, H = IMDB["embedding"], IMDB["units"]
    if kind == "ours-imdb":
        from lstmlab import layers as L
        from lstmlab._fast import recurrent

        recurrent.SORT_ROWS = mode != "blend"
        x, y, _ = imdb_batch("pre")  # Keras's pad_sequences pads before
        lstmlab.set_random_seed(0)
        model = lstmlab.Sequential([
            L.Embedding(IMDB["vocab"], E, mask_zero=mode != "none"),
            L.Bidirectional(L.LSTM(H, return_sequences=True)),
            L.Bidirectional(L.LSTM(H)),
            L.Dense(1, activation="sigmoid"),
        ])
        model.compile("adam", "binary_crossentropy")
        return {"ms": median_ms(lambda: model.train_on_batch(x, y), repeats)}
    import torch

    torch.manual_seed(0)
    x, y, lengths = imdb_batch("post")  # pack_padded_sequence wants the valid steps first

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(IMDB["vocab"], E, padding_idx=0)
            self.lstm1 = torch.nn.LSTM(E, H, batch_first=True, bidirectional=True)
            self.lstm2 = torch.nn.LSTM(2 * H, H, batch_first=True, bidirectional=True)
            self.out = torch.nn.Linear(2 * H, 1)

        def forward(self, tokens, lengths):
            e = self.emb(tokens)
            if lengths is None:
                y1, _ = self.lstm1(e)
                _, (h, _) = self.lstm2(y1)
            else:
                pack = torch.nn.utils.rnn.pack_padded_sequence
                y1, _ = self.lstm1(pack(e, lengths, batch_first=True, enforce_sorted=False))
                _, (h, _) = self.lstm2(y1)
            return torch.sigmoid(self.out(torch.cat([h[0], h[1]], dim=1)))  # (B, 1) both directions' last h

    net = Net()
    opt = torch.optim.Adam(net.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lt = torch.from_numpy(lengths) if mode == "packed" else None

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(net(xt, lt), yt)
        loss.backward()
        opt.step()

    return {"ms": median_ms(step, repeats)}


def dropout_step(config, rate: float, repeats: int) -> dict:
    """One LSTM layer's forward + backward in training (the dropout masks drawn per call, as in fit)."""
    from lstmlab import layers as L

    B, T, D, H = config
    p = make_problem(B, T, D, H)
    layer = L.LSTM(H, return_sequences=True, recurrent_dropout=rate)
    layer.build((None, T, D))

    def train():
        layer(p["x"], training=True)
        layer.backward(p["dy"])

    return {"ms": median_ms(train, repeats)}


def section_imdb(repeats: int, rounds: int) -> None:
    modes = [("ours-imdb", "none"), ("ours-imdb", "skip"), ("ours-imdb", "blend"), ("torch-imdb", "padded"),
             ("torch-imdb", "packed")]
    res = rounds_of([{"kind": k, "mode": m, "repeats": repeats} for k, m in modes], rounds)
    ms = {m if k == "ours-imdb" else "torch-" + m: (r["ms"] if r else None) for (k, m), r in zip(modes, res)}
    print("## IMDB shape: Embedding(20000, 128, mask_zero) -> Bidirectional(LSTM(64), sequences) -> "
          "Bidirectional(LSTM(64)) -> Dense(1); one Adam step, 32 reviews of 30-200 tokens padded to 200\n")
    print("| | ms per step | vs lstmlab unmasked | vs PyTorch padded | vs PyTorch packed |")
    print("|---|---:|---:|---:|---:|")
    rows = [("lstmlab, no mask (padding computed)", "none"), ("lstmlab, masked (padding skipped)", "skip"),
            ("lstmlab, masked blend (rows unsorted)", "blend"), ("PyTorch, padded, no mask", "torch-padded"),
            ("PyTorch, pack_padded_sequence", "torch-packed")]
    for label, key in rows:
        print(f"| {label} | {fmt(ms[key])} | {ratio(ms[key], ms['none'])} | {ratio(ms[key], ms['torch-padded'])} | "
              f"{ratio(ms[key], ms['torch-packed'])} |")
    print()


DROPOUT_CONFIGS = [(32, 100, 64, 128), (64, 100, 128, 256)]


def section_dropout(repeats: int, rounds: int) -> None:
    print("## One LSTM layer's training step with recurrent_dropout=0.2 (median ms)\n")
    print("| config (B, T, D, H) | no dropout | recurrent_dropout=0.2 | ratio |")
    print("|---|---:|---:|---:|")
    for config in DROPOUT_CONFIGS:
        plain, dropped = rounds_of([{"kind": "ours-dropout", "config": config, "rate": r, "repeats": repeats}
                                    for r in (0.0, 0.2)], rounds)
        print(f"| {tuple(config)} | {plain['ms']:.2f} | {dropped['ms']:.2f} | {ratio(dropped['ms'], plain['ms'])} |")
    print()


# -- report --------------------------------------------------------------------------------------------------
def fmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def rounds_of(specs: list[dict], rounds: int) -> list[dict | None]:
    """Run every spec's worker ``rounds`` times, the specs taking turns (a, b, c, a, b, c, ...), and return per
    spec the median of each number over the rounds (None when that contender is not installed).

    Why rounds: this machine is shared, and its speed drifts by 30% or more over minutes (measured: lstmlab's
    (32, 100, 64, 128) forward at 1.8 ms, then 2.8 ms a few minutes later, ONNX Runtime's alike). Contenders
    timed one after the other can land in different phases; taking turns puts each in every phase.
    """
    runs = [[] for _ in specs]
    for _ in range(rounds):
        for spec, out in zip(specs, runs):
            out.append(run_worker(spec))
    merged = []
    for out in runs:
        if any(r is None for r in out):
            merged.append(None)
            continue
        merged.append({key: statistics.median(r[key] for r in out) for key in out[0]})
    return merged


def section_layers(repeats: int, rounds: int) -> None:
    print("## One LSTM layer, float32 (median ms; a ratio below 1 means lstmlab is faster)\n")
    print("| config (B, T, D, H) | mode | lstmlab | PyTorch | ONNX Runtime | GEMM floor | own-GEMM floor "
          "| vs PyTorch | vs ORT | vs floor | vs own floor |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = ("ours", "torch", "ort", "floor", "own-floor")
    for config in CONFIGS:
        res = dict(zip(kinds, rounds_of([{"kind": k, "config": config, "repeats": repeats} for k in kinds], rounds)))
        for mode in ("inference", "training"):
            o = res["ours"][mode]
            t = res["torch"][mode] if res["torch"] else None
            r = res["ort"].get(mode) if res["ort"] else None
            f = res["floor"][mode]
            g = res["own-floor"].get(mode)
            print(f"| {tuple(config)} | {mode} | {o:.2f} | {fmt(t)} | {fmt(r)} | {f:.2f} | {fmt(g)} | {ratio(o, t)} | "
                  f"{ratio(o, r)} | {ratio(o, f)} | {ratio(o, g)} |")
    print()


def section_gru(repeats: int, rounds: int) -> None:
    print("## One GRU layer (reset_after=True), float32 (median ms; a ratio below 1 means lstmlab is faster)\n")
    print("| config (B, T, D, H) | mode | lstmlab | PyTorch nn.GRU | ONNX Runtime GRU | vs PyTorch | vs ORT |")
    print("|---|---|---:|---:|---:|---:|---:|")
    kinds = ("ours-gru", "torch-gru", "ort-gru")
    for config in CONFIGS:
        res = dict(zip(kinds, rounds_of([{"kind": k, "config": config, "repeats": repeats} for k in kinds], rounds)))
        for mode in ("inference", "training"):
            o = res["ours-gru"][mode]
            t = res["torch-gru"][mode] if res["torch-gru"] else None
            r = res["ort-gru"].get(mode) if res["ort-gru"] else None
            print(f"| {tuple(config)} | {mode} | {o:.2f} | {fmt(t)} | {fmt(r)} | {ratio(o, t)} | {ratio(o, r)} |")
    print()


def section_memory() -> None:
    print("## Peak memory of one training step (forward + backward), float32\n")
    print("| config (B, T, D, H) | peak traced + reused buffers | activation cache, 10·B·T·H floats | ratio |")
    print("|---|---:|---:|---:|")
    for B, T, D, H in CONFIGS:
        res = run_worker({"kind": "memory", "config": [B, T, D, H], "repeats": 1})
        peak = res["peak"] + res["workspace"]
        # The cache keeps, per step and sequence, the 4H activated gates (written over the input projection),
        # c_t and h_t (6H); the backward adds dz, the same size as the gates (4H).
        theory = 4 * 10 * B * T * H
        print(f"| ({B}, {T}, {D}, {H}) | {res['peak'] / 2**20:.1f} + {res['workspace'] / 2**20:.1f} MiB | "
              f"{theory / 2**20:.1f} MiB | {peak / theory:.2f} |")
    print()


def section_char_model(repeats: int, rounds: int) -> None:
    ours_res, torch_res = rounds_of([{"kind": "ours-char", "repeats": repeats},
                                     {"kind": "torch-char", "repeats": repeats}], rounds)
    ours_ms = ours_res["ms"]
    torch_ms = torch_res["ms"] if torch_res else None
    chars = 64 * 100
    print("## Char-model recipe: embedding 64, 2 x LSTM(256), vocabulary 100, batch 64 x 100, Adam, clip 5\n")
    print("| | ms per step | characters / s | throughput vs PyTorch |")
    print("|---|---:|---:|---:|")
    print(f"| lstmlab | {ours_ms:.1f} | {chars / ours_ms * 1e3:,.0f} | {ratio(torch_ms, ours_ms)} |")
    if torch_ms is not None:
        print(f"| PyTorch | {torch_ms:.1f} | {chars / torch_ms * 1e3:,.0f} | 1.00x |")
    print()
    ours_gen, torch_gen = rounds_of([{"kind": "ours-gen", "repeats": 1}, {"kind": "torch-gen", "repeats": 1}], rounds)
    ours_us = ours_gen["us"]
    print("## Generation latency, 2 x LSTM(256) character model, one character at a time\n")
    print("| | microseconds per character |")
    print("|---|---:|")
    print(f"| lstmlab (stateful single step) | {ours_us:.0f} |")
    if torch_gen:
        print(f"| PyTorch (nn.LSTM with carried state) | {torch_gen['us']:.0f} |")
    print()


# What a CPU that has only AVX2 would run, emulated on this one: NumPy's OpenBLAS pinned to its Haswell kernels
# (it picks its AVX-512 ones here even under lstmlab's AVX2 variant), PyTorch's ATen and oneDNN capped at AVX2.
AVX2_CPU = {"ours": {"OPENBLAS_CORETYPE": "Haswell"},
            "torch": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def section_isa(isa: str, repeats: int, rounds: int) -> None:
    """The layer table again with the kernel variant ``isa`` forced (LSTMLAB_ISA), against the variant chosen by
    default on this CPU and PyTorch: what a CPU that runs only that variant would get, on the same machine.
    For ``avx2`` also the whole AVX2 CPU emulated (``AVX2_CPU``: every contender's libraries capped at AVX2),
    since PyTorch and NumPy's BLAS otherwise use this CPU's AVX-512 while lstmlab's variant does not."""
    def timed(spec: dict, forced: str | None, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "LSTMLAB_ISA"}
        if forced:
            env["LSTMLAB_ISA"] = forced
        env.update(extra or {})
        r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                           env=env)
        if r.returncode != 0:
            raise RuntimeError(f"worker {spec} (LSTMLAB_ISA={forced}, {extra}) failed:\n{r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    default = lstmlab._fast.ISA
    emulate = isa == "avx2"
    print(f"## One LSTM layer, float32, kernel variant {isa} forced (median ms; the default here is {default})\n")
    if emulate:
        print("The last three columns emulate a CPU with AVX2 only: "
              + "; ".join(f"{who}: " + ", ".join(f"{k}={v}" for k, v in env.items()) for who, env in AVX2_CPU.items())
              + ".\n")
    print(f"| config (B, T, D, H) | mode | lstmlab {isa} | lstmlab {default} | PyTorch | {isa} vs PyTorch "
          f"| {isa} vs {default} |" + (" lstmlab, AVX2 CPU | PyTorch, AVX2 CPU | ratio, AVX2 CPU |" if emulate else ""))
    print("|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if emulate else ""))
    for config in CONFIGS:
        kinds = ["forced", "default", "torch"] + (["forced-cpu", "torch-cpu"] if emulate else [])
        runs = {k: [] for k in kinds}
        for _ in range(rounds):  # taking turns, as rounds_of does
            spec = {"config": config, "repeats": repeats}
            runs["forced"].append(timed({"kind": "ours", **spec}, isa))
            runs["default"].append(timed({"kind": "ours", **spec}, None))
            runs["torch"].append(timed({"kind": "torch", **spec}, None))
            if emulate:
                runs["forced-cpu"].append(timed({"kind": "ours", **spec}, isa, AVX2_CPU["ours"]))
                runs["torch-cpu"].append(timed({"kind": "torch", **spec}, None, AVX2_CPU["torch"]))
        for mode in ("inference", "training"):
            m = {k: statistics.median(r[mode] for r in runs[k]) for k in kinds}
            f, d, t = m["forced"], m["default"], m["torch"]
            line = f"| {tuple(config)} | {mode} | {f:.2f} | {d:.2f} | {t:.2f} | {ratio(f, t)} | {ratio(f, d)} |"
            if emulate:
                line += f" {m['forced-cpu']:.2f} | {m['torch-cpu']:.2f} | {ratio(m['forced-cpu'], m['torch-cpu'])} |"
            print(line)
    print()


SECTIONS = {  # --only NAME runs one of them
    "layers": section_layers,
    "memory": lambda repeats, rounds: section_memory(),
    "char": section_char_model,
    "imdb": section_imdb,
    "dropout": section_dropout,
    "gru": section_gru,
    "bf16": section_bf16,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15, one round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each contender's worker runs, taking turns with the others (default 3)")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run this one table (e.g. --only layers)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--isa", choices=lstmlab._fast.ISAS,
                        help="only the LSTM layer table, with this kernel variant forced (LSTMLAB_ISA), against the "
                             "default variant and PyTorch")
    parser.add_argument("--checkpoint", help="with --only bf16: a textgen run's best.safetensors, for the accuracy "
                                             "table of a trained model")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    repeats = 5 if args.quick else 15
    rounds = 1 if args.quick else args.rounds
    if rounds < 1:
        parser.error(f"--rounds: expected a positive integer, got {rounds}")
    print(f"# lstmlab {lstmlab.__version__} LSTM benchmark\n")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"- NumPy {np.__version__}, BLAS: {blas_description()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    fast = lstmlab._fast
    print(f"- lstmlab fast path: {'on, ' + fast.ISA_REASON if fast.available() else 'off (' + fast.REASON + ')'}")
    try:
        import torch

        print(f"- PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        print("- PyTorch: not installed")
    try:
        import onnxruntime

        print(f"- ONNX Runtime {onnxruntime.__version__}")
    except ImportError:
        print("- ONNX Runtime: not installed")
    print(f"- every contender is timed in a fresh process of its own (see worker()), {rounds} round(s) taking "
          "turns; each number is the median over the rounds of the median of its repeats\n")
    if args.isa:
        section_isa(args.isa, repeats, rounds)
        return
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            section(repeats, rounds)
    if args.checkpoint and args.only in (None, "bf16"):
        section_bf16_accuracy(args.checkpoint)


if __name__ == "__main__":
    main()
