"""The CPU version of the "gemm" family: NumPy's matmul, i.e. OpenBLAS, as specified in
kernels/reference/gemm.py, with CPU-specific rules about threads.

    a (..., M, K) @ b (..., K, N) -> (..., M, N);  np.matmul calls BLAS once per batch entry

Rule 1, one product: a product of a few million multiply-adds takes about as long as waking
OpenBLAS's worker threads and waiting for them, and when the machine has anything else to do
(the Numba kernels' own threads, another process) a worker that has lost its core makes the
whole product wait for it. So products below SMALL_MACS multiply-adds run on one BLAS thread.
Setting the count is a plain C call; the count in force before is put back afterwards
(_threads.blas_threads).

Rule 2, a batch of small products would then leave the other cores idle: when the batch holds
SPLIT_MACS multiply-adds in all, its products are spread over the cores, each a one-thread BLAS
call: from one parallel Numba kernel calling NumPy's OpenBLAS (_batched, _blas.py), where the
operands allow it (C-contiguous, float32/64, batch axes equal or broadcast from the left:
Winograd's 16 products, a group's weights against every sample); otherwise in as many parts as
BLAS has threads, run by this thread and helper threads (NumPy releases the GIL around each
call; each part writes its own rows of out). The kernel avoids the helper threads' hand-overs
of the GIL, which cost as much as the products on ResNet's small maps.

Rule 3, a large product (SMALL_MACS or more) is cut into pieces too, one per thread, along its
longer side, each a one-thread BLAS call from one parallel Numba kernel (_cut). OpenBLAS's own
workers would do the same work as fast, but after each product they spin on their cores for
about 0.1 s (OpenBLAS's THREAD_TIMEOUT, read once when NumPy loads it, so minicnn cannot set
it), and the next Numba kernel's threads wait for the cores they hold. A training step, rule 3
against OpenBLAS's threads: ResNet-18 (batch 16, 64x64) 163-169 ms against 189-232, AlexNet
419-451 against 537-651, ResNet-50 241-253 against 292-296 (cpu_measurements.md).
Only products whose operands _cut takes (as rule 2) go this way; others still call np.matmul.

Rule 4, x @ W^T (a fully connected layer's forward, W (out, in) as stored): OpenBLAS computes
the same product read the other way, W @ x^T, markedly faster when W has more rows than x (AlexNet's fc6 at batch 8: 11.0 ms against 19.7; 32x512 by 1000x512: 0.51 against 0.73;
LeNet's 64x400 by 120x400: 0.091 against 0.107); the (out, batch) result is transposed back.

Convolutions go one step further and cut their whole batch into slices (kernels/cpu/conv.py).
Figures: benchmarks/results/cpu_measurements.md.
"""
import math

import numpy as np
from numba import prange

from ._blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_for
from ._jit import kernel
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


@kernel
def _batched(a, b, out, trans_a, trans_b, gemm):
    """out[i] = op(a[i % A]) @ op(b[i % B]) for i < len(out): a (A, ., .), b (B, ., .) stacks of
    C-contiguous matrices whose counts divide len(out) (broadcast from the left)."""
    M, N = out.shape[1], out.shape[2]
    K = a.shape[1] if trans_a else a.shape[2]
    one, zero = out.dtype.type(1), out.dtype.type(0)
    for i in prange(out.shape[0]):
        gemm(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, M, N, K, one,
             a[i % a.shape[0]].ctypes.data, a.shape[2], b[i % b.shape[0]].ctypes.data, b.shape[2],
             zero, out[i].ctypes.data, N)


def _swapped(a, b, out):
    """a (M, K) @ b (N, K)^T computed as (b @ a^T)^T, then laid out as (M, N)."""
    outT = matmul(b, a, trans_b=True)                # (N, M): not swapped again, as M < N
    if out is None:
        return np.ascontiguousarray(outT.T)
    np.copyto(out, outT.T)
    return out


