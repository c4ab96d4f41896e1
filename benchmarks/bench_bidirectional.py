"""The Bidirectional LSTM layer against its two halves run alone, and against PyTorch (issue 17).

    python benchmarks/bench_bidirectional.py            # 3 rounds of 15 repeats
    python benchmarks/bench_bidirectional.py --quick    # 1 round of 5

For each config of bench_lstm.py (B, T, D, H), float32, ``Bidirectional(LSTM(H, return_sequences=True))``
(merge "concat") on inputs that are all valid ("full") and on a padded batch with a mask (post-padded, lengths
drawn from [T/5, T], the IMDB issue's spread):

- lstmlab's Bidirectional layer, forward (inference) and forward + backward (training);
- the same two halves as plain layers, ``LSTM(H)`` and ``LSTM(H, go_backwards=True)``, one after the other:
  what the two directions cost without the wrapper, so "vs halves" is what the wrapper adds (reversing,
  merging, splitting the gradient, adding the two dx);
- PyTorch's ``nn.LSTM(bidirectional=True)`` on the padded batch, no mask (its usual padded use).

Each contender runs in a fresh process (as bench_lstm.py's workers), the rounds taking turns.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import numpy as np

from bench_lstm import CONFIGS, median_ms

MASKINGS = ("full", "padded")


def problem(B, T, D, H, masking, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    dy = rng.standard_normal((B, T, 2 * H)).astype(np.float32)
    mask = None
    if masking == "padded":
        lengths = rng.integers(max(1, T // 5), T + 1, B)
        mask = np.arange(T)[None] < lengths[:, None]  # (B, T) post-padded
        x = x * mask[..., None]
    return x, dy, mask


def ours(spec):
    from lstmlab import layers as L

    B, T, D, H = spec["config"]
    x, dy, mask = problem(B, T, D, H, spec["masking"])
    if spec["kind"] == "bidirectional":
        layer = L.Bidirectional(L.LSTM(H, return_sequences=True))
        layer.build((None, T, D))

        def infer():
            return layer(x, mask=mask)

        def train():
            layer(x, training=True, mask=mask)
            layer.backward(dy)
    else:  # the two halves alone
        fwd, bwd = L.LSTM(H, return_sequences=True), L.LSTM(H, return_sequences=True, go_backwards=True)
        for half in (fwd, bwd):
            half.build((None, T, D))
        dyf, dyb = np.ascontiguousarray(dy[..., :H]), np.ascontiguousarray(dy[..., H:])

        def infer():
            return fwd(x, mask=mask), bwd(x, mask=mask)

        def train():
            fwd(x, training=True, mask=mask)
            fwd.backward(dyf)
            bwd(x, training=True, mask=mask)
            bwd.backward(dyb)

    return {"inference": median_ms(infer, spec["repeats"]), "training": median_ms(train, spec["repeats"])}


def torch_bidirectional(spec):
    import torch

    B, T, D, H = spec["config"]
    x, dy, _ = problem(B, T, D, H, spec["masking"])
    m = torch.nn.LSTM(D, H, batch_first=True, bidirectional=True)
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    xg = xt.clone().requires_grad_()

    def infer():
        with torch.no_grad():
            return m(xt)[0]

    def train():
        m.zero_grad()
        xg.grad = None
        m(xg)[0].backward(dyt)

    return {"inference": median_ms(infer, spec["repeats"]), "training": median_ms(train, spec["repeats"])}


def worker(spec):
    return torch_bidirectional(spec) if spec["kind"] == "torch" else ours(spec)


def run_worker(spec):
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if r.returncode != 0:
        if "ModuleNotFoundError" in r.stderr:
            return None
        raise RuntimeError(f"worker {spec} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15, one round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    repeats, rounds = (5, 1) if args.quick else (15, 3)
    kinds = ("bidirectional", "halves", "torch")
    print("## Bidirectional(LSTM(H), return_sequences=True), float32 (median ms; below 1 means lstmlab is faster)\n")
    print("| config (B, T, D, H) | batch | mode | lstmlab Bidirectional | two halves alone | PyTorch bidirectional "
          "| vs halves | vs PyTorch |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for config in CONFIGS:
        for masking in MASKINGS:
            specs = [{"kind": k, "config": list(config), "masking": masking, "repeats": repeats} for k in kinds]
            runs = {k: [] for k in kinds}
            for _ in range(rounds):  # taking turns
                for spec in specs:
                    runs[spec["kind"]].append(run_worker(spec))
            for mode in ("inference", "training"):
                bi, halves, pt = (None if any(r is None for r in runs[k]) else
                                  statistics.median(r[mode] for r in runs[k]) for k in kinds)
                vs_pt = "n/a" if pt is None else f"{bi / pt:.2f}x"
                print(f"| {tuple(config)} | {masking} | {mode} | {bi:.2f} | {halves:.2f} | "
                      f"{'n/a' if pt is None else f'{pt:.2f}'} | {bi / halves:.2f}x | {vs_pt} |")
    print()


if __name__ == "__main__":
    main()
