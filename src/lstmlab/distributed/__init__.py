"""Data-parallel training over MPI (mpi4py): every rank holds the whole model and a share of each batch; one
``Allreduce`` over one flat gradient buffer per step keeps their weights identical.

* :class:`DataParallel` -- a callback that ``Model.fit`` / ``Sequential.fit`` accept (Keras-style code);
* ``mpirun -n N lstmlab train ...`` -- the character-model trainer shards its streams over the ranks
  (:mod:`lstmlab.apps.textgen.parallel`);
* :func:`world` -- this process's rank and the number of ranks (a world of one without a launcher).

mpi4py is the optional extra ``lstmlab[mpi]``; it is imported only when an MPI launcher started the process.
"""
from .data_parallel import DataParallel, rank_seed
from .reduce import GradientReducer
from .world import World, launched_size, shard_bounds, world

__all__ = ["DataParallel", "GradientReducer", "World", "launched_size", "rank_seed", "shard_bounds", "world"]
