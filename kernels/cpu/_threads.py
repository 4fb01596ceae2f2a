"""Threads on the CPU: OpenBLAS's thread count, and running a batch as slices at the same time.

Three kinds of threads share the cores: Numba's (prange loops), OpenBLAS's (large GEMMs) and
the helper threads here. Numba's sleep between calls (OMP_WAIT_POLICY=PASSIVE, _jit.py says
why), so each parallel call first wakes a sleeping core: ~40 us on an Intel VM, ~130 us on an
AMD one, more than a small kernel's own work.

Slices. A layer whose per-sample products are small (LeNet's convolutions: 64 products of
16x150 by 150x100 per GEMM) runs its batch as one slice per core (`batch_slices`), every slice a
whole serial pipeline (im2col -> GEMM -> bias; the backward's products and col2im), and each
slice's columns stay in its own core's cache. Conv2d runs its slices inside one parallel Numba
kernel when it can (kernels/cpu/conv.py, "a whole layer in slices"); `run_slices` below runs
them as Python threads, each in its own helper thread. On the AMD VM the threads gained little:
every step of a slice takes the GIL back, and a thread waiting for it was woken ~100 us late
(LeNet-5's training step, medians of 20 alternating blocks: 9.2 ms in threads, 8.4 ms in one
kernel).

Inside a slice `serial()` is True for that thread: kernels then run their serial twins (Numba's
parallel launches must not nest) and BLAS calls run on one thread and are not split again.
Everything a slice calls must release the GIL to overlap: the Numba kernels do (nogil=True),
and so do NumPy's loops and BLAS.
"""
import threading
from contextlib import contextmanager

_local = threading.local()
_blas = []  # [set_num_threads, default thread count] once looked up; [None, 0] without OpenBLAS
_getter = []  # [get_num_threads] once looked up
_pool = []  # [ThreadPoolExecutor] of helper threads, made on first use

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
    """[set_num_threads, default count] for NumPy's OpenBLAS, or [None, 0] when there is none."""
    if not _blas:
        found = openblas_libraries()
        if found:
            # OpenBLAS's own C setter and getter when threadpoolctl can name them (its Python
            # wrapper is far slower, and a training step changes the count dozens of times)
            symbol = getattr(found[0], "_get_symbol", lambda name: None)
            _blas.extend([symbol("openblas_set_num_threads") or found[0].set_num_threads, found[0].num_threads])
            getter = symbol("openblas_get_num_threads")
            _getter.append(getter if getter is not None else lambda: found[0].num_threads)
        else:
            _blas.extend([None, 0])
    return _blas


def blas_threads_now():
    """OpenBLAS's thread count in force now (the user's own setting, if they changed it), 0
    without OpenBLAS."""
    set_threads, _ = openblas()
    return int(_getter[0]()) if set_threads is not None else 0


@contextmanager
def blas_threads(n):
    """Run the block with OpenBLAS on n threads, then put back the count that was in force
    (not minicnn's idea of a default: a count the user set stays theirs)."""
    set_threads, _ = openblas()
    if set_threads is None:
        yield
        return
    before = int(_getter[0]())
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


def run_slices(fn, edges):
    """[fn(lo, hi) for each consecutive pair of edges], the first in this thread and the others
    in helper threads, all at once, with BLAS on one thread meanwhile. Waits for all of them;
    the first exception raised is raised again."""
    if len(edges) == 2:
        return [fn(edges[0], edges[1])]
    threads = blas_threads_now()
    if not _pool:
        from concurrent.futures import ThreadPoolExecutor
        _pool.append(ThreadPoolExecutor(max(threads - 1, 1), thread_name_prefix="minicnn-slice"))

    def one(lo, hi):
        _local.serial = True
        try:
            return fn(lo, hi)
        finally:
            _local.serial = False

    with blas_threads(1):  # global in OpenBLAS: set once here, for every slice
        others = [_pool[0].submit(one, lo, hi) for lo, hi in zip(edges[1:-1], edges[2:])]
        try:
            first = one(edges[0], edges[1])
        finally:
            done = [(f.exception(), f) for f in others]   # wait for every slice, even on errors
        for exc, _ in done:
            if exc is not None:
                raise exc
        return [first] + [f.result() for _, f in done]
