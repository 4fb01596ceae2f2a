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
"""
import numpy as np

SMALL_MACS = 1 << 24   # rule 1: below this many multiply-adds per product, one BLAS thread
SPLIT_MACS = 1 << 22   # rule 2: a batch of small products with this many in all is split

_blas = []  # [set_num_threads, default thread count] once looked up; [None, 0] without OpenBLAS
_pool = []  # [ThreadPoolExecutor] of helper threads, made on the first split batch


def _openblas():
    if not _blas:
        try:
            from threadpoolctl import ThreadpoolController
            found = ThreadpoolController().select(internal_api="openblas").lib_controllers
        except Exception:  # no threadpoolctl, or a BLAS it cannot drive: keep NumPy's defaults
            found = []
        if found:
            # OpenBLAS's own C setter when threadpoolctl can name it (its Python wrapper costs
            # ~15 us a call, and LeNet's training step makes 28 calls), else the wrapper
            setter = getattr(found[0], "_get_symbol", lambda name: None)("openblas_set_num_threads")
            _blas.extend([setter or found[0].set_num_threads, found[0].num_threads])
        else:
            _blas.extend([None, 0])
    return _blas


def _in_parts(A, B, out, parts):
    """out = A @ B with the batch (out's first axis) cut into `parts` runs of products, all but
    the first in helper threads. An operand without that axis (or broadcast along it) goes whole."""
    if not _pool:
        from concurrent.futures import ThreadPoolExecutor
        _pool.append(ThreadPoolExecutor(_blas[1] - 1, thread_name_prefix="minicnn-gemm"))
    n = out.shape[0]
    edges = [n * i // parts for i in range(parts + 1)]

    def part(lo, hi):
        def cut(M):
            return M[lo:hi] if M.ndim == out.ndim and M.shape[0] == n else M
        np.matmul(cut(A), cut(B), out=out[lo:hi])
    others = [_pool[0].submit(part, edges[i], edges[i + 1]) for i in range(1, parts)]
    try:
        part(edges[0], edges[1])
    finally:
        for other in others:
            other.result()
    return out


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    A = np.swapaxes(a, -1, -2) if trans_a else a
    B = np.swapaxes(b, -1, -2) if trans_b else b
    set_threads, threads = _openblas()
    macs = A.shape[-2] * A.shape[-1] * B.shape[-1]
    if set_threads is None or threads <= 1 or macs >= SMALL_MACS:
        return np.matmul(A, B, out=out)
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    parts = min(threads, batch[0]) if batch and macs * int(np.prod(batch)) >= SPLIT_MACS else 1
    if parts > 1 and out is None:
        out = np.empty(batch + (A.shape[-2], B.shape[-1]), dtype=np.result_type(A, B))
    set_threads(1)
    try:
        return _in_parts(A, B, out, parts) if parts > 1 else np.matmul(A, B, out=out)
    finally:
        set_threads(threads)
