"""``mpirun -n N lstmlab train``: the B streams of the text are shared out among the N ranks.

The text is cut into ``batch_size`` (B) contiguous streams exactly as in one process; rank r owns streams
``[lo_r, hi_r)`` (contiguous, sizes differing by at most one) and trains a copy of the model built for its
``hi_r - lo_r`` rows, carrying their recurrent states from window to window. Each step, one ``Allreduce``
over one flat buffer averages the ranks' gradients weighted by their row counts
(:mod:`lstmlab.distributed.reduce`), so every rank applies the update one process would apply to all B rows.

Only rank 0 validates, samples and writes files. Its checkpoint is the one a single process would write:
the weights, the (shared) optimizer state, and the carried states of all B streams, gathered from the ranks
into a model built for B rows. Hence a checkpoint resumes with any number of ranks, one included; each rank
then takes its rows of the stored states.
"""
from __future__ import annotations

import numpy as np

from ...distributed import GradientReducer, World, rank_seed
from ...distributed.watchdog import StopWatchdog
from ...layers import RNN
from ...training.losses import SparseCategoricalCrossentropy
from .config import ModelConfig
from .model import build_model


class StreamParallel:
    """This rank's share of the streams, its model, and the full-batch model rank 0 saves.

    Parameters
    ----------
    world : World
        The MPI world (more than one rank).
    full : Sequential
        The model built (or loaded from a checkpoint) for all B streams, compiled: its optimizer is shared.
    mcfg : ModelConfig
    """

    def __init__(self, world: World, full, mcfg: ModelConfig):
        self.world = world
        self.reducer = GradientReducer(world)
        B = full.layers[0].batch_input_shape[0]
        self.lo, self.hi = world.shard(B)
        if self.hi == self.lo:
            raise ValueError(f"batch_size: expected at least one stream per rank, got {B} streams for "
                             f"{world.size} ranks")
        full.set_weights(world.broadcast_arrays(full.get_weights()))  # rank 0's weights everywhere
        self.full = full
        local = build_model(mcfg, self.hi - self.lo)  # (B_r rows); its initial weights are overwritten
        local.compile(full.optimizer, SparseCategoricalCrossentropy(from_logits=True))  # one optimizer state
        local.set_weights(full.get_weights())
        local.seed = rank_seed(full.seed, world.rank)  # dropout masks of its own rows
        for mine, whole in self._recurrent_pairs(local):
            if whole.states is not None:
                mine.reset_states([s[self.lo:self.hi] for s in whole.states])  # (B_r, H) of (B, H)
        self.local = local
        try:  # a stop signal must end this rank even while it waits on a dead one
            self.watchdog = StopWatchdog()
        except ValueError:  # not the main thread: no signal handlers here either
            self.watchdog = None

    def _recurrent_pairs(self, local):
        return [(a, b) for a, b in zip(local.layers, self.full.layers) if isinstance(a, RNN) and a.stateful]

    def rows(self, streams: np.ndarray) -> np.ndarray:
        """This rank's rows of the (B, L) streams: (B_r, L)."""
        return streams[self.lo:self.hi]

    def gather(self):
        """Bring the full model up to date for a checkpoint (a collective: every rank calls it).

        Rank 0's full model gets the current weights and every rank's carried states; returns it on rank 0,
        None elsewhere.
        """
        for mine, whole in self._recurrent_pairs(self.local):
            states = mine.states or mine.cell.get_initial_state(self.hi - self.lo)  # (B_r, H) each
            gathered = [self.world.gather_rows(s) for s in states]  # (B, H) on rank 0
            if self.world.is_root:
                whole.reset_states(gathered)
        if not self.world.is_root:
            return None
        self.full.set_weights(self.local.get_weights())
        return self.full
