"""The LSTM variants' C time loops against the generic loop they replace (issue 17), and PyTorch where it has
the cell.

    python benchmarks/bench_cells.py            # 3 rounds of 15 repeats
    python benchmarks/bench_cells.py --quick    # 1 round of 5

One layer, float32, B = 32, T = 100, D = 64, H = 256, ``return_sequences=True``, inference (forward) and
training (forward + backward): ``RNN(PeepholeLSTMCell(256))``, ``LSTM(256, proj_size=128)``,
``RNN(LayerNormLSTMCell(256))``, each through its C loop (``lstmlab._fast.peephole``, ``.projection``,
``.layernorm``) and through the RNN layer's generic loop over the cell's one-step NumPy math (the C loop's
``covers`` turned off in that process), with the plain ``LSTM(256)`` for scale. PyTorch has only the
projection (``nn.LSTM(proj_size=128)``). Each contender runs in a fresh process, the rounds taking turns.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import numpy as np

from bench_lstm import median_ms

B, T, D, H, P = 32, 100, 64, 256, 128
CELLS = ("lstm", "peephole", "projection", "layernorm")


def layer_of(cell: str):
    from lstmlab import layers as L

    return {"lstm": lambda: L.LSTM(H, return_sequences=True),
            "peephole": lambda: L.RNN(L.PeepholeLSTMCell(H), return_sequences=True),
            "projection": lambda: L.LSTM(H, proj_size=P, return_sequences=True),
            "layernorm": lambda: L.RNN(L.LayerNormLSTMCell(H), return_sequences=True)}[cell]()


def ours(cell: str, loop: str, repeats: int) -> dict:
    from lstmlab._fast import layernorm, peephole, projection

    if loop == "generic":  # the cell's sequence() then returns None and the RNN layer runs the step
        for module in (peephole, projection, layernorm):
            module.covers = lambda *args: False
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    layer = layer_of(cell)
    layer.build((None, T, D))
    dy = rng.standard_normal((B, T, P if cell == "projection" else H)).astype(np.float32)

    def train():
        layer(x, training=True)
        layer.backward(dy)

    return {"inference": median_ms(lambda: layer(x), repeats), "training": median_ms(train, repeats)}


def torch_projection(repeats: int) -> dict:
    import torch

    rng = np.random.default_rng(0)
    m = torch.nn.LSTM(D, H, batch_first=True, proj_size=P)
    x = torch.from_numpy(rng.standard_normal((B, T, D)).astype(np.float32))
    dy = torch.from_numpy(rng.standard_normal((B, T, P)).astype(np.float32))
    xg = x.clone().requires_grad_()

    def infer():
        with torch.no_grad():
            return m(x)[0]

    def train():
        m.zero_grad()
        m(xg)[0].backward(dy)

    return {"inference": median_ms(infer, repeats), "training": median_ms(train, repeats)}


def run_worker(spec: dict) -> dict | None:
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if r.returncode != 0:
        if "ModuleNotFoundError" in r.stderr:
            return None
        raise RuntimeError(f"worker {spec} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15, one round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        result = (torch_projection(spec["repeats"]) if spec["cell"] == "torch"
                  else ours(spec["cell"], spec["loop"], spec["repeats"]))
        print(json.dumps(result))
        return
    repeats, rounds = (5, 1) if args.quick else (15, 3)
    specs = [{"cell": c, "loop": "c", "repeats": repeats} for c in CELLS]
    specs += [{"cell": c, "loop": "generic", "repeats": repeats} for c in CELLS if c != "lstm"]
    specs.append({"cell": "torch", "loop": "", "repeats": repeats})
    runs = [[] for _ in specs]
    for _ in range(rounds):  # taking turns
        for spec, out in zip(specs, runs):
            out.append(run_worker(spec))
    res = {(s["cell"], s["loop"]): (None if any(r is None for r in out) else
                                     {m: statistics.median(r[m] for r in out) for m in ("inference", "training")})
           for s, out in zip(specs, runs)}
    print(f"## The LSTM variants, one layer, float32, (B, T, D, H) = ({B}, {T}, {D}, {H}) (median ms)\n")
    print("| cell | mode | C loop | generic loop | C vs generic | plain LSTM(256) | PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for cell in CELLS[1:]:
        for mode in ("inference", "training"):
            c, g, plain = res[(cell, "c")][mode], res[(cell, "generic")][mode], res[("lstm", "c")][mode]
            pt = res[("torch", "")] if cell == "projection" else None
            print(f"| {cell} | {mode} | {c:.2f} | {g:.2f} | {c / g:.2f}x | {plain:.2f} | "
                  f"{'n/a' if pt is None else f'{pt[mode]:.2f}'} |")
    print()


if __name__ == "__main__":
    main()
