"""The all-reduce of data-parallel training: one flat buffer, one ``Allreduce`` per step.

Rank r computed the mean gradient ``g_r`` of its ``n_r`` samples. The gradient of the whole global batch is
the mean over all its samples::

    g = sum_r n_r g_r / sum_r n_r                                          (1)

so each rank packs ``n_r g_r`` of every tensor, then ``n_r loss_r`` and ``n_r`` itself, into one contiguous
buffer, and a single ``Allreduce(SUM)`` yields both the numerator of (1) and its denominator. Uneven shards
(the last batch of an epoch, a batch that does not divide by the number of ranks) are therefore exact, and a
rank with no rows takes part with ``n_r = 0``. A few flags (a stop request, a time budget run out) ride along
in the same buffer, so that every rank takes the same decision at the same step.

One message per step instead of one per tensor matters: latency is paid once, and MPI's ring or tree
algorithms get one large message to pipeline.
"""
from __future__ import annotations

import numpy as np

from .world import World


class GradientReducer:
    """Averages gradients (and the loss) over the ranks of ``world``, weighting each by its sample count."""

    def __init__(self, world: World):
        self.world = world
        self._buffer: np.ndarray | None = None

    def nbytes(self, grads) -> int:
        """Bytes one step sends (the flat buffer): the gradients, then loss, count and flags."""
        return sum(int(g.size) for g in grads) * np.result_type(*grads).itemsize

    def allreduce(self, loss: float, grads: list, count: int, flags=()) -> tuple[float, list, list]:
        """``(global mean loss, global mean gradients, flags summed over ranks)``; see equation (1).

        ``grads`` are this rank's mean gradients over its ``count`` samples (shapes as the weights). In a world
        of one they come back unchanged (bit for bit), as does the loss.
        """
        flags = [float(f) for f in flags]
        if self.world.comm is None:
            return loss, grads, flags
        from mpi4py import MPI

        dtype = np.result_type(*grads)
        sizes = [int(g.size) for g in grads]
        total = sum(sizes)
        n = total + 2 + len(flags)
        if self._buffer is None or self._buffer.shape != (n,) or self._buffer.dtype != dtype:
            self._buffer = np.empty(n, dtype)  # (P + 2 + F,): reused every step
        buf = self._buffer
        offset = 0
        for g, s in zip(grads, sizes):
            np.multiply(np.ravel(g), count, out=buf[offset:offset + s])  # n_r g_r
            offset += s
        buf[total:] = [loss * count, count] + flags  # n_r loss_r, n_r, flags
        self.world.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        samples = float(buf[total + 1])
        if samples <= 0:
            raise ValueError(f"batch: expected at least one sample across {self.world.size} ranks, got none")
        out, offset = [], 0
        for g, s in zip(grads, sizes):
            out.append((buf[offset:offset + s] / samples).reshape(np.shape(g)).astype(g.dtype, copy=False))  # (1)
            offset += s
        return float(buf[total]) / samples, out, [float(f) for f in buf[total + 2:]]
