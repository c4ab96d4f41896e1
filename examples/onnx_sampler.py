"""Text from `lstmlab export RUN_DIR --format onnx` in ONNX Runtime alone: the characters `lstmlab generate
RUN_DIR` prints for the same --seed, --temperature, --top-k and --prime (the same numpy draws, in order).

    python examples/onnx_sampler.py RUN_DIR/model.onnx --length 300 --temperature 0.5 --seed 1
"""
import argparse
import json

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
for option, kind, default in [("--prime", str, ""), ("--length", int, 500), ("--temperature", float, 1.0),
                              ("--top-k", int, None), ("--seed", int, None)]:
    p.add_argument(option, type=kind, default=default)
a = p.parse_args()
meta = json.load(open(a.model[: -len(".onnx")] + ".vocab.json", encoding="utf-8"))  # written by lstmlab export
chars, S = meta["chars"], meta["states"]
sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
states = {s["input"]: np.zeros((1, s["size"]), np.float32) for s in S}  # every layer starts from zeros


def step(i):  # one character id in, (1, 1); the next one's logits / temperature out; the states carried
    logits, *new = sess.run([meta["logits"]] + [s["output"] for s in S], {meta["input"]: np.array([[i]]), **states})
    states.update(zip((s["input"] for s in S), new))
    return logits[0, -1].astype(np.float64) / a.temperature


rng, out = np.random.default_rng(a.seed), []
for c in a.prime or meta["default_prime"]:
    z = step(chars.index(c))
for _ in range(a.length):  # lstmlab's sample_index: softmax(z), top-k, one rng.random() per character
    if a.top_k is not None and a.top_k < z.size:
        z = np.where(z >= np.partition(z, -a.top_k)[-a.top_k], z, -np.inf)
    cdf = np.cumsum(np.exp(z - z.max()))
    out.append(chars[min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), z.size - 1)])
    z = step(chars.index(out[-1]))
print(a.prime + "".join(out))
