"""Which process am I, out of how many: the MPI world, or a world of one when no launcher started us.

``mpirun -n N`` (Open MPI), ``mpiexec`` (MPICH's Hydra) and Slurm's PMIx start N copies of the same program
and tell each its rank through the environment. Only then is mpi4py imported (it is the optional extra
``lstmlab[mpi]``): a plain ``lstmlab train`` never touches MPI, and a machine without MPI runs everything
else unchanged.
"""
from __future__ import annotations

import os
import sys

import numpy as np

EXTRA_HINT = "pip install 'lstmlab[mpi]'"
# The variable each launcher sets to the number of processes it started.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_size() -> int:
    """How many processes the MPI launcher started (1 when none did)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def import_mpi():
    """``mpi4py.MPI``, or a ValueError that names the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ValueError(f"data-parallel training needs mpi4py (this process was started by an MPI launcher with "
                         f"{launched_size()} processes): {EXTRA_HINT}") from None
    return MPI


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that ``rank`` of ``size`` owns: contiguous, the first ``n % size`` ranks one more."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class World:
    """The processes of one job; ``comm`` is None in a world of one (no MPI at all)."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self._quiet = None

    @property
    def is_root(self) -> bool:
        """Rank 0: the only process that prints and writes files."""
        return self.rank == 0

    def shard(self, n: int) -> tuple[int, int]:
        return shard_bounds(n, self.size, self.rank)

    def broadcast_arrays(self, arrays: list) -> list:
        """Rank 0's ``arrays`` on every rank, sent as one flat buffer per dtype (one Bcast, not one per tensor)."""
        if self.comm is None:
            return arrays
        out = [np.array(a, copy=True) for a in arrays]
        for dtype in sorted({a.dtype.str for a in out}):
            group = [a for a in out if a.dtype.str == dtype]
            flat = np.concatenate([a.ravel() for a in group]) if group else np.zeros(0, dtype)  # (sum sizes,)
            self.comm.Bcast(flat, root=0)
            offset = 0
            for a in group:
                a[...] = flat[offset:offset + a.size].reshape(a.shape)
                offset += a.size
        return out

    def broadcast(self, value):
        """Rank 0's ``value`` (a number or a small JSON-like object) on every rank."""
        return value if self.comm is None else self.comm.bcast(value, root=0)

    def gather_rows(self, array: np.ndarray) -> np.ndarray | None:
        """Every rank's rows of ``array`` (B_r, ...) stacked in rank order on rank 0, (B, ...); None elsewhere."""
        if self.comm is None:
            return array
        array = np.ascontiguousarray(array)
        rows = self.comm.gather(array.shape[0], root=0)
        row_size = int(np.prod(array.shape[1:], dtype=np.int64))
        out = np.empty((sum(rows),) + array.shape[1:], array.dtype) if self.is_root else None  # (B, ...)
        spec = [out, [r * row_size for r in rows]] if self.is_root else None
        self.comm.Gatherv(array, spec, root=0)
        return out

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a collective: every rank must call it)."""
        return bool(flag) if self.comm is None else bool(self.comm.allreduce(int(bool(flag))))

    def silence_workers(self) -> None:
        """Ranks other than 0 print nothing from here on (their stdout goes to the null device); errors still
        reach stderr, prefixed by nothing, since any rank can be the one that fails."""
        if not self.is_root and self._quiet is None:
            self._quiet = open(os.devnull, "w")
            sys.stdout = self._quiet

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (MPI_Abort): a failure on one rank must not leave the others waiting
        forever in a collective call."""
        if self.comm is not None:
            sys.stderr.flush()
            self.comm.Abort(code)


_WORLD: World | None = None


def world() -> World:
    """The job's world: MPI's COMM_WORLD when an MPI launcher started more than one process, else a world of one."""
    global _WORLD
    if _WORLD is None:
        _WORLD = World(import_mpi().COMM_WORLD) if launched_size() > 1 else World(None)
    return _WORLD
