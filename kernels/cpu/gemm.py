"""The CPU version of the "gemm" family: NumPy's matmul, i.e. OpenBLAS, as specified in
kernels/reference/gemm.py, with one CPU-specific rule about threads.

    a (..., M, K) @ b (..., K, N) -> (..., M, N);  np.matmul calls BLAS once per batch entry

Why the thread rule: a product of a few million multiply-adds takes tens of microseconds, about
what it costs to wake OpenBLAS's worker threads and wait for them. When the machine has anything
else to do (the Numba kernels' own threads, another process), a worker that has lost its core
makes the whole product wait for it: measured on these 2-core machines under load, a
(64x576)@(576x256) product took 0.27 ms on one thread and 2.5 ms on two. So products below
SMALL_MACS multiply-adds run on one BLAS thread; larger ones use the usual count, where two
threads pay off. Setting the count is a plain C call (OpenBLAS's own setter), ~0.25 us.

A batch of such small products (LeNet's convolutions: 64 products of 16x100x150 per GEMM) would
then leave the second core idle, so when the batch holds SPLIT_MACS multiply-adds in all it is
cut in two halves, run at the same time by this thread and one helper thread, each a run of
one-thread BLAS calls (NumPy releases the GIL around them; each half writes its own rows of
out). Measured on LeNet-5's training step at batch 64: its GEMMs 6.2 -> 3.2-4.7 ms.
"""
import numpy as np

SMALL_MACS = 1 << 24   # below this many multiply-adds per product: one BLAS thread
SPLIT_MACS = 1 << 22   # a batch of such products with this many in all: two halves, two threads

_blas = []  # [set_num_threads, default thread count] once looked up; [None, 0] without OpenBLAS


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


_helper = []  # [ThreadPoolExecutor(1)] once a batch of small products has been split


def _halves(A, B, out):
    """Run a batch of small products as two halves, one in a helper thread, one here: each
    half is a run of one-thread OpenBLAS calls (NumPy releases the GIL around them), and each
    writes its own rows of out."""
    if not _helper:
        from concurrent.futures import ThreadPoolExecutor
        _helper.append(ThreadPoolExecutor(1, thread_name_prefix="minicnn-gemm"))
    n, h = out.shape[0], out.shape[0] // 2

    def part(lo, hi):   # an operand without the batch axis (or broadcast along it) goes whole
        def cut(M):
            return M[lo:hi] if M.ndim == out.ndim and M.shape[0] == n else M
        np.matmul(cut(A), cut(B), out=out[lo:hi])
    other = _helper[0].submit(part, h, n)
    try:
        part(0, h)
    finally:
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
    split = len(batch) > 0 and batch[0] >= 2 and macs * int(np.prod(batch)) >= SPLIT_MACS
    if split and out is None:
        out = np.empty(batch + (A.shape[-2], B.shape[-1]), dtype=np.result_type(A, B))
    set_threads(1)
    try:
        return _halves(A, B, out) if split else np.matmul(A, B, out=out)
    finally:
        set_threads(threads)
