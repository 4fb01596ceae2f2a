"""The world this process belongs to: `init()`, `rank()`, `world_size()`, `is_main()`, and the
threads each rank uses.

`init()` is safe to call anywhere: under `mpiexec -n N` (with mpi4py installed) it joins MPI's
world of N ranks; otherwise it returns a world of one (`SingleComm`), so one script serves both.

Threads: R ranks on one machine share its cores. Each rank runs Numba's parallel loops and
OpenBLAS on cores / R threads (two ranks on two cores: one thread each), set by `init()`;
`init(threads=n)` or the environment variable MINICNN_THREADS=n overrides it. A world of one
leaves the threads as they are unless asked.
"""
import os

from .comm import MPIComm, SingleComm, launched_by_mpi

_world = []   # [the communicator] once init() has run


def init(comm=None, threads=None):
    """Join the world and set this rank's threads; returns the communicator (`.rank`, `.size`).

    comm     a communicator to use instead (e.g. one rank of a `FakeWorld`, or an mpi4py
             communicator wrapped in `MPIComm(sub_comm)`); default: MPI's COMM_WORLD when
             launched by mpiexec and mpi4py imports, else a world of one
    threads  Numba/BLAS threads for this rank (default: MINICNN_THREADS, else cores / ranks on
             this machine)
    Calling it again returns the same world (a new `comm` replaces it).
    """
    if comm is not None:
        _world[:] = [comm]
    elif not _world:
        _world.append(_launch())
    current = _world[0]
    wanted = threads if threads is not None else os.environ.get("MINICNN_THREADS")
    if wanted is not None or current.size > 1:
        set_threads(threads_per_rank(current, wanted))
    return current


def _launch():
    if not launched_by_mpi():
        return SingleComm()
    try:
        return MPIComm()
    except ImportError as exc:   # started by mpiexec, but the [mpi] extra is missing
        raise RuntimeError("minicnn.distributed: this process was started by mpiexec but mpi4py "
                           "is not installed: pip install 'minicnn[mpi]'") from exc


def world():
    """The communicator `init()` set up (a world of one before `init()`)."""
    return _world[0] if _world else SingleComm()


def rank():
    """This process's rank, 0 ... world_size() - 1 (0 outside MPI)."""
    return world().rank


def world_size():
    """The number of ranks (1 outside MPI)."""
    return world().size


def is_main():
    """True on rank 0: the rank that prints, logs and writes checkpoints."""
    return world().rank == 0


# ---- threads ------------------------------------------------------------------------------------
def available_cores():
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        return os.cpu_count() or 1


def threads_per_rank(comm, threads=None):
    """`threads` if given (an int or the text of MINICNN_THREADS), else the cores shared evenly
    by the ranks on this machine, at least 1."""
    if threads is None:
        return max(1, available_cores() // max(1, comm.local_size))
    try:
        n = int(threads)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ValueError(f"minicnn.distributed: threads (or MINICNN_THREADS) must be an integer "
                         f">= 1, got {threads!r}")
    return n


def set_threads(n):
    """Numba's parallel loops and OpenBLAS on n threads in this process (Numba can go no higher
    than NUMBA_NUM_THREADS, its count at start-up)."""
    import numba

    from ..kernels.cpu._threads import openblas
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    set_blas = openblas()[0]
    if set_blas is not None:
        set_blas(n)
    return n
