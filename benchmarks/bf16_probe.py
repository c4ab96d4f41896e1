"""Would a bf16-weights inference path pay? Speed of the recurrent product and accuracy on a trained model.

    python benchmarks/bf16_probe.py --checkpoint runs/<textgen run>/best.safetensors

1. Speed: ``bf16_probe.c`` (built here with -march=native; needs AVX512_BF16) times one LSTM step's
   recurrent product h_{t-1} @ U at the shapes of bench_lstm.py's configs, on one core, in float32, as a
   bf16 dot product (_mm512_dpbf16_ps: U and h_{t-1} in bf16, float32 sums) and with bf16 weights widened to
   float32 in registers. Each is first checked against NumPy on the same rounded operands.
2. Accuracy: a trained character model (``lstmlab train``) predicts the held-out tail of its corpus in
   float32, with its kernels rounded to bf16 (weights-only, float32 arithmetic: what kind 2 computes), and
   with the kernels *and* each layer's inputs and h_{t-1} rounded to bf16 (what kind 1 computes). Reported:
   the largest and mean absolute difference of the softmax outputs, how often the most likely character
   changes, and the held-out cross-entropy.

Results of a run: benchmarks/results/bf16.md. The probe that decided the question; the shipped path is
src/lstmlab/_fast/lstm_bf16.c (layers.LSTM(units, dtype="bfloat16")), measured by bench_lstm.py --only bf16.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "src"))

from lstmlab import functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [(64, 100, 128, 256), (32, 100, 64, 128), (128, 50, 512, 512), (1, 500, 64, 256)]  # as bench_lstm.py
KINDS = {0: "float32", 1: "bf16 dot (dpbf16)", 2: "bf16 weights, float32 FMA"}


def bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bf16 (ties to even), returned as float32."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32)


def build() -> ctypes.CDLL:
    out = os.path.join(tempfile.mkdtemp(prefix="bf16_probe"), "bf16_probe.so")
    subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", os.path.join(HERE, "bf16_probe.c"), "-o", out],
                   check=True)
    lib = ctypes.CDLL(out)
    P, I = ctypes.c_void_p, ctypes.c_int64
    lib.probe_pack.argtypes, lib.probe_pack.restype = [ctypes.c_int, I, I, P, P], None
    lib.probe_step.argtypes, lib.probe_step.restype = [ctypes.c_int, I, I, I, P, P, P, P], None
    lib.probe_time.argtypes, lib.probe_time.restype = [ctypes.c_int, I, I, I, P, P, P, P, I, ctypes.c_int], \
        ctypes.c_double
    return lib


def section_speed(lib, reps: int) -> None:
    print("## The recurrent product of one step, h_{t-1} (B x H) @ U (H x 4H), one core\n")
    print("| config (B, T, D, H) | float32 µs | bf16 dot µs | bf16 weights µs | float32 GFLOP/s "
          "| bf16 dot speed-up | bf16 weights speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for B, T, D, H in CONFIGS:
        K, N = H, 4 * H
        a = rng.uniform(-1, 1, (B, K)).astype(np.float32)
        U = rng.uniform(-0.1, 0.1, (K, N)).astype(np.float32)
        a16 = np.zeros((B, K), np.uint16)
        c = np.zeros((B, N), np.float32)
        seconds = {}
        for kind in KINDS:
            packed = np.zeros(K * N, np.float32 if kind == 0 else np.uint16)
            lib.probe_pack(kind, K, N, U.ctypes.data, packed.ctypes.data)
            lib.probe_step(kind, B, K, N, a.ctypes.data, a16.ctypes.data, packed.ctypes.data, c.ctypes.data)
            # the same math on the same rounded operands, in float64
            expected = (bf16(a) if kind == 1 else a).astype(np.float64) @ (U if kind == 0 else bf16(U))
            np.testing.assert_allclose(c, expected, rtol=0, atol=1e-4)
            steps = max(20, int(2e8 / (2 * B * K * N)))  # about 0.1 s per repeat at 100 GFLOP/s
            seconds[kind] = lib.probe_time(kind, B, K, N, a.ctypes.data, a16.ctypes.data, packed.ctypes.data,
                                           c.ctypes.data, steps, reps)
        us = {k: 1e6 * s for k, s in seconds.items()}
        gflops = 2 * B * K * N / seconds[0] / 1e9
        print(f"| {(B, T, D, H)} | {us[0]:.2f} | {us[1]:.2f} | {us[2]:.2f} | {gflops:.0f} | "
              f"{seconds[0] / seconds[1]:.2f}x | {seconds[0] / seconds[2]:.2f}x |")
    print()


def lstm_bf16_everything(x, kernel, recurrent_kernel, bias):
    """The LSTM forward with x, h_{t-1} and both kernels rounded to bf16 and float32 sums (kind 1's math)."""
    B, T, _ = x.shape
    H = recurrent_kernel.shape[0]
    Wb, Ub = bf16(kernel), bf16(recurrent_kernel)
    zx = bf16(x) @ Wb + bias  # (B, T, 4H)
    h = np.zeros((B, H), np.float32)
    c = np.zeros((B, H), np.float32)
    hs = np.empty((B, T, H), np.float32)
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for t in range(T):
        z = zx[:, t] + bf16(h) @ Ub  # (B, 4H)
        i, f, g, o = np.split(z, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        hs[:, t] = h
    return hs


def predict(weights: dict, ids: np.ndarray, mode: str) -> np.ndarray:
    """Softmax outputs (B, T, V) of Embedding -> LSTMs -> Dense, in float32, with the given rounding."""
    x = weights["embedding"][ids]  # (B, T, E)
    for k, w, u, b in weights["lstm"]:
        if mode == "float32":
            x = F.lstm_forward(x, w, u, b)[0]
        elif mode == "bf16 weights":
            x = F.lstm_forward(x, bf16(w), bf16(u), b)[0]
        else:
            x = lstm_bf16_everything(x, w, u, b)
    kernel, bias = weights["logits"]
    logits = x @ (kernel if mode == "float32" else bf16(kernel)) + bias  # (B, T, V)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def section_accuracy(checkpoint: str, streams: int, length: int) -> None:
    from lstmlab.apps.textgen.corpus import builtin_corpus, split_ids
    from lstmlab.apps.textgen.trainer import load_checkpoint

    model, vocab, mcfg, tcfg, progress, _ = load_checkpoint(checkpoint)
    layers = {layer.name: layer for layer in model.layers}
    weights = {"embedding": layers["embedding"].get_weights()[0],
               "lstm": [(k,) + tuple(layers[f"lstm_{k}"].get_weights()) for k in range(1, mcfg.layers + 1)],
               "logits": tuple(layers["logits"].get_weights())}
    held_out = split_ids(vocab.encode(builtin_corpus()), tcfg.val_fraction)[1]
    n = streams * (length + 1)
    ids = held_out[:n].reshape(streams, length + 1)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    ref = predict(weights, inputs, "float32")
    print(f"## Accuracy: {mcfg.layers} x LSTM({mcfg.units}) character model, step {progress.best_step} "
          f"(held-out loss {progress.best_val:.4f} nats), {streams} held-out streams x {length} characters, "
          "from zero state\n")
    print("| weights | max abs diff of softmax | mean abs diff | top-1 changed | cross-entropy (bits/char) |")
    print("|---|---:|---:|---:|---:|")
    for mode in ("float32", "bf16 weights", "bf16 weights + activations"):
        p = ref if mode == "float32" else predict(weights, inputs, mode)
        d = np.abs(p - ref)
        changed = np.mean(p.argmax(-1) != ref.argmax(-1))
        xent = -np.mean(np.log2(np.take_along_axis(p, targets[..., None], -1)))
        print(f"| {mode} | {d.max():.2e} | {d.mean():.2e} | {100 * changed:.2f}% | {xent:.4f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a textgen run's best.safetensors (the accuracy table needs it)")
    parser.add_argument("--reps", type=int, default=7, help="timed repeats, the best kept (default 7)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error(f"--reps: expected a positive integer, got {args.reps}")
    section_speed(build(), args.reps)
    if args.checkpoint:
        section_accuracy(args.checkpoint, streams=32, length=400)


if __name__ == "__main__":
    main()
