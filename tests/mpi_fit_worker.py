"""Run by tests/test_distributed.py, alone or under ``mpirun -n N``: 20 steps of Model.fit with a global batch
of 64 through lstmlab.distributed.DataParallel; rank 0 saves the final weights to argv[2] (.npz).

argv[1] is float32 or float64; argv[3] the number of samples (its remainder mod 64 makes the last batch
uneven across ranks, or empty on one rank)."""
import sys

import numpy as np

import lstmlab
from lstmlab import backend
from lstmlab import layers as L
from lstmlab.distributed import DataParallel

dtype, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend.set_floatx(dtype)
dp = DataParallel()
# Each rank builds the model from another seed: the broadcast of rank 0's weights must make them agree.
with backend.seeded(11 + 1000 * dp.rank):
    inputs = L.Input((6, 3))
    h = L.LSTM(12, return_sequences=True)(inputs)
    h = L.GRU(8)(h)
    outputs = L.Dense(5)(h)
    model = lstmlab.Model(inputs, outputs)
model.compile(lstmlab.optimizers.Adam(3e-3), lstmlab.losses.SparseCategoricalCrossentropy(from_logits=True))
model.seed = 7 + dp.rank  # rank 0's seed is broadcast too (it orders the shuffled global batches)
rng = np.random.default_rng(3)
x = rng.normal(size=(n, 6, 3)).astype(dtype)
y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64) + 2 * (x[:, -1, 1] > 0.5)
history = model.fit(x, y, batch_size=64, epochs=1, shuffle=True, callbacks=[dp], verbose=0)
if dp.is_root:
    np.savez(out, *model.get_weights(), loss=np.array(history.history["loss"]),
             steps=np.array(model.optimizer.iterations))
