"""Communicators: the few collective operations data-parallel training needs, three ways.

Every rank (process) holds one communicator `comm` with `comm.rank` (0 ... size-1) and
`comm.size`, and calls the same collectives in the same order; each call returns on a rank once
every rank has made it:

    Allreduce(buf)          buf <- the element-wise SUM of every rank's buf (in place, NumPy)
    Bcast(buf, root)        buf <- root's buf (in place)
    bcast(obj, root)        root's Python object, on every rank (pickled: small things only)
    gather(obj, root)       [obj of rank 0, obj of rank 1, ...] on root, None elsewhere
    Abort(code)             end every rank of the job now with exit status `code`

Upper-case names take NumPy buffers, lower-case ones Python objects, as in mpi4py.

- `MPIComm` runs them on MPI (mpi4py over MPICH or another MPI), one process per rank.
- `SingleComm` is a world of one: every collective is the identity. `init()` uses it when the
  program was not launched by `mpiexec` (or mpi4py is absent), so the same script runs alone.
- `FakeWorld(n)` runs n ranks as n threads of one process (tests, and machines without MPI):
  the same collectives, so the distributed logic is tested without MPI. Only one rank computes
  at a time (a turn lock, handed on inside each collective), and sums are taken in rank order,
  so every rank gets the bit-identical result, as MPI's Allreduce gives. The threads share
  minicnn's global generator, and which rank runs first after a collective is not fixed: with
  dropout or random augmentation a fake run is not repeatable (a real one is).
"""
import os
import threading
from functools import reduce

import numpy as np


class SingleComm:
    """A world of one process: rank 0 of size 1, every collective the identity."""

    rank, size, local_size = 0, 1, 1

    def Allreduce(self, buf):
        return buf

    def Bcast(self, buf, root=0):
        return buf

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def Abort(self, code=1):
        raise SystemExit(code)

    def __repr__(self):
        return "SingleComm(rank 0 of 1)"


class MPIComm:
    """MPI's COMM_WORLD through mpi4py. `local_size` is the number of ranks on this machine
    (they share its cores)."""

    def __init__(self, comm=None):
        from mpi4py import MPI
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)   # the ranks sharing this machine
        self.local_size = node.Get_size()
        node.Free()

    def Allreduce(self, buf):
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return buf

    def Bcast(self, buf, root=0):
        self.comm.Bcast(buf, root=root)
        return buf

    def bcast(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def gather(self, obj, root=0):
        return self.comm.gather(obj, root=root)

    def Abort(self, code=1):
        self.comm.Abort(code)

    def __repr__(self):
        return f"MPIComm(rank {self.rank} of {self.size})"


def launched_by_mpi():
    """True when this process was started by mpiexec/mpirun/srun (their environment variables:
    MPICH's hydra sets PMI_RANK, Open MPI OMPI_COMM_WORLD_SIZE, PMIx PMIX_RANK)."""
    return any(name in os.environ for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE",
                                               "PMIX_RANK"))


# ---- n ranks in one process, for tests ----------------------------------------------------------
class FakeAbort(RuntimeError):
    """What `FakeComm.Abort` raises in the calling rank (the others' collectives then fail)."""


class FakeWorld:
    """`size` ranks as threads of this process, each with a `FakeComm` (`world.comms[r]`).

        world = FakeWorld(2)
        results = world.run(lambda comm: train_my_shard(comm))   # [rank 0's, rank 1's]

    A rank that raises breaks every collective the others are waiting in, and `run` raises the
    first error, naming its rank; a collective that waits longer than `timeout` seconds fails,
    so a mismatched program ends instead of hanging.
    """

    def __init__(self, size, timeout=120.0):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"FakeWorld: size must be an int >= 1, got {size!r}")
        self.size, self.timeout = size, timeout
        self._barrier = threading.Barrier(size, timeout=timeout)
        self._slots = [None] * size
        self._turn = threading.Lock()   # held by the one rank computing now
        self.comms = [FakeComm(self, r) for r in range(size)]

    def exchange(self, rank, value):
        """Every rank hands in `value`; each gets the list of all ranks' values, in rank order."""
        self._slots[rank] = value
        self._turn.release()            # let the other ranks run up to this collective
        try:
            self._barrier.wait()        # every value is in
            values = list(self._slots)
            self._barrier.wait()        # every rank has read them before one writes again
        finally:
            self._turn.acquire()
        return values

    def run(self, fn):
        """fn(comm) on every rank at once (one thread each); the list of their return values."""
        results, errors = [None] * self.size, [None] * self.size

        def one(rank):
            with self._turn:
                try:
                    results[rank] = fn(self.comms[rank])
                except BaseException as exc:   # noqa: BLE001 - handed to the caller below
                    errors[rank] = exc
                    self._barrier.abort()      # the other ranks stop waiting for this one

        threads = [threading.Thread(target=one, args=(r,), name=f"fake-rank-{r}")
                   for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = next(((r, e) for r, e in enumerate(errors)
                      if e is not None and not isinstance(e, threading.BrokenBarrierError)),
                     next(((r, e) for r, e in enumerate(errors) if e is not None), None))
        if first is not None:
            rank, exc = first
            raise RuntimeError(f"FakeWorld: rank {rank} of {self.size} raised "
                               f"{type(exc).__name__}: {exc}") from exc
        return results


class FakeComm:
    """One rank of a `FakeWorld`; the collectives of the module docstring."""

    def __init__(self, world, rank):
        self.world, self.rank, self.size, self.local_size = world, rank, world.size, world.size

    def Allreduce(self, buf):
        values = self.world.exchange(self.rank, buf.copy())
        buf[...] = reduce(np.add, values)   # rank order: every rank the same bits
        return buf

    def Bcast(self, buf, root=0):
        values = self.world.exchange(self.rank, buf.copy() if self.rank == root else None)
        buf[...] = values[root]
        return buf

    def bcast(self, obj, root=0):
        return self.world.exchange(self.rank, obj)[root]

    def gather(self, obj, root=0):
        values = self.world.exchange(self.rank, obj)
        return values if self.rank == root else None

    def Abort(self, code=1):
        raise FakeAbort(f"rank {self.rank} called Abort({code})")

    def __repr__(self):
        return f"FakeComm(rank {self.rank} of {self.size})"
