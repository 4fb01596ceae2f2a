"""The CPU version of the "gemm" family: NumPy's matmul, i.e. OpenBLAS, as specified in
kernels/reference/gemm.py, with CPU-specific rules about threads.

    a (..., M, K) @ b (..., K, N) -> (..., M, N);  np.matmul calls BLAS once per batch entry

Rule 1, one product: a product of a few million multiply-adds takes about as long as waking
OpenBLAS's worker threads and waiting for them, and when the machine has anything else to do
(the Numba kernels' own threads, another process) a worker that has lost its core makes the
whole product wait for it. So products below SMALL_MACS multiply-adds run on one BLAS thread;
larger ones use the count in force, where the threads pay off. Setting the count is a plain C
call; the count in force before is put back afterwards (_threads.blas_threads).

Rule 2, a batch of small products would then leave the other cores idle: when the batch holds
SPLIT_MACS multiply-adds in all, it is cut into as many parts as BLAS has threads, run at the
same time by this thread and helper threads, each a run of one-thread BLAS calls (NumPy
releases the GIL around them; each part writes its own rows of out).

Convolutions go one step further and cut their whole batch into slices (kernels/cpu/conv.py).
Figures: benchmarks/results/cpu_measurements.md.
"""
import numpy as np

from ._threads import SMALL_MACS, SPLIT_MACS, blas_threads, blas_threads_now, run_slices, serial, slice_count  # noqa: F401


def _in_parts(A, B, out, parts):
    """out = A @ B with the batch (out's first axis) cut into `parts` runs of products that run
    at the same time. An operand without that axis (or broadcast along it) goes whole."""
    n = out.shape[0]

    def part(lo, hi):
        def cut(M):
            return M[lo:hi] if M.ndim == out.ndim and M.shape[0] == n else M
        np.matmul(cut(A), cut(B), out=out[lo:hi])
    run_slices(part, [n * i // parts for i in range(parts + 1)])
    return out


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    A = np.swapaxes(a, -1, -2) if trans_a else a
    B = np.swapaxes(b, -1, -2) if trans_b else b
    macs = A.shape[-2] * A.shape[-1] * B.shape[-1]
    if macs >= SMALL_MACS or serial() or blas_threads_now() <= 1:
        return np.matmul(A, B, out=out)   # (in a slice, BLAS is on one thread already)
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    parts = slice_count(int(np.prod(batch)), macs) if batch else 1
    if parts > 1:
        if out is None:
            out = np.empty(batch + (A.shape[-2], B.shape[-1]), dtype=np.result_type(A, B))
        return _in_parts(A, B, out, min(parts, batch[0]))
    with blas_threads(1):
        return np.matmul(A, B, out=out)
