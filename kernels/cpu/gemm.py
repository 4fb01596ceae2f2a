"""The CPU version of the "gemm" family: NumPy's matmul, i.e. OpenBLAS, as specified in
kernels/reference/gemm.py, with CPU-specific rules about threads.

    a (..., M, K) @ b (..., K, N) -> (..., M, N);  np.matmul calls BLAS once per batch entry

Rule 1, one product: a product of a few million multiply-adds takes tens of microseconds, about
what it costs to wake OpenBLAS's worker threads and wait for them. When the machine has anything
else to do (the Numba kernels' own threads, another process), a worker that has lost its core
makes the whole product wait for it: measured on these 2-core machines under load, a
(64x576)@(576x256) product took 0.27 ms on one thread and 2.5 ms on two. So products below
SMALL_MACS multiply-adds run on one BLAS thread; larger ones use the usual count, where the
threads pay off. Setting the count is a plain C call (OpenBLAS's own setter), ~0.25 us.

Rule 2, a batch of small products (LeNet's convolutions: 64 products of 16x100x150 per GEMM)
would then leave the other cores idle: when the batch holds SPLIT_MACS multiply-adds in all, it
is cut into as many parts as BLAS has threads, run at the same time by this thread and helper
threads, each a run of one-thread BLAS calls (NumPy releases the GIL around them; each part
writes its own rows of out). Measured on 2 cores: LeNet-5's training-step GEMMs 6.2 -> 3.2-4.7
ms. (Splitting batches of large products this way was no faster in the layers' own timings.)

Rule 3, better still, a layer made of such products cuts its whole batch the same way
(`batch_slices`), so that each core runs its slice's im2col, GEMMs and col2im back to back.
conv2d runs those slices inside one Numba kernel (kernels/cpu/conv.py), or where it cannot, as
Python threads (`run_slices`, kernels/cpu/_threads.py); inside such a thread, matmul is a plain
one-thread np.matmul.
"""
import numpy as np

from ._threads import SMALL_MACS, SPLIT_MACS, openblas, run_slices, serial, slice_count  # noqa: F401


def batch_slices(n, macs):
    """Edges [0, ..., n] of the slices a layer runs its batch of n samples in, at the same time
    (_threads.py): one per BLAS thread when each sample's products (`macs` multiply-adds) are
    small, else one slice."""
    parts = slice_count(n, macs)
    return [n * i // parts for i in range(parts + 1)]


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
    set_threads, threads = openblas()
    macs = A.shape[-2] * A.shape[-1] * B.shape[-1]
    if set_threads is None or threads <= 1 or macs >= SMALL_MACS or serial():
        return np.matmul(A, B, out=out)   # (in a slice, BLAS is on one thread already)
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    parts = slice_count(int(np.prod(batch)), macs) if batch else 1
    if parts > 1:
        if out is None:
            out = np.empty(batch + (A.shape[-2], B.shape[-1]), dtype=np.result_type(A, B))
        return _in_parts(A, B, out, min(parts, batch[0]))
    set_threads(1)
    try:
        return np.matmul(A, B, out=out)
    finally:
        set_threads(threads)
