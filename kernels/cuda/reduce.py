"""Reductions over axes on the GPU (numba.cuda): sum and max, the same functions and signatures
as kernels/reference/reduce.py.

Legend
    x (any shape), axes (None or a tuple), keepdims as NumPy.
    The wrapper moves the reduced axes last (a permuted copy when they are not already last) and
    sees x as rows (R, K): R = the product of the kept sizes, K = the product of the reduced ones.

Thread-to-data mapping
    short rows (K <= SHORT_ROW): one THREAD per row r, folding its K elements in order (a
    block per row would leave most of its threads idle; this is the case of conv's weight
    gradient, summed over a few samples for each of many weights).
    long rows: one BLOCK of REDUCE_THREADS threads per ROW r. Thread t folds the elements t, t + T, t + 2T,
    ... of its row, writes its partial result to shared memory, and the block combines the
    partials in a tree (halving the active threads each step, syncthreads in between). Thread 0
    writes the row's result. A NaN anywhere gives NaN (max tests `v != v`).
The float64 kernel and the float32 kernel differ only in the shared array's type.
"""
import builtins

import numpy as np
from numba import cuda, float32, float64

from ._launch import THREADS, blocks, empty, full, is_device  # noqa: F401
from .elementwise import permute

REDUCE_THREADS = 128
SHORT_ROW = 64
SUM, MAX = 0, 1


@cuda.jit
def _short_rows_kernel(op, x, out, zero):
    r = cuda.grid(1)
    if r >= x.shape[0]:
        return
    acc = zero
    if op == MAX:
        acc = x[r, 0]
    for k in range(x.shape[1]):
        v = x[r, k]
        if op == SUM:
            acc += v
        elif v > acc or v != v:
            acc = v
            if v != v:
                break
    out[r] = acc


def _make_row_reduce(nbtype):
    @cuda.jit
    def row_reduce(op, x, out, zero):
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        K = x.shape[1]
        partial = cuda.shared.array(REDUCE_THREADS, nbtype)
        acc = zero                       # SUM starts at 0; MAX at an element of the row
        if op == MAX:
            acc = x[r, 0]
        for k in range(t, K, REDUCE_THREADS):
            v = x[r, k]
            if op == SUM:
                acc += v
            elif v > acc or v != v:
                acc = v
        partial[t] = acc
        cuda.syncthreads()
        half = REDUCE_THREADS // 2
        while half > 0:
            if t < half:
                a, b = partial[t], partial[t + half]
                if op == SUM:
                    partial[t] = a + b
                elif b > a or b != b:
                    partial[t] = b
            cuda.syncthreads()
            half //= 2
        if t == 0:
            out[r] = partial[0]
    return row_reduce


_KERNELS = {np.dtype(np.float32): _make_row_reduce(float32), np.dtype(np.float64): _make_row_reduce(float64)}


def _axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    return tuple(sorted(int(a) % builtins.max(ndim, 1) for a in axes))


def _reduce(op, x, axes, keepdims):
    axes = _axes(axes, x.ndim)
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    R = int(np.prod([x.shape[a] for a in kept], dtype=np.int64))
    K = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim)) if keepdims else \
        tuple(x.shape[a] for a in kept)
    if K == 0:
        if op == MAX:
            raise ValueError(f"reduce.max: cannot reduce an empty array of shape {tuple(x.shape)}")
        return full(shape, 0, x.dtype)
    order = kept + axes
    rows = (x if order == tuple(range(x.ndim)) else permute(x, order)).reshape(R, K)
    out = empty((R,), x.dtype)
    if R and K <= SHORT_ROW:
        _short_rows_kernel[blocks(R), THREADS](op, rows, out, x.dtype.type(0))
    elif R:
        _KERNELS[np.dtype(x.dtype)][R, REDUCE_THREADS](op, rows, out, x.dtype.type(0))
    return out.reshape(shape) if shape else out.reshape(())


def sum(x, axes=None, keepdims=False):  # noqa: A001
    return _reduce(SUM, x, axes, keepdims)


def max(x, axes=None, keepdims=False):  # noqa: A001
    return _reduce(MAX, x, axes, keepdims)
