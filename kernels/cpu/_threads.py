"""Threads on the CPU: OpenBLAS's thread count, and running a batch of products in parts.

Three kinds of threads share the cores: Numba's (prange loops), OpenBLAS's (large GEMMs) and
the helper threads here. Numba's spin briefly after a call, then sleep (_jit.py's SPIN_COUNT
says why), so a parallel call after a pause first wakes a sleeping core, which costs more than
a small kernel's own work.

`blas_threads(n)` runs a block with OpenBLAS on n threads and puts back the count that was in
force (a count the user set stays theirs). `slice_count` says into how many slices a batch of
small products is worth cutting: one per BLAS thread. `run_slices` runs such slices at the same
time, the first in the calling thread and the others in helper threads (kernels/cpu/gemm.py's
rule 2, where the operands do not suit its Numba kernel). A slice is best one call of a nogil
kernel: a slice of several Python-level steps hands the GIL back and forth between them, and
every hand-over waits for a thread to wake. (conv.py's slices ran this way too, compiling
seconds faster than a prange kernel; since Numba's threads spin between kernels they keep the
helpers off the cores, and LeNet-5's step took 5.1 ms against 3.7 with the prange kernel:
benchmarks/results/cpu_measurements.md.)

Inside a slice `serial()` is True for that thread: BLAS calls run on one thread and are not
split again. Everything a slice calls must release the GIL to overlap: NumPy's loops and BLAS
do, and so do the Numba kernels (nogil=True).
Figures: benchmarks/results/cpu_measurements.md.
"""
import threading
from contextlib import contextmanager

_local = threading.local()
_blas = []  # [set_num_threads, get_num_threads] once looked up; [None, None] without OpenBLAS
_helpers = []  # the _Helper threads, made on first use
_busy = threading.Lock()  # held while run_slices hands work to the helpers

SMALL_MACS = 1 << 24   # below this many multiply-adds per product, one BLAS thread (gemm.py rule 1)
SPLIT_MACS = 1 << 22   # a batch of small products with this many in all is worth splitting


def openblas_libraries():
    """threadpoolctl's controllers of the OpenBLAS libraries loaded in this process, NumPy's
    first (SciPy, once something imports it, loads an OpenBLAS of its own); [] without any."""
    try:
        from threadpoolctl import ThreadpoolController
        found = ThreadpoolController().select(internal_api="openblas").lib_controllers
    except Exception:  # no threadpoolctl, or a BLAS it cannot drive: keep NumPy's defaults
        return []
    return sorted(found, key=lambda c: "numpy" not in c.filepath)


def openblas():
    """[set_num_threads, get_num_threads] for NumPy's OpenBLAS, or [None, None] without one."""
    if not _blas:
        found = openblas_libraries()
        if found:
            # OpenBLAS's own C setter and getter when threadpoolctl can name them (its Python
            # wrapper is far slower, and a training step changes the count dozens of times)
            symbol = getattr(found[0], "_get_symbol", lambda name: None)
            _blas.extend([symbol("openblas_set_num_threads") or found[0].set_num_threads,
                          symbol("openblas_get_num_threads") or (lambda: found[0].num_threads)])
        else:
            _blas.extend([None, None])
    return _blas


def blas_threads_now():
    """OpenBLAS's thread count in force now (the user's own setting, if they changed it), 0
    without OpenBLAS."""
    get_threads = openblas()[1]
    return int(get_threads()) if get_threads is not None else 0


@contextmanager
def blas_threads(n):
    """Run the block with OpenBLAS on n threads, then put back the count that was in force
    (not minicnn's idea of a default: a count the user set stays theirs)."""
    set_threads, get_threads = openblas()
    if set_threads is None:
        yield
        return
    before = int(get_threads())
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)


def serial():
    """True in a thread that is running one slice of a batch (see the module docstring)."""
    return getattr(_local, "serial", False)


def slice_count(n, macs):
    """How many slices a batch of n small products of `macs` multiply-adds each is worth: one
    per BLAS thread when they are small (< SMALL_MACS) and SPLIT_MACS in all, else 1."""
    threads = blas_threads_now()
    if threads <= 1 or serial() or macs >= SMALL_MACS or n * macs < SPLIT_MACS:
        return 1
    return min(threads, n)


class _Helper:
    """One helper thread, asleep until it is handed a function to run. Two plain locks hand the
    work over and back (a futex wake each way): a ThreadPoolExecutor's futures and queue cost
    about four times as long per call, which shows on LeNet's millisecond layers."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job = self._outcome = None
        threading.Thread(target=self._loop, name="minicnn-slice", daemon=True).start()

    def start(self, fn, *args):
        self._job = (fn, args)
        self._go.release()

    def wait(self):
        """-> (result, exception or None) of the function handed over by start."""
        self._done.acquire()
        outcome, self._outcome = self._outcome, None
        return outcome

    def _loop(self):
        while True:
            self._go.acquire()
            fn, args = self._job
            self._job = None
            try:
                self._outcome = (fn(*args), None)
            except BaseException as exc:   # handed back to the caller, which raises it
                self._outcome = (None, exc)
            self._done.release()


def run_slices(fn, edges):
    """[fn(lo, hi) for each consecutive pair of edges], the first in this thread and the others
    in helper threads, all at once, with BLAS on one thread meanwhile. Waits for all of them;
    the first exception raised is raised again. Another thread that calls it while the helpers
    are busy runs its slices one after another in itself."""
    pairs = list(zip(edges[:-1], edges[1:]))
    if len(pairs) == 1:
        return [fn(*pairs[0])]

    def one(lo, hi):
        _local.serial = True
        try:
            return fn(lo, hi)
        finally:
            _local.serial = False

    if not _busy.acquire(blocking=False):     # the helpers are another thread's just now
        return [one(lo, hi) for lo, hi in pairs]
    try:
        while len(_helpers) < len(pairs) - 1:
            _helpers.append(_Helper())
        helpers = _helpers[:len(pairs) - 1]
        with blas_threads(1):  # global in OpenBLAS: set once here, for every slice
            for helper, (lo, hi) in zip(helpers, pairs[1:]):
                helper.start(one, lo, hi)
            try:
                outcomes = [(one(*pairs[0]), None)]
            except BaseException as exc:
                outcomes = [(None, exc)]
            outcomes += [helper.wait() for helper in helpers]   # every slice, even on errors
    finally:
        _busy.release()
    for _, exc in outcomes:
        if exc is not None:
            raise exc
    return [result for result, _ in outcomes]
