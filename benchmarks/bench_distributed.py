"""Data-parallel scaling of ``lstmlab train``'s default model: measured here, projected to many machines.

    python benchmarks/bench_distributed.py             # needs mpirun and mpi4py (pip install 'lstmlab[mpi]')
    python benchmarks/bench_distributed.py --steps 20

On this machine (2 cores) it compares the two ways to use both cores for one global batch of 64 streams x 100
characters: 1 rank x 2 threads (lstmlab's own threads split each GEMM and time loop) against 2 ranks x 1
thread (each rank 32 streams; one Allreduce of the flat gradient per step). It times each step and, inside
it, the Allreduce; then a bare Allreduce of a buffer of the gradient's size. From the gradient size and the
measured compute time it projects the step time on N machines for a ring all-reduce, which sends and
receives 2 (N - 1) / N times the buffer per machine:

    t_allreduce(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency

Prints Markdown. This is a benchmark, never a test: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

GLOBAL_BATCH, SEQ = 64, 100


def worker(steps: int, threads: int) -> None:
    """Under mpirun or alone: time ``steps`` training steps of the default model; rank 0 prints JSON."""
    from lstmlab._fast import parallel
    from lstmlab.apps.textgen import ModelConfig, TrainConfig, builtin_corpus, build_model
    from lstmlab.apps.textgen.corpus import Vocabulary
    from lstmlab.apps.textgen.model import compile_model
    from lstmlab.distributed import GradientReducer, world

    parallel.set_threads(threads)
    w = world()
    lo, hi = w.shard(GLOBAL_BATCH)
    vocab = Vocabulary.from_text(builtin_corpus())
    mcfg = ModelConfig(vocab_size=len(vocab), dropout=0.0)  # lstmlab train's defaults: 2 x LSTM(256)
    model = build_model(mcfg, hi - lo)
    compile_model(model, TrainConfig())
    reducer = GradientReducer(w)
    grads = [w_.value for w_ in model.weights]
    n_params = sum(g.size for g in grads)
    rng = np.random.default_rng(w.rank)
    x = rng.integers(0, len(vocab), (hi - lo, SEQ + 1))
    comm_s = []

    def reduce(loss, g):
        t = time.perf_counter()
        out = reducer.allreduce(loss, g, hi - lo)
        comm_s.append(time.perf_counter() - t)
        return out[0], out[1]

    step_s = []
    for k in range(steps + 2):  # two warm-up steps
        t = time.perf_counter()
        model.train_on_batch(x[:, :SEQ], x[:, 1:], before_update=reduce)
        step_s.append(time.perf_counter() - t)
    step_s, comm_s = step_s[2:], comm_s[2:]
    bare = []
    if w.comm is not None:  # a bare Allreduce of a float32 buffer of the gradient's size
        from mpi4py import MPI

        buf = np.ones(n_params, np.float32)
        for _ in range(20):
            w.comm.Barrier()
            t = time.perf_counter()
            w.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            bare.append(time.perf_counter() - t)
    if w.is_root:
        print(json.dumps({"ranks": w.size, "threads": threads, "params": int(n_params),
                          "step_s": float(np.median(step_s)), "allreduce_in_step_s": float(np.median(comm_s)) if comm_s and w.comm else 0.0,
                          "bare_allreduce_s": float(np.median(bare)) if bare else 0.0}))


def launch(ranks: int, threads: int, steps: int) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    cmd = [sys.executable, __file__, "--worker", "--steps", str(steps), "--threads", str(threads)]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "core", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ring_s(n: int, nbytes: int, gbit: float, latency_s: float = 20e-6) -> float:
    """Ring all-reduce of ``nbytes`` over ``n`` machines on links of ``gbit`` Gbit/s."""
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / (gbit * 1e9 / 8) + 2 * (n - 1) * latency_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker(args.steps, args.threads)
    one = launch(1, 2, args.steps)
    two = launch(2, 1, args.steps)
    single = launch(1, 1, args.steps)
    P = one["params"]
    nbytes = 4 * P
    chars = GLOBAL_BATCH * SEQ
    print("## Measured on this machine (global batch 64 x 100 characters, default model)\n")
    print("| layout | step (s) | characters/s | Allreduce in the step (s) |")
    print("|---|---|---|---|")
    for name, r in (("1 rank x 1 thread", single), ("1 rank x 2 threads", one), ("2 ranks x 1 thread", two)):
        print(f"| {name} | {r['step_s']:.3f} | {chars / r['step_s']:,.0f} | {r['allreduce_in_step_s']:.4f} |")
    print(f"\nGradient: {P:,} float32 parameters x 4 bytes = {nbytes:,} bytes = {nbytes / 1e6:.2f} MB per step.")
    print(f"A bare Allreduce of that buffer on 2 local ranks (shared memory): {two['bare_allreduce_s'] * 1e3:.2f} ms "
          f"= {nbytes / max(two['bare_allreduce_s'], 1e-9) / 1e9:.2f} GB/s effective.\n")
    compute = single["step_s"]  # one machine's step on 64 streams, one core
    print("## Projection to N machines (ring all-reduce, 20 us latency per hop, no overlap of compute and "
          "communication)\n")
    print(f"Weak scaling: each machine keeps 64 streams (compute {compute:.3f} s per step as measured on one core "
          "here); the global batch grows to 64 N.\n")
    print("| N | all-reduce at 10 Gbit/s (ms) | efficiency | all-reduce at 100 Gbit/s (ms) | efficiency |")
    print("|---|---|---|---|---|")
    for n in (2, 4, 8, 16, 64, 256):
        a, b = ring_s(n, nbytes, 10), ring_s(n, nbytes, 100)
        print(f"| {n} | {a * 1e3:.2f} | {compute / (compute + a):.1%} | {b * 1e3:.2f} | {compute / (compute + b):.1%} |")
    print(f"\nArithmetic: 2 (N - 1) / N x {nbytes / 1e6:.2f} MB -> at most {2 * nbytes / 1e6:.2f} MB through each "
          f"link per step; 10 Gbit/s = 1.25 GB/s gives {2 * nbytes / 1.25e9 * 1e3:.2f} ms, 100 Gbit/s "
          f"{2 * nbytes / 12.5e9 * 1e3:.2f} ms, against {compute * 1e3:.0f} ms of compute.")


if __name__ == "__main__":
    main()
