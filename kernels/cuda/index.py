"""Indexing on the GPU (numba.cuda): `t[idx]` as a gather through flat offsets and its backward,
the same functions and signatures as kernels/reference/index.py (formulas there).

Legend
    x       the indexed device array, read flat: size = x.size
    src     int64 flat offsets into x, the result's shape (made by the op on the host from the
            index: geometry only; copied to the device here when it is a host array)
    g       the gradient of the result (src's shape);  grad (size,) what the backward returns

Thread-to-data mapping
    take:         one thread per RESULT element i: out[i] = x[src[i]]
    scatter:      one thread per RESULT element i: grad[src[i]] = g[i]. Race-free only because
                  the offsets of basic slicing never repeat (the op calls it only then).
    scatter_add:  one thread per INPUT element j, GATHERING its shares: no two threads write the
                  same element, and no atomics. On the host, the result positions are sorted by
                  their offset (a stable argsort, `order`) and `starts[j]` is where offset j's
                  run begins, so thread j adds g[order[p]] for p in starts[j] ... starts[j+1]-1,
                  in increasing i: the order np.add.at adds them (equal bit for bit).
"""
import numpy as np
from numba import cuda

from ._launch import THREADS, blocks, empty, flat, is_device, on_device, zeros


@cuda.jit
def _take_kernel(x, src, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[src[i]]


@cuda.jit
def _scatter_kernel(g, src, grad):
    i = cuda.grid(1)
    if i < g.size:
        grad[src[i]] = g[i]


@cuda.jit
def _gather_add_kernel(g, order, starts, grad, zero):
    j = cuda.grid(1)
    if j < grad.size:
        acc = zero
        for p in range(starts[j], starts[j + 1]):
            acc += g[order[p]]
        grad[j] = acc


def _int64(src):
    return src if is_device(src) else np.asarray(src, dtype=np.int64)  # on_device keeps a 0-d src 0-d


def take(x, src):
    src = on_device(_int64(src))
    out = empty(src.shape, x.dtype)
    if out.size:
        _take_kernel[blocks(out.size), THREADS](flat(x), flat(src), flat(out))
    return out


def scatter(g, src, size):
    grad = zeros((size,), g.dtype)
    if g.size:
        _scatter_kernel[blocks(g.size), THREADS](flat(g), flat(on_device(_int64(src))), grad)
    return grad


def scatter_add(g, src, size):
    # sorting is host work: a device src is fetched (the op hands over its host array)
    src = (src.copy_to_host() if is_device(src) else np.asarray(src, dtype=np.int64)).reshape(-1)
    order = np.argsort(src, kind="stable")
    starts = np.searchsorted(src[order], np.arange(size + 1))
    grad = empty((size,), g.dtype)
    if size:
        _gather_add_kernel[blocks(size), THREADS](flat(g), on_device(order),
                                                  on_device(starts), grad, g.dtype.type(0))
    return grad