def _run(kernel_, a, b, batch, out, trans_a, trans_b, *extra):
    """Call _batched or _cut on a, b as stacks of matrices, OpenBLAS on one thread."""
    M = a.shape[-1] if trans_a else a.shape[-2]
    N = b.shape[-2] if trans_b else b.shape[-1]
    if out is None:
        out = np.empty(batch + (M, N), dtype=a.dtype)
    with blas_threads(1):
        kernel_(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]), out.reshape(-1, M, N),
                trans_a, trans_b, gemm_for(a.dtype), *extra)
    return out


def _batched_suits(a, b, batch, out):
    """Operands _batched takes as they are: see rule 2."""
    def leading_broadcast(shape):
        return batch[len(batch) - len(shape):] == shape
    return (gemm_for(a.dtype) is not None and a.dtype == b.dtype and a.flags.c_contiguous and b.flags.c_contiguous
            and leading_broadcast(a.shape[:-2]) and leading_broadcast(b.shape[:-2])
            and (out is None or (out.flags.c_contiguous and out.dtype == a.dtype)))


@kernel
def _cut(a, b, out, trans_a, trans_b, gemm, parts):
    """out[i] = op(a[i % A]) @ op(b[i % B]) as above, each product cut into `parts` pieces along
    its longer side (rows of out, or columns), the pieces of all products spread over the
    threads. A piece is op(A)[rows] @ op(B), or op(A) @ op(B)[:, cols]: a pointer moved to its
    first row or column, the leading dimensions unchanged."""
    M, N = out.shape[1], out.shape[2]
    K = a.shape[1] if trans_a else a.shape[2]
    lda, ldb = a.shape[2], b.shape[2]
    one, zero = out.dtype.type(1), out.dtype.type(0)
    by_rows = M >= N
    side = M if by_rows else N
    for job in prange(out.shape[0] * parts):
        i, p = job // parts, job % parts
        lo = (side * p // parts) // 16 * 16           # pieces start on 64-byte boundaries
        hi = side if p == parts - 1 else (side * (p + 1) // parts) // 16 * 16
        if hi <= lo:
            continue
        A, B, C = a[i % a.shape[0]].ctypes.data, b[i % b.shape[0]].ctypes.data, out[i].ctypes.data
        size = out.itemsize
        if by_rows:   # rows lo:hi of op(A): rows of A, or columns of A^T
            A += np.uintp(lo * (1 if trans_a else lda) * size)
            C += np.uintp(lo * N * size)
            gemm(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, hi - lo, N, K,
                 one, A, lda, B, ldb, zero, C, N)
        else:         # columns lo:hi of op(B): columns of B, or rows of B^T
            B += np.uintp(lo * (ldb if trans_b else 1) * size)
            C += np.uintp(lo * size)
            gemm(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, M, hi - lo, K,
                 one, A, lda, B, ldb, zero, C, N)


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    if trans_b and not trans_a and a.ndim == b.ndim == 2 and b.shape[0] > a.shape[0]:
        # rule 4: a @ b^T as (b @ a^T)^T, a fully connected layer's forward (x @ W^T)
        return _swapped(a, b, out)
    A = np.swapaxes(a, -1, -2) if trans_a else a
    B = np.swapaxes(b, -1, -2) if trans_b else b
    macs = A.shape[-2] * A.shape[-1] * B.shape[-1]
    threads = blas_threads_now()
    if serial() or threads <= 1:
        return np.matmul(A, B, out=out)   # (in a slice, BLAS is on one thread already)
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2]) if A.ndim > 2 or B.ndim > 2 else ()
    count = math.prod(batch)
    if macs >= SMALL_MACS and _batched_suits(a, b, batch, out):
        # rule 3: OpenBLAS's own threads would spin on the other core after the product
        parts = 1 if count % threads == 0 else threads
        return _run(_cut, a, b, batch, out, trans_a, trans_b, parts)
    if macs >= SMALL_MACS:
        return np.matmul(A, B, out=out)
    parts = slice_count(count, macs) if batch else 1
    if parts > 1 and _batched_suits(a, b, batch, out):
        return _run(_batched, a, b, batch, out, trans_a, trans_b)
    if parts > 1:
        if out is None:
            out = np.empty(batch + (A.shape[-2], B.shape[-1]), dtype=np.result_type(A, B))
        return _in_parts(A, B, out, min(parts, batch[0]))
    with blas_threads(1):
        return np.matmul(A, B, out=out)
