"""Data-parallel ``fit`` for Keras-style code: pass ``DataParallel()`` as a callback and start under mpirun.

::

    from lstmlab.distributed import DataParallel

    dp = DataParallel()                                   # the MPI world, or a world of one
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=3, callbacks=[dp])   # 64 is the *global* batch

    $ mpirun -n 4 python train.py

Every rank loads (or builds) the same data and calls ``fit`` with the same arguments. Then:

* before any batch is drawn, rank 0's weights and training seed are broadcast, so every rank starts from the
  same model and shuffles the data into the same global batches;
* each global batch of ``batch_size`` samples is split into contiguous shards, one per rank (uneven when it
  does not divide; a rank can get none on a short last batch);
* each rank computes the gradient of its shard; one ``Allreduce`` over one flat buffer averages them, weighted
  by each shard's sample count (:mod:`lstmlab.distributed.reduce`), and every rank applies the same update;
* only rank 0 prints (``verbose`` is 0 elsewhere). Give file-writing callbacks (ModelCheckpoint, CSVLogger) to
  rank 0 only: ``callbacks=[dp] + ([ModelCheckpoint(path)] if dp.is_root else [])``.

The result equals one process training with the same global batch, up to the order of floating-point sums,
for losses that average over samples (Keras's default reduction). What differs: dropout masks are drawn per
rank for its own rows (rank r > 0 from its own seed), and metrics other than the loss are those of rank 0's
shards. Stateful recurrent models (carried state per batch row) are not split this way; ``lstmlab train``
shards its streams itself.
"""
from __future__ import annotations

import numpy as np

from ..training.callbacks import Callback
from ..training.data_adapters import leaves, take
from .reduce import GradientReducer
from .world import World, world as default_world


def rank_seed(seed: int, rank: int) -> int:
    """The training seed of ``rank``: rank 0 keeps ``seed`` (so one process is the plain run); the others get
    their own, so that their dropout masks differ from rank 0's (drawn from (seed, step, layer) otherwise)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint32)[0])


class DataParallel(Callback):
    """Spreads ``fit`` over the processes of an MPI job (a no-op in a world of one).

    Parameters
    ----------
    world : World, optional
        Defaults to :func:`lstmlab.distributed.world` (MPI's COMM_WORLD under mpirun).
    """

    def __init__(self, world: World | None = None):
        self.world = world if world is not None else default_world()
        self.reducer = GradientReducer(self.world)
        self._count = 0

    @property
    def rank(self) -> int:
        return self.world.rank

    @property
    def size(self) -> int:
        return self.world.size

    @property
    def is_root(self) -> bool:
        return self.world.is_root

    # -- the contract ``Trainer.fit`` calls (see lstmlab.models.trainer._distribution) -----------------
    def prepare(self, model) -> None:
        """Make every rank start from rank 0's weights and shuffle with rank 0's seed (collective)."""
        seed = int(self.world.broadcast(model.seed if model.seed is not None else 0))
        model.seed = rank_seed(seed, self.rank)
        self._shuffle_seed = seed
        model.set_weights(self.world.broadcast_arrays(model.get_weights()))

    def shuffle_seed(self, model) -> int:
        """The seed ``fit`` shuffles with: the same on every rank (rank 0's), so the global batches agree."""
        return getattr(self, "_shuffle_seed", model.seed)

    def split_batch(self, x, y, sample_weight):
        """This rank's contiguous rows of a global batch, or None when its share is empty."""
        first = leaves(x)[0] if isinstance(x, (list, dict)) else x
        lo, hi = self.world.shard(len(first))
        self._count = hi - lo
        if hi == lo:
            return None
        rows = slice(lo, hi)
        return take(x, rows), take(y, rows), take(sample_weight, rows)

    def before_update(self, loss, grads):
        """The global batch's mean loss and gradients, from this rank's (one Allreduce)."""
        loss, grads, _ = self.reducer.allreduce(loss, grads, self._count)
        return loss, grads
